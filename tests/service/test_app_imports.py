"""The entry points: the web process never imports torch; `playground serve` checks its arguments."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.service.server_process import REPO_ROOT


def test_creating_the_app_does_not_import_torch(tmp_path):
    # A fresh interpreter: this test process may have imported torch for other tests.
    code = textwrap.dedent(
        f"""
        import sys
        from app.config import Settings
        from app.main import create_app
        import app.server, app.cli
        app_ = create_app(Settings(home={str(tmp_path)!r}))
        app_.openapi()
        loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "torchvision")))
        assert not loaded, loaded
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_serve_refuses_a_worker_count_out_of_bounds(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", "1", "--workers", "0"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "PLAYGROUND_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "workers" in result.stderr and "greater than or equal to 1" in result.stderr
