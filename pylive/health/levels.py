"""When to warn (pure): once per level on the way up, again after the reading went back below it.

A level is re-armed only when the reading falls REARM points below it, so a fill that hovers
around 90 % does not warn at every poll. Crossing several levels between two readings gives one
warning, for the highest. A state other than active (Overflow, Invalid, a failed pool) is
reported once, at once.
"""

from __future__ import annotations

from pylive.health.status import DEFAULT_LEVELS, Reading, State
from pylive.record import record

REARM = 2.0  # points below a level before it can warn again


@record
class Event:
    level: int | None  # the level crossed; None for a change of state
    state: State
    percent: float


class Levels:
    def __init__(self, levels: tuple[int, ...] = DEFAULT_LEVELS) -> None:
        self.levels = tuple(sorted(levels))
        self.armed = set(self.levels)
        self.state = State.ACTIVE

    def update(self, reading: Reading) -> list[Event]:
        events: list[Event] = []
        if reading.state is not self.state:
            self.state = reading.state
            if reading.state is not State.ACTIVE:
                events.append(Event(None, reading.state, reading.percent))
        pct = reading.percent
        for lv in self.levels:
            if pct < lv - REARM:
                self.armed.add(lv)
        crossed = [lv for lv in self.levels if pct >= lv and lv in self.armed]
        self.armed.difference_update(crossed)
        if crossed and reading.state is State.ACTIVE:
            events.append(Event(max(crossed), reading.state, pct))
        return events


def parse_levels(text: str) -> tuple[int, ...] | None:
    """`rd.pylive.watch=80,90,95`: the levels in percent (1-99, increasing); `0`/`no`/`off`: no watcher
    (None). Raises ValueError with what is wrong."""
    low = text.strip().lower()
    if low in ("0", "no", "off", "false"):
        return None
    if low in ("", "1", "yes", "on", "true"):
        return DEFAULT_LEVELS
    try:
        levels = tuple(int(x) for x in low.split(","))
    except ValueError:
        raise ValueError("must be percentages separated by commas, or 0 to turn the watcher off") from None
    if not all(1 <= lv <= 99 for lv in levels) or list(levels) != sorted(set(levels)):
        raise ValueError("must be increasing percentages from 1 to 99")
    return levels
