"""Python literals for the generated scripts: numbers that read back to the same float, wrapped lists."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from app.export.history import Change

LINE_WIDTH = 100


def py(value: Any) -> str:
    """``value`` as Python source: a float as its shortest repr (it reads back to the same double)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # double quotes, as the rest of the script writes strings
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py(k)}: {py(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(py(v) for v in value) + "]"
    raise TypeError(f"no literal for {type(value).__name__} {value!r}")


def float_list(values: Sequence[float], indent: int, prefix_width: int = 20) -> str:
    """``[a, b, ...]`` on one line when it fits, else one item per column over wrapped lines."""
    items = [repr(float(v)) for v in values]
    one_line = "[" + ", ".join(items) + "]"
    if prefix_width + len(one_line) <= LINE_WIDTH:
        return one_line
    return "[\n" + "\n".join(_wrap(items, indent)) + "\n]"


def _wrap(items: Iterable[str], indent: int) -> list[str]:
    lines, line = [], ""
    for item in items:
        piece = f"{item},"
        if line and indent + len(line) + 1 + len(piece) > LINE_WIDTH:
            lines.append(" " * indent + line)
            line = piece
        else:
            line = f"{line} {piece}" if line else piece
    if line:
        lines.append(" " * indent + line)
    return lines


def changes_literal(changes: Sequence[Change]) -> str:
    """``{step: {name: value}}``; changes at the same step are merged in order (the later one wins)."""
    by_step: dict[int, dict[str, Any]] = {}
    for change in changes:
        by_step.setdefault(change.step, {}).update(change.params)
    if not by_step:
        return ""
    entries = [f"{step}: {py(params)}" for step, params in by_step.items()]
    if len(entries) == 1:
        return "{" + entries[0] + "}"
    return "{\n" + "".join(f"    {entry},\n" for entry in entries) + "}"
