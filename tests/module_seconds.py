"""Writes tests/module_seconds.json, the seconds each scope of the suite takes, which the test
scheduler (tests/conftest.py) starts the longest of first. From a JUnit XML report of a run:

    .venv/bin/python -m pytest -q -n 2 --junitxml=/tmp/suite.xml
    .venv/bin/python -m tests.module_seconds /tmp/suite.xml

A test's time in the report is its setup, call and teardown, so a module's server starting counts.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from tests.conftest import MODULE_SECONDS, scope_of


def scope_seconds(report: Path) -> dict[str, float]:
    """Seconds per scope: the sum of its test cases' times (a case's file is its ``classname``
    with dots for slashes, the form pytest writes)."""
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "")
        parts = module.split(".")
        # classname is "tests.service.test_jobs" or "tests.service.test_jobs.TestClass".
        for cut in range(len(parts), 0, -1):
            path = "/".join(parts[:cut]) + ".py"
            if Path(path).exists():
                break
        seconds[scope_of(path)] += float(case.get("time", 0))
    return {scope: round(total, 1) for scope, total in sorted(seconds.items(), key=lambda item: -item[1])}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: python -m tests.module_seconds REPORT.xml (got {sys.argv[1:]})")
    MODULE_SECONDS.write_text(json.dumps(scope_seconds(Path(sys.argv[1])), indent=1) + "\n")
    print(f"wrote {MODULE_SECONDS}")
