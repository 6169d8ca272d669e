"""The README's table of PLAYGROUND_* variables is the one app/config.py renders."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from app.settings_doc import BEGIN, END, main, render_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_matches_the_settings_model():
    text = README.read_text()
    assert BEGIN in text and END in text, "README.md lost the settings-table markers"
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n") + "\n"
    assert block == render_table(), "README's settings table is stale: run `make docs`"


def test_table_has_a_row_with_default_and_meaning_for_every_setting():
    rows = render_table().splitlines()[2:]
    assert len(rows) == len(Settings.model_fields)
    by_name = {row.split("|")[1].strip(" `"): row for row in rows}
    assert "| `./var` |" in by_name["PLAYGROUND_HOME"]
    assert "one of `local`, `ray`" in by_name["PLAYGROUND_EXECUTOR"]
    assert "≥ 1, ≤ 64" in by_name["PLAYGROUND_WORKERS"]
    assert "| unset |" in by_name["PLAYGROUND_API_TOKEN"]
    for name, row in by_name.items():
        assert row.split("|")[4].strip(), f"{name} has no description in app/config.py"


def test_check_fails_on_a_stale_table_and_write_fixes_it(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{BEGIN}\n| old | table |\n{END}\n\nAfter.\n")
    assert main(["--check", str(readme)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--write", str(readme)]) == 0
    assert main(["--check", str(readme)]) == 0
    assert readme.read_text().endswith(f"{END}\n\nAfter.\n")


def test_missing_markers_are_named(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# No markers\n")
    assert main(["--check", str(readme)]) == 2
    assert "settings-table:begin" in capsys.readouterr().err
