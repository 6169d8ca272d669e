"""A ``playground serve`` subprocess on 127.0.0.1, for the tests and the benchmarks.

``Server(home, env, workers).start()`` runs ``python -m app.cli serve --host 127.0.0.1 --port <free>
--workers N`` with its own ``PLAYGROUND_HOME`` and only the ``PLAYGROUND_*`` settings given, and
waits for ``/api/health``; ``stop()`` signals it and fails if it hangs or leaves a process behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120  # two workers importing torch on a loaded 2-core machine
STOP_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parent_pids() -> dict[int, int]:
    """pid -> ppid of every live (non-zombie) process, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (workers, the predictor, multiprocessing's tracker)."""
    parents = parent_pids()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def worker_pids(pid: int) -> list[int]:
    """The worker and predictor processes a local executor in process ``pid`` started: forked by its
    forkserver (app.jobs.preload), or spawned where there is none."""
    parents = parent_pids()
    below = descendants(pid)
    forkservers = {p for p in below if "multiprocessing.forkserver" in cmdline(p)}
    return [p for p in below if parents.get(p) in forkservers or "spawn_main" in cmdline(p)]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Server:
    """A ``playground serve`` subprocess: ``.url``, ``.home``, ``.proc``, ``.stop()``, ``.restart()``."""

    def __init__(self, home: Path, env: dict[str, str] | None = None, workers: int = 2) -> None:
        self.home = home
        self.workers = workers
        # Only the settings a test asks for: none leak in from the shell that runs the suite.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
        self.env = {**inherited, "PLAYGROUND_HOME": str(home), **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / "server.log"
        self.children: list[int] = []  # processes the server had started, as of the last look

    def start(self) -> Server:
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers)],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    self.children = descendants(self.proc.pid)
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.proc.kill()
        raise RuntimeError(f"the server did not answer /api/health within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> float:
        """Stop it with ``sig``; return how long it took. Fails if it hangs or leaves a process behind."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        children = set(self.children) | set(descendants(self.proc.pid))
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            for pid in children:
                _kill_quietly(pid)
            raise AssertionError(f"the server did not stop within {timeout} s of {sig!r}:\n{self.log_tail()}") from None
        took = time.monotonic() - started
        # Orphans would be reparented and keep running: give them a moment, then name them.
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in children if alive(pid)]
        for pid in left:
            _kill_quietly(pid)
        assert not left, f"processes left after the server stopped: {left}\n{self.log_tail()}"
        return took

    def restart(self) -> Server:
        self.stop()
        return self.start()

    def worker_pids(self) -> list[int]:
        """The training workers and the predictor: the children of its forkserver (or spawned)."""
        return worker_pids(self.proc.pid) if self.proc else []

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
