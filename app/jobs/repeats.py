"""Repeating a run with other seeds (``POST /api/jobs/{id}/repeat``): which seeds, which names, and
whether the queue has room for all of them at once. No torch.

A run's seed fixes its validation split and its initialisation, so k runs that differ only in it
show how much of a result is the setting and how much is luck; Compare draws them as one band.
"""

from __future__ import annotations

import re

from app.errors import PlaygroundError, QueueFull
from app.models import MAX_NAME_CHARS, MAX_SEED

MIN_SEEDS = 2  # one more run is "Edit and run again"; a band needs two
MAX_SEEDS = 10  # a class's runs share the workers: ten is plenty to see a spread

_SEED_SUFFIX = re.compile(r"( · seed \d+)+$")


class NotEnoughRoom(QueueFull):
    """More runs asked for at once than a queue has room for: 429, like a full queue, and none is made."""

    def __init__(self, field: str, asked: int, room: int, limit: int, setting: str, whose: str) -> None:
        self.field = field
        self.asked = asked
        self.room = room
        self.queued = limit - room
        self.limit = limit
        PlaygroundError.__init__(
            self,
            f"{field}={asked}: {whose} has room for {room} more run(s) ({self.queued} waiting, {setting}={limit}); "
            "none was started. Ask for fewer, or try again when some have started (or cancel some).",
        )


def repeat_seeds(seed: int, count: int) -> list[int]:
    """The ``count`` seeds after ``seed`` (wrapping at MAX_SEED): unlike it and each other, and the
    same each time, so repeating a run twice repeats the same runs."""
    return [(seed + i) % (MAX_SEED + 1) for i in range(1, count + 1)]


def repeat_name(name: str, seed: int) -> str:
    """``"<name> · seed <seed>"``; a repeat of a repeat replaces the seed instead of adding one."""
    suffix = f" · seed {seed}"
    base = _SEED_SUFFIX.sub("", name)
    return base[: MAX_NAME_CHARS - len(suffix)] + suffix
