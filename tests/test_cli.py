"""``playground train``: the JSON report, and exit status 2 naming the bad field."""

import json
import subprocess
import sys

import pytest


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


# ----------------------------------------------------------------------------------------------
# --pause-at and --resume


def playground_in(cwd, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``playground`` run in ``cwd`` (where a checkpoint goes by default), with extra environment."""
    import os
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])
    environ = {**os.environ, "PYTHONPATH": repo, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=180, cwd=cwd, env=environ
    )


def train_paused_then_resumed(tmp_path, kind: str, params: list[str], pause_at: int, env: dict | None = None):
    """The --json reports of an uninterrupted run and of the same run paused at ``pause_at`` and resumed."""
    args = ["train", kind, "--seed", "5", "--device", "cpu", "--json", *params]
    full = playground_in(tmp_path, *args, env=env)
    assert full.returncode == 0, full.stderr
    paused = playground_in(tmp_path, *args, "--pause-at", str(pause_at), env=env)
    assert paused.returncode == 0, paused.stderr
    first = json.loads(paused.stdout)
    assert first["status"] == "paused" and first["checkpoint"]["step"] == pause_at
    resumed = playground_in(tmp_path, "train", "--resume", first["checkpoint"]["path"], "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    return json.loads(full.stdout), first, json.loads(resumed.stdout)


@pytest.mark.parametrize(
    "kind,params",
    [
        ("linear", ["-p", "epochs=300", "-p", "optimizer=adam", "-p", "lr=0.1", "-p", "val_fraction=0.2"]),
        ("mlp", ["-p", "epochs=300", "-p", "hidden=8"]),
    ],
)
def test_pause_at_then_resume_equals_an_uninterrupted_train(tmp_path, kind, params):
    full, paused, resumed = train_paused_then_resumed(tmp_path, kind, params, 123)
    # The checkpoint goes to the current folder by default, named for the run.
    assert paused["checkpoint"]["path"] == f"{kind}-seed5-step123.ckpt" and (tmp_path / paused["checkpoint"]["path"]).is_file()
    assert paused["result"]["epochs_run"] == 123
    assert resumed["status"] == "succeeded" and resumed["seed"] == 5 and resumed["params"] == full["params"]
    assert resumed["resumed_from"]["step"] == 123
    assert resumed["result"] == full["result"]  # final weights, losses, curve: exactly


def test_pause_at_then_resume_equals_an_uninterrupted_cifar_train(tmp_path):
    from tests.fixtures.tiny_cifar import write_tiny_cifar_image_folder

    data = write_tiny_cifar_image_folder(tmp_path / "data")
    env = {"PLAYGROUND_DATA_DIR": str(data), "PLAYGROUND_HOME": str(tmp_path / "home"), "PLAYGROUND_ALLOW_DOWNLOAD": "false"}
    params = ["-p", "model=conv", "-p", "epochs=2", "-p", "batch_size=16"]
    full, paused, resumed = train_paused_then_resumed(tmp_path, "cifar", params, 7, env=env)
    clock = {"train_seconds", "images_per_second"}
    assert resumed["status"] == "succeeded" and resumed["result"]["steps_run"] == 20
    assert {k: v for k, v in resumed["result"].items() if k not in clock} == {
        k: v for k, v in full["result"].items() if k not in clock
    }


def test_resume_takes_live_changes_and_refuses_the_others(tmp_path):
    paused = playground_in(tmp_path, "train", "linear", "-p", "epochs=50", "--pause-at", "20", "--checkpoint", "run.ckpt", "--json")
    assert paused.returncode == 0, paused.stderr
    longer = playground_in(tmp_path, "train", "--resume", "run.ckpt", "-p", "epochs=80", "-p", "lr=0.005", "--json")
    report = json.loads(longer.stdout)
    assert report["result"]["epochs_run"] == 80 and report["params"]["lr"] == 0.005

    fixed = playground_in(tmp_path, "train", "--resume", "run.ckpt", "-p", "input_scale=1")
    assert fixed.returncode == 2
    assert "input_scale cannot change" in fixed.stderr and "epochs, lr" in fixed.stderr
    other_kind = playground_in(tmp_path, "train", "mlp", "--resume", "run.ckpt")
    assert other_kind.returncode == 2 and "'linear' checkpoint, not 'mlp'" in other_kind.stderr


def test_resume_from_a_damaged_checkpoint_names_the_file(tmp_path):
    (tmp_path / "broken.ckpt").write_bytes(b"PK\x03\x04 half a zip")
    proc = playground_in(tmp_path, "train", "--resume", "broken.ckpt", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "'broken.ckpt'" in proc.stderr and "not a readable checkpoint file" in proc.stderr


# ----------------------------------------------------------------------------------------------
# playground users


def users(home, *args: str) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "users", *args],
        capture_output=True, text=True, timeout=120, env={**env, "PLAYGROUND_HOME": str(home)}, check=False,
    )  # fmt: skip


def test_users_add_prints_the_token_once_and_stores_only_its_hash(tmp_path):
    import hashlib
    import sqlite3

    proc = users(tmp_path, "add", "ann", "--role", "student")
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip().splitlines()[-1]
    assert len(token) >= 40 and "ann" in proc.stdout
    database = (tmp_path / "playground.sqlite3").read_bytes()
    assert token.encode() not in database
    with sqlite3.connect(tmp_path / "playground.sqlite3") as db:
        stored = db.execute("SELECT token_hash FROM users WHERE name = 'ann'").fetchone()[0]
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    listed = users(tmp_path, "list")
    assert listed.returncode == 0 and "ann" in listed.stdout and "student" in listed.stdout
    assert token not in listed.stdout  # shown once, never again
    again = users(tmp_path, "add", "ann", "--role", "teacher")
    assert again.returncode == 2 and "'ann' exists already" in again.stderr


def test_users_list_and_remove(tmp_path):
    added = json.loads(users(tmp_path, "add", "tess", "--role", "teacher", "--json").stdout)
    assert added["name"] == "tess" and added["role"] == "teacher" and added["token"]
    users(tmp_path, "add", "ben", "--role", "student")
    assert [(u["name"], u["role"], u["removed_at"]) for u in json.loads(users(tmp_path, "list", "--json").stdout)] == [
        ("ben", "student", None),
        ("tess", "teacher", None),
    ]
    removed = users(tmp_path, "remove", "ben")
    assert removed.returncode == 0 and "runs stay" in removed.stdout
    rows = {u["name"]: u for u in json.loads(users(tmp_path, "list", "--json").stdout)}
    assert rows["ben"]["removed_at"] is not None and rows["tess"]["removed_at"] is None
    gone = users(tmp_path, "remove", "ben")
    assert gone.returncode == 2 and "no user 'ben'" in gone.stderr and "tess" in gone.stderr
    reused = users(tmp_path, "add", "ben", "--role", "student")
    assert reused.returncode == 2 and "removed" in reused.stderr


def test_users_add_refuses_a_bad_name_or_role(tmp_path):
    bad = users(tmp_path, "add", "ann smith", "--role", "student")
    assert bad.returncode == 2 and "'ann smith'" in bad.stderr
    role = users(tmp_path, "add", "ann", "--role", "admin")
    assert role.returncode == 2 and "student" in role.stderr and "teacher" in role.stderr
