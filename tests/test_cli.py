"""``playground train``: the JSON report, and exit status 2 naming the bad field."""

import json
import subprocess
import sys


def playground(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_train_linear_json_reports_the_books_fit():
    proc = playground("train", "linear", "--seed", "3", "--device", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"kind", "params", "seed", "device", "status", "result", "error"}
    assert report["status"] == "succeeded" and report["seed"] == 3 and report["device"] == "cpu"
    assert report["params"]["epochs"] == 5000 and report["params"]["optimizer"] == "manual"
    assert round(report["result"]["w"], 4) == 5.3671
    assert round(report["result"]["b"], 4) == -17.3012


def test_params_from_the_command_line_are_typed():
    proc = playground("train", "linear", "-p", "epochs=20", "-p", "data=[[0,1],[1,3],[2,5]]", "-p", "input_scale=1", "--json")
    report = json.loads(proc.stdout)
    assert report["params"]["epochs"] == 20
    assert report["params"]["data"] == [[0, 1], [1, 3], [2, 5]]
    assert report["result"]["epochs_run"] == 20


def test_diverged_run_prints_the_advice():
    proc = playground("train", "linear", "-p", "input_scale=1", "--json")
    report = json.loads(proc.stdout)
    assert report["status"] == "diverged"
    assert "smaller learning rate" in report["error"]


def test_bad_parameter_exits_2_naming_field_and_range():
    proc = playground("train", "linear", "-p", "lr=20", "--json")
    assert proc.returncode == 2
    assert "lr" in proc.stderr and "less than or equal to 10" in proc.stderr and "'20'" in proc.stderr
    assert proc.stdout == ""


def test_unknown_parameter_lists_the_allowed_ones():
    proc = playground("train", "mlp", "-p", "learning_rate=0.1")
    assert proc.returncode == 2
    assert "learning_rate" in proc.stderr and "hidden" in proc.stderr and "activation" in proc.stderr


def test_unknown_kind_exits_2():
    proc = playground("train", "gan")
    assert proc.returncode == 2
    assert "'gan'" in proc.stderr and "linear" in proc.stderr
