"""The runs list's order and filters (``GET /api/jobs?sort=...&filter=...``). No torch.

A filter is ``<field><op><value>``, one per ``filter`` parameter, all of them must hold:

- a parameter of any kind, as the run started (``lr=0.01``, ``optimizer=adam``, ``augment=true``,
  ``epochs>=100``); a run of a kind without it does not match;
- a final metric, from the run's result (``val_acc>0.8``, ``train_loss<=3``); a run without it
  (not ended yet, or a kind that has none) does not match;
- ``seed``, or the run's ``name`` and ``owner`` (``name~book``: contains, ignoring ASCII case).

Numbers take ``= != < <= > >=`` (``=`` within a relative 1e-9, so ``lr=1e-2`` finds 0.01), choices
and booleans ``= !=``, text ``= != ~``. ``FILTER_PATTERN`` is exactly the language accepted, so the
OpenAPI description says what the parser takes; the messages say what was wrong and what is allowed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, func
from sqlmodel import col

from app.errors import InvalidField
from app.experiments.registry import EXPERIMENTS
from app.models import Job, JobStatus

MAX_FILTERS = 10
MAX_FILTER_CHARS = 200

# The final metrics a run's result may have (linear: w and b too); what the list sorts by.
METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "w", "b")
TEXT_COLUMNS = ("name", "owner")
NUMBER_COLUMNS = ("seed",)

FieldType = Literal["number", "bool", "choice", "text"]


def _param_type(schema: dict[str, Any]) -> tuple[FieldType, tuple[str, ...]] | None:
    """A parameter's type from its JSON schema; None for one a filter cannot name (``data``)."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    if len(options) != 1:
        return None
    option = options[0]
    if "enum" in option:
        return "choice", tuple(str(v) for v in option["enum"])
    if "const" in option:
        return "choice", (str(option["const"]),)
    if option.get("type") in ("number", "integer"):
        return "number", ()
    if option.get("type") == "boolean":
        return "bool", ()
    return None


def _params() -> dict[str, tuple[FieldType, tuple[str, ...]]]:
    """Every kind's parameters: their type and, for a choice, every kind's values."""
    found: dict[str, tuple[FieldType, tuple[str, ...]]] = {}
    for spec in EXPERIMENTS.values():
        for name, schema in spec.params_model.model_json_schema()["properties"].items():
            typed = _param_type(schema)
            if typed is None:
                continue
            have = found.get(name)
            if have is not None and have[0] != typed[0]:
                raise AssertionError(f"parameter {name!r} is a {have[0]} in one kind and a {typed[0]} in another")
            values = tuple(dict.fromkeys((*(have[1] if have else ()), *typed[1])))
            found[name] = (typed[0], values)
    clash = found.keys() & {*METRICS, *TEXT_COLUMNS, *NUMBER_COLUMNS}
    assert not clash, f"a parameter has the name of a metric or a column: {sorted(clash)}"
    return found


PARAMS = _params()
FIELDS: dict[str, tuple[FieldType, tuple[str, ...]]] = {
    **PARAMS,
    **{name: ("number", ()) for name in (*METRICS, *NUMBER_COLUMNS)},
    **{name: ("text", ()) for name in TEXT_COLUMNS},
}
OPERATORS: dict[FieldType, tuple[str, ...]] = {
    "number": ("=", "!=", "<", "<=", ">", ">="),
    "bool": ("=", "!="),
    "choice": ("=", "!="),
    "text": ("=", "!=", "~"),
}
# A finite number (at most 99 as the exponent: no 1e999, which is infinity).
# [0-9], not \d: a JSON schema's \d is ASCII only, Python's takes any script's digits.
NUMBER = r"-?([0-9]{1,20}(\.[0-9]{0,20})?|\.[0-9]{1,20})([eE][+-]?[0-9]{1,2})?"
# One line of text (what "." is in a JSON schema's pattern, which is JavaScript's).
TEXT = rf"[^\n\r\u2028\u2029]{{1,{MAX_FILTER_CHARS - 8}}}"


def _alternatives(words: tuple[str, ...] | list[str]) -> str:
    # Longest first: "<=" before "<", "val_acc" before a shorter name it starts with.
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _pattern() -> str:
    by_type: dict[FieldType, list[str]] = {"number": [], "bool": [], "text": []}  # type: ignore[typeddict-item]
    parts = []
    for name, (kind, values) in FIELDS.items():
        if kind == "choice":
            parts.append(f"({re.escape(name)})(=|!=)({_alternatives(values)})")
        else:
            by_type[kind].append(name)
    value = {"number": NUMBER, "bool": "true|false", "text": TEXT}
    for kind, names in by_type.items():
        parts.append(f"({_alternatives(names)})({_alternatives(OPERATORS[kind])})({value[kind]})")
    return "^(" + "|".join(f"({part})" for part in parts) + ")$"


FILTER_PATTERN = _pattern()
_FILTER = re.compile(FILTER_PATTERN)
_SPLIT = re.compile(rf"^({_alternatives(list(FIELDS))})(<=|>=|!=|=|<|>|~)(.*)$", re.DOTALL)


# ----------------------------------------------------------------------------------------------
# Filters


@dataclass(frozen=True)
class JobFilter:
    field: str
    op: str
    value: float | str | bool

    def clause(self) -> ColumnElement[bool]:
        """The SQL condition; a run without the field (null) never matches, even ``!=``."""
        if self.field in PARAMS:
            column: Any = func.json_extract(col(Job.params), f"$.{self.field}")
        elif self.field in METRICS:
            column = func.json_extract(col(Job.result), f"$.{self.field}")
        else:
            column = getattr(Job, self.field)
        value = self.value
        if isinstance(value, bool):  # JSON's true and false come out of json_extract as 1 and 0
            value = int(value)
        if isinstance(value, float):
            tolerance = abs(value) * 1e-9
            near = column.between(value - tolerance, value + tolerance)
            match self.op:
                case "=":
                    return near
                case "!=":
                    return and_(column.is_not(None), ~near)
        match self.op:
            case "=":
                return column == value
            case "!=":
                return and_(column.is_not(None), column != value)
            case "<":
                return column < value
            case "<=":
                return column <= value
            case ">":
                return column > value
            case ">=":
                return column >= value
            case "~":  # lower() folds ASCII only, as the list page does
                return func.instr(func.lower(column), str(value).lower()) > 0
        raise AssertionError(self.op)


def parse_filter(text: str) -> JobFilter:
    """``"val_acc>0.8"`` as a ``JobFilter``; 422 naming the filter and what is allowed otherwise."""
    loc: list[str | int] = ["query", "filter"]
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidField(loc, f"filter {text[:40]!r}... is {len(text)} characters; at most {MAX_FILTER_CHARS}.", text)
    split = _SPLIT.match(text)
    if split is None:
        raise InvalidField(
            loc,
            f"filter {text!r} is not <field><op><value> (e.g. lr=0.01, val_acc>0.8, name~book); "
            f"the fields: {', '.join(FIELDS)}.",
            text,
            allowed=list(FIELDS),
        )
    field, op, raw = split.groups()
    kind, values = FIELDS[field]
    if op not in OPERATORS[kind]:
        raise InvalidField(
            loc, f"filter {text!r}: {field} takes {' '.join(OPERATORS[kind])}, not {op}.", text, allowed=list(OPERATORS[kind])
        )
    if _FILTER.fullmatch(text) is None:
        expected = {
            "number": "a number (e.g. 0.01, 1e-3)",
            "bool": "true or false",
            "choice": f"one of {', '.join(values)}",
            "text": f"one line of text (1 to {MAX_FILTER_CHARS - 8} characters)",
        }[kind]
        raise InvalidField(loc, f"filter {text!r}: {field} is {expected}, not {raw!r}.", text)
    value: float | str | bool
    if kind == "number":
        value = float(raw)
        if not math.isfinite(value):  # the pattern allows none, but say so if it ever does
            raise InvalidField(loc, f"filter {text!r}: {raw!r} is not a finite number.", text)
    elif kind == "bool":
        value = raw == "true"
    else:
        value = raw
    return JobFilter(field, op, value)


def parse_filters(texts: list[str]) -> list[JobFilter]:
    if len(texts) > MAX_FILTERS:
        raise InvalidField(
            ["query", "filter"], f"{len(texts)} filters; at most {MAX_FILTERS} at once.", len(texts), limit=MAX_FILTERS
        )
    return [parse_filter(text) for text in texts]


# ----------------------------------------------------------------------------------------------
# Order


class JobSort(StrEnum):
    """The list's order; ``-`` before a field reverses it. Runs without the value come last either
    way, and runs that tie keep newest first."""

    NEWEST = "newest"
    OLDEST = "oldest"
    NAME = "name"  # A to Z, ignoring ASCII case
    NAME_DESC = "-name"
    STATUS = "status"  # running, queued, paused, then the ended ones (see STATUS_ORDER)
    STATUS_DESC = "-status"
    TRAIN_LOSS = "train_loss"  # lowest first
    TRAIN_LOSS_DESC = "-train_loss"
    VAL_LOSS = "val_loss"
    VAL_LOSS_DESC = "-val_loss"
    TRAIN_ACC = "train_acc"
    TRAIN_ACC_DESC = "-train_acc"
    VAL_ACC = "val_acc"
    VAL_ACC_DESC = "-val_acc"  # highest first

    def order_by(self) -> list[Any]:
        newest = col(Job.number).desc()
        if self == JobSort.NEWEST:
            return [newest]
        if self == JobSort.OLDEST:
            return [col(Job.number).asc()]
        field = self.value.removeprefix("-")
        if field == "name":
            key: Any = func.lower(col(Job.name))
        elif field == "status":
            key = case({s.value: i for i, s in enumerate(STATUS_ORDER)}, value=col(Job.status), else_=len(STATUS_ORDER))
        else:
            key = func.json_extract(col(Job.result), f"$.{field}")
        return [key.is_(None), key.desc() if self.value.startswith("-") else key.asc(), newest]


# What is under way first, then what ended well, then the rest.
STATUS_ORDER = (
    JobStatus.RUNNING,
    JobStatus.QUEUED,
    JobStatus.PAUSED,
    JobStatus.SUCCEEDED,
    JobStatus.DIVERGED,
    JobStatus.FAILED,
    JobStatus.INTERRUPTED,
    JobStatus.CANCELLED,
)
assert set(STATUS_ORDER) == set(JobStatus)
