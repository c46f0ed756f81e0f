"""MaintenanceWindowTimetable: one run per maintenance window, registered by plugin.py.

Each run starts when its window opens; its data interval is the window itself,
so the tasks take the interval's end as their deadline and stop there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from pendulum import DateTime, instance

from nova_audit_ops.settings.windows import Window


def _pendulum(value: dt.datetime) -> DateTime:
    return instance(value.astimezone(dt.timezone.utc))


class MaintenanceWindowTimetable(Timetable):
    """Schedule inside a window such as 01:00-05:00 on chosen weekdays, time zone aware."""

    def __init__(self, window: str, days: list[str] | None = None, timezone: str = "UTC") -> None:
        self.window_spec = window
        self.days = list(days or ["*"])
        self.timezone = timezone
        self.window = Window.parse(window, self.days, timezone)
        self.description = f"maintenance window {window} {','.join(self.days)} ({timezone})"

    @property
    def summary(self) -> str:
        return f"window {self.window_spec} {','.join(self.days)} {self.timezone}"

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
