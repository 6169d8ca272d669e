"""The README's table of environment variables, rendered from :class:`app.config.Settings`.

``python -m app.settings_doc`` prints the table; ``--write README.md`` replaces the block between the
markers with it (``make docs``); ``--check README.md`` exits 1 when the block differs, which is what
tests/deploy/test_settings_doc.py asserts, so a new or changed setting cannot go undocumented.
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic.fields import FieldInfo

from app.config import Settings

BEGIN = "<!-- settings-table:begin (generated from app/config.py by `make docs`; do not edit) -->"
END = "<!-- settings-table:end -->"


class MarkersNotFound(ValueError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: needs the lines {BEGIN!r} and {END!r}, in that order")


def env_name(name: str, field: FieldInfo) -> str:
    if isinstance(field.validation_alias, str):
        return field.validation_alias.upper()
    prefix = Settings.model_config.get("env_prefix", "")
    return f"{prefix}{name}".upper()


def format_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, Path) and not value.is_absolute():
        return f"`./{value}`"  # Path("./var") prints as "var"; keep it visibly relative
    return f"`{value}`"


def format_allowed(field: FieldInfo) -> str:
    """The values a setting accepts beyond its type: Literal choices and numeric bounds."""
    if field.annotation is bool:
        return "`true`, `false`"
    if typing.get_origin(field.annotation) is typing.Literal:
        return "one of " + ", ".join(f"`{choice}`" for choice in typing.get_args(field.annotation))
    bounds = []
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            bounds.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            bounds.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            bounds.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.Lt):
            bounds.append(f"< {item.lt}")
    return ", ".join(bounds)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table() -> str:
    rows = ["| Variable | Default | Allowed | Meaning |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        rows.append(
            "| `{}` | {} | {} | {} |".format(
                env_name(name, field),
                _cell(format_default(field.default)),
                _cell(format_allowed(field)),
                _cell(field.description or ""),
            )
        )
    return "\n".join(rows) + "\n"


def replace_block(text: str, table: str, path: Path) -> str:
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise MarkersNotFound(path)
    return text[: begin + len(BEGIN)] + "\n" + table + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.settings_doc", description=__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", type=Path, metavar="FILE", help="rewrite the block in FILE")
    action.add_argument("--check", type=Path, metavar="FILE", help="exit 1 when FILE's block is stale")
    args = parser.parse_args(argv)

    table = render_table()
    path = args.write or args.check
    if path is None:
        sys.stdout.write(table)
        return 0
    text = path.read_text(encoding="utf-8")
    try:
        updated = replace_block(text, table, path)
    except MarkersNotFound as exc:
        print(f"settings_doc: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if updated != text:
            print(f"settings_doc: {path}'s settings table is stale; run `make docs`", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
