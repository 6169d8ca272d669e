"""The pages and their files, as the server sends them (no browser needed: these run everywhere)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGES = ["/", "/jobs", f"/jobs/{'a' * 32}", "/compare?ids=x,y", "/lessons"]


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_and_everything_it_loads_is_served_by_the_app(server, path):
    with server.client() as client:
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        parser = Links()
        parser.feed(page.text)
        assert any(url.endswith(".js") for url in parser.urls)
        for url in parser.urls:
            if url.startswith(("data:", "#")):
                continue
            assert url.startswith("/"), f"{path} links outside the app: {url}"
            if url.startswith(("/jobs/", "/compare", "/?", "/lessons")) or url in ("/", "/jobs"):
                continue
            answer = client.get(url)
            assert answer.status_code == 200, f"{path} needs {url}: {answer.status_code}"


def test_each_script_module_imports_only_files_that_exist(server):
    with server.client() as client:
        for script in sorted((REPO_ROOT / "static/js").glob("*.js")):
            source = script.read_text()
            for target in re.findall(r'^import .*?from "(\./[^"]+)";|^import "(\./[^"]+)";', source, re.M):
                name = next(t for t in target if t)
                assert client.get(f"/static/js/{name[2:]}").status_code == 200, f"{script.name} imports {name}"


def test_the_vendored_chart_library_comes_with_its_licence_and_version():
    vendor = REPO_ROOT / "static/vendor/uplot"
    assert "MIT License" in (vendor / "LICENSE").read_text()
    note = (vendor / "VERSION.md").read_text()
    version = re.search(r"`uplot` (\d+\.\d+\.\d+)", note).group(1)
    assert f"/*! https://github.com/leeoniya/uPlot (v{version})" in (vendor / "uPlot.iife.min.js").read_text()[:200]


def test_the_pages_make_no_request_outside_the_app():
    # Absolute URLs in what the pages load would be requests to the internet (fonts, CDNs).
    sources = [*(REPO_ROOT / "templates").glob("*.html"), *(REPO_ROOT / "static/js").glob("*.js"), *(REPO_ROOT / "static/css").glob("*.css")]
    for source in sources:
        found = re.findall(r"""["'(]\s*((?:https?:)?//[^"')\s]+)""", source.read_text())
        assert not found, f"{source.relative_to(REPO_ROOT)} refers to {found}"


def test_the_pages_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, app.api.routes.pages; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
