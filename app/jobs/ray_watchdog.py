"""Ends a local Ray that the server started, when the server dies without stopping it (``kill -9``).

``ray.init()`` without an address starts a Ray of the server's own (GCS, raylet and their agents).
A graceful stop shuts it down; a ``kill -9`` of the server leaves some of those processes alive
(the raylet's dashboard and runtime-env agents outlive it). This watchdog is started beside it as
``python -m app.jobs.ray_watchdog SESSION_DIR``, with the server holding the write end of its stdin:
when the server dies, for any reason, the pipe closes, and the watchdog ends every process that ran
below the server (it looks every half second) or whose command line names that Ray session's
folder -- only processes of that session, never another Ray.

No torch, no Ray import: it must start in milliseconds and outlive nothing.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

GRACE_S = 2.0  # SIGTERM first, then SIGKILL for what is still there
SCAN_S = 0.5  # how often it notes the processes below the server


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[1]), int(fields[19])) if fields[0] != "Z" else None


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live process below ``root``."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            table[int(entry)] = stat
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started) in table.items():
            if ppid == parent and pid != os.getpid() and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def session_processes(session_dir: str) -> dict[int, int]:
    """Processes that name the session's folder on their command line (GCS, raylet, workers)."""
    needle = session_dir.encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and (stat := _stat(int(entry))) is not None:
            found[int(entry)] = stat[1]
    return found


def end(processes: dict[int, int]) -> None:
    """SIGTERM, a moment, then SIGKILL -- each only if it is still the same process (its start time)."""
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, 0.0)):
        alive = {pid: started for pid, started in processes.items() if (s := _stat(pid)) and s[1] == started}
        for pid in alive:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = {pid: started for pid, started in alive.items() if (s := _stat(pid)) and s[1] == started}
        processes = alive


def main() -> None:
    session_dir = sys.argv[1]
    server = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal: the server stops Ray
    # The agents rename themselves (ray::DashboardAgent) and lose the session folder from their
    # command line, so the watchdog also remembers what runs below the server while it lives.
    known: dict[int, int] = {}
    while True:
        ready, _, _ = select.select([sys.stdin.buffer], [], [], SCAN_S)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break  # EOF: the server closed the pipe or died
        known.update(descendants(server))
    end({**known, **session_processes(session_dir)})


if __name__ == "__main__":
    main()
