"""Time as a run sees it: when it must stop (deadline) and what counts as old (cut-off).

Cut-offs never come from now() but from the run's data interval, so
backfills and reruns mean something.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from nova_audit_ops.settings.errors import ConfigError
from nova_audit_ops.settings.validators import parse_before


class Deadline:
    """A point after which a task stops between batches and reports more_work."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock  # injectable, so pacing tests need not sleep for real
        self._end = None if seconds is None else clock() + max(seconds, 0.0)

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
        return self._end is not None and self._clock() >= self._end

    def remaining(self) -> float | None:
        return None if self._end is None else max(self._end - self._clock(), 0.0)


def cutoff(reference_time: dt.datetime, retention_days: int, before: str | None) -> dt.datetime:
    """An explicit `before` wins; otherwise the data interval's end minus the retention.

    Returned naive in UTC, as Nova stores its timestamps.
    """
    if before:
        try:
            moment = parse_before(before)
        except ValueError as exc:
            raise ConfigError(f"before = {before!r} is invalid: {exc}") from None
    else:
        moment = reference_time.astimezone(dt.timezone.utc) - dt.timedelta(days=retention_days)
    return moment.replace(tzinfo=None)
