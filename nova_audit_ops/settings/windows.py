"""Maintenance windows: hours of the day on chosen weekdays, in a time zone.

Plain datetime arithmetic, no Airflow: the timetable and the operators both
ask this module when the next window opens and when the current one closes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from nova_audit_ops.settings.errors import ConfigError
from nova_audit_ops.settings.validators import DAYS, check_days, check_timezone, check_window


@dataclass(frozen=True)
class Window:
    """Opens at `start` local time on each of `days`, closes `length` later."""

    start: dt.time
    length: dt.timedelta
    days: frozenset[int]  # 0 = Monday
    tz: ZoneInfo

    @classmethod
    def parse(cls, window: str, days: Sequence[str] = ("*",), timezone: str = "UTC") -> Window:
        for problem in (check_window(window), check_days(list(days)), check_timezone(timezone)):
            if problem:
                raise ConfigError(
                    f"maintenance window {window!r} {list(days)} {timezone}: {problem}"
                )
        begin, end = window.split("-")
        h1, m1 = (int(x) for x in begin.split(":"))
        h2, m2 = (int(x) for x in end.split(":"))
        minutes = (h2 * 60 + m2 - h1 * 60 - m1) % (24 * 60)
        chosen = range(7) if "*" in days or not days else [DAYS.index(d.lower()) for d in days]
        return cls(
            dt.time(h1, m1), dt.timedelta(minutes=minutes), frozenset(chosen), ZoneInfo(timezone)
        )

    def _opening(self, day: dt.date) -> dt.datetime:
        local = dt.datetime.combine(day, self.start, tzinfo=self.tz)
        # Round-trip through UTC so a start inside a DST gap lands on a real instant.
        return local.astimezone(dt.timezone.utc)

    def _openings_from(self, moment: dt.datetime) -> Iterator[dt.datetime]:
        day = moment.astimezone(self.tz).date() - dt.timedelta(days=1)
        for offset in range(0, 8 * 366):
            current = day + dt.timedelta(days=offset)
            if current.weekday() in self.days:
                yield self._opening(current)

    def next_window(self, after: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The first window that opens at or after `after` (UTC start, UTC end)."""
        for opening in self._openings_from(after):
            if opening >= after:
                return opening, opening + self.length
        raise ConfigError("maintenance window never opens")  # pragma: no cover - days non-empty

    def current_or_next(self, moment: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The window open at `moment`, or else the next one to open."""
        for opening in self._openings_from(moment):
            if opening + self.length > moment:
                return opening, opening + self.length
        raise ConfigError("maintenance window never opens")  # pragma: no cover
