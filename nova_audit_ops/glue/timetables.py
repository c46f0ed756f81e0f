"""MaintenanceWindowTimetable: one run per maintenance window, registered by plugin.py.

Each run starts when its window opens; its data interval is the window itself,
so the tasks take the interval's end as their deadline and stop there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from pendulum import DateTime, instance

from nova_audit_ops.settings.validators import DAYS
from nova_audit_ops.settings.windows import Window


def day_words(days: frozenset[int]) -> str:
    """0..6 (Monday first) in words: "daily", "Mon-Fri", "Sat, Sun", "Mon, Wed-Fri"."""
    if len(days) == 7:
        return "daily"
    names = [d.capitalize() for d in DAYS]
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    words = [
        f"{names[r[0]]}-{names[r[-1]]}" if len(r) > 2 else ", ".join(names[d] for d in r)
        for r in runs
    ]
    return ", ".join(words)


def _pendulum(value: dt.datetime) -> DateTime:
    return instance(value.astimezone(dt.timezone.utc))


class MaintenanceWindowTimetable(Timetable):
    """Schedule inside a window such as 01:00-05:00 on chosen weekdays, time zone aware."""

    def __init__(self, window: str, days: list[str] | None = None, timezone: str = "UTC") -> None:
        self.window_spec = window
        self.days = list(days or ["*"])
        self.timezone = timezone
        self.window = Window.parse(window, self.days, timezone)
        # Airflow shows `summary` as the DAG's schedule and `description` on hover.
        self.description = (
            f"One run per maintenance window, {self.summary}; "
            "scheduled runs stop between batches when the window closes."
        )

    @property
    def summary(self) -> str:
        """The schedule in words, e.g. "daily 01:00-05:00 UTC" or "Sat, Sun 22:00-02:00 UTC"."""
        return f"{day_words(self.window.days)} {self.window_spec} {self.timezone}"

    def serialize(self) -> dict[str, Any]:
        return {"window": self.window_spec, "days": self.days, "timezone": self.timezone}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> MaintenanceWindowTimetable:
        return cls(data["window"], data.get("days"), data.get("timezone", "UTC"))

    def validate(self) -> None:
        Window.parse(self.window_spec, self.days, self.timezone)

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        return DataInterval(start=run_after, end=run_after)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            start, end = self.window.next_window(last_automated_data_interval.end)
        elif restriction.earliest is not None:
            start, end = self.window.next_window(restriction.earliest)
        else:
            return None  # no start_date: nothing to schedule from
        if not restriction.catchup:
            now = dt.datetime.now(dt.timezone.utc)
            if end <= now:
                start, end = self.window.current_or_next(now)
        if restriction.latest is not None and start > restriction.latest:
            return None
        return DagRunInfo(
            run_after=_pendulum(start), data_interval=DataInterval(_pendulum(start), _pendulum(end))
        )
