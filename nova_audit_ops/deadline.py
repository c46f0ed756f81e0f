"""When a run must stop: the end of its maintenance window or its time budget."""

from __future__ import annotations

import datetime as dt
import time


class Deadline:
    """A point after which a task stops between batches and reports more_work."""

    def __init__(self, seconds: float | None) -> None:
        self._end = None if seconds is None else time.monotonic() + max(seconds, 0.0)

    @classmethod
    def from_settings(cls, time_budget: int, window_end: dt.datetime | None = None) -> Deadline:
        """The earlier of the budget (0 = none) and the window's end."""
        limits: list[float] = []
        if time_budget:
            limits.append(float(time_budget))
        if window_end is not None:
            limits.append((window_end - dt.datetime.now(dt.timezone.utc)).total_seconds())
        return cls(min(limits) if limits else None)

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def remaining(self) -> float | None:
        return None if self._end is None else max(self._end - time.monotonic(), 0.0)
