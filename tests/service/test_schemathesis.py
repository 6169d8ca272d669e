"""Schemathesis over ``/openapi.json`` of a real server: the server keeps to its own description.

A bounded run (a fixed seed, 20 examples per operation, one worker) with every check -- no server
error, only documented status codes, content types and headers, responses that match their
schema, invalid requests refused, valid ones accepted, the token enforced where it is declared
required, 405 with the right ``Allow`` -- against the default server (no token) and one with a
token. The run creates jobs: the server's limits keep them small (PLAYGROUND_MAX_EPOCHS=50, a
queue of 4, CIFAR not downloaded, so such jobs fail at once), and it cancels and deletes them too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

TOKEN = "schemathesis-token-0123456789"
LIMITS = {
    "PLAYGROUND_MAX_EPOCHS": "50",
    "PLAYGROUND_MAX_QUEUED": "4",
    "PLAYGROUND_MAX_DATA_POINTS": "200",
    "PLAYGROUND_ALLOW_DOWNLOAD": "false",
}

# Every check is on; the exceptions below are the only ones, each for a reason the description
# cannot express.
CONFIG = """\
max-stream-events = 20   # a running job's stream is read this far, then closed

[checks]
enabled = true

# Bodies are read by pydantic's lax mode, which takes "5" for 5 and true for 1: the same models
# take the CLI's `-p epochs=5`, whose values are strings. Such a body is outside the schema and
# accepted, on purpose; everything else about these bodies is checked.
[[operations]]
include-path = "/api/jobs"
include-method = "POST"
checks.negative_data_rejection.enabled = false

# What predict takes depends on the job's kind (JSON numbers for linear and mlp, an image for
# cifar), which a request's schema cannot say: a valid JSON body for a cifar job is refused.
# Which parameters a job may change live depends on its kind (weight_decay is cifar's only), which
# the path's job id hides: the schema lists every kind's, and a job refuses another kind's (422).
[[operations]]
include-path = "/api/jobs/{job_id}"
include-method = "PATCH"
checks.positive_data_acceptance.enabled = false

# The server-wide stream never ends and starts with one event (`live`): read that one, not 20.
[[operations]]
include-path = "/api/events"
max-stream-events = 1

# What a lesson takes depends on its kind beyond what one schema says: `locked` and `hidden` name
# the kind's parameters, and an accuracy metric is cifar's only. Its refusals are checked.
[[operations]]
include-path = "/api/lessons"
include-method = "POST"
checks.positive_data_acceptance.enabled = false

[[operations]]
include-path = "/api/jobs/{job_id}/predict"
checks.negative_data_rejection.enabled = false
checks.positive_data_acceptance.enabled = false
"""


@pytest.mark.parametrize("token", [None, TOKEN], ids=["no-token", "token"])
def test_the_server_keeps_to_its_openapi_description(server_factory, tmp_path: Path, token: str | None):
    env = {**LIMITS, **({"PLAYGROUND_API_TOKEN": token} if token else {})}
    srv = server_factory(env=env, workers=1)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file", str(config),
        "run", f"{srv.url}/openapi.json",
        "--max-examples", "20",
        "--seed", "1",
        "--workers", "1",
        "--no-shrink",
        "--request-timeout", "30",
        *(["--header", f"Authorization: Bearer {token}"] if token else []),
    ]  # fmt: skip
    # cwd: schemathesis keeps a cache folder (.schemathesis/) where it runs.
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-30_000:]
    # Some cases were made at all ("1720 generated" must not read as "0 generated").
    assert not re.search(r"\b0 generated", report) and "passed" in report, report[-5_000:]
