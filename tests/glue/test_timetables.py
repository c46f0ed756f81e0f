"""The maintenance-window timetable: next runs, time zones, catch-up, round trip."""

from __future__ import annotations

import datetime as dt

import pytest

from nova_audit_ops.settings.errors import ConfigError
from nova_audit_ops.settings.windows import Window

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_next_window_daily() -> None:
    window = Window.parse("01:00-05:00")
    assert window.next_window(at("2026-03-02T00:30")) == (
        at("2026-03-02T01:00"),
        at("2026-03-02T05:00"),
    )
    assert window.next_window(at("2026-03-02T01:30"))[0] == at("2026-03-03T01:00")


def test_window_across_midnight_on_chosen_days() -> None:
    window = Window.parse("22:00-02:00", ["sat", "sun"])
    start, end = window.next_window(at("2026-03-02T12:00"))  # a Monday
    assert start == at("2026-03-07T22:00") and end == at("2026-03-08T02:00")


def test_time_zone_and_dst() -> None:
    window = Window.parse("01:00-05:00", ["*"], "Europe/Berlin")
    winter = window.next_window(at("2026-01-10T12:00"))[0]
    summer = window.next_window(at("2026-07-10T12:00"))[0]
    assert winter == at("2026-01-11T00:00") and summer == at("2026-07-10T23:00")


def test_current_window_is_found() -> None:
    window = Window.parse("01:00-05:00")
    assert window.current_or_next(at("2026-03-02T03:00"))[0] == at("2026-03-02T01:00")


@pytest.mark.parametrize(
    ("spec", "days", "tz"),
    [
        ("1-5", ["*"], "UTC"),
        ("01:00-01:00", ["*"], "UTC"),
        ("01:00-05:00", ["funday"], "UTC"),
        ("01:00-05:00", ["*"], "Mars/Olympus"),
    ],
)
def test_bad_windows_are_refused(spec: str, days: list[str], tz: str) -> None:
    with pytest.raises(ConfigError):
        Window.parse(spec, days, tz)


def test_timetable_schedules_one_run_per_window() -> None:
    from airflow.timetables.base import DataInterval, TimeRestriction
    from pendulum import instance

    from nova_audit_ops.glue.timetables import MaintenanceWindowTimetable

    table = MaintenanceWindowTimetable("01:00-05:00", ["mon", "tue"], "UTC")
    restriction = TimeRestriction(
        earliest=instance(at("2026-03-01T00:00")), latest=None, catchup=True
    )
    first = table.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert first is not None and first.run_after == at("2026-03-02T01:00")
    assert first.data_interval == DataInterval(
        instance(at("2026-03-02T01:00")), instance(at("2026-03-02T05:00"))
    )
    second = table.next_dagrun_info(
        last_automated_data_interval=first.data_interval, restriction=restriction
    )
    assert second is not None and second.run_after == at("2026-03-03T01:00")
    third = table.next_dagrun_info(
        last_automated_data_interval=second.data_interval, restriction=restriction
    )
    assert third is not None and third.run_after == at("2026-03-09T01:00")
    late = TimeRestriction(
        earliest=restriction.earliest, latest=instance(at("2026-03-02T00:00")), catchup=True
    )
    assert table.next_dagrun_info(last_automated_data_interval=None, restriction=late) is None
    assert (
        MaintenanceWindowTimetable.deserialize(table.serialize()).serialize() == table.serialize()
    )


def test_timetable_without_catchup_skips_past_windows() -> None:
    from airflow.timetables.base import TimeRestriction
    from pendulum import instance

    from nova_audit_ops.glue.timetables import MaintenanceWindowTimetable

    table = MaintenanceWindowTimetable("01:00-05:00")
    restriction = TimeRestriction(
        earliest=instance(at("2026-01-01T00:00")), latest=None, catchup=False
    )
    info = table.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info is not None and info.data_interval.end > dt.datetime.now(UTC)


def test_plugin_registers_the_timetable() -> None:
    from nova_audit_ops.glue.plugin import NovaAuditPlugin
    from nova_audit_ops.glue.timetables import MaintenanceWindowTimetable

    assert MaintenanceWindowTimetable in NovaAuditPlugin.timetables


def test_dag_with_a_window_uses_the_registered_timetable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A configured window gives the DAG the plugin's timetable, and Airflow can serialize it."""
    import os
    import subprocess
    import sys

    config = tmp_path / "nova-audit.conf"
    config.write_text(
        "[audit.map_instances]\nwindow = 01:00-05:00\nwindow_days = sat, sun\n"
        "timezone = Europe/Berlin\n",
        encoding="utf-8",
    )
    code = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        "from airflow.serialization.serialized_objects import DagSerialization\n"
        "from testbed.airflow_env import DAGS_FOLDER\n"
        "bag = DagBag(dag_folder=str(DAGS_FOLDER))\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "dag = bag.dags['nova_audit_map_instances']\n"
        "data = DagSerialization.to_dict(dag)\n"
        "back = DagSerialization.from_dict(data)\n"
        "print(type(back.timetable).__name__, back.timetable.summary)\n"
    )
    env = {**os.environ, "NOVA_AUDIT_CONFIG": str(config)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MaintenanceWindowTimetable Sat, Sun 01:00-05:00 Europe/Berlin" in out.stdout


def test_the_window_schedule_reads_as_words() -> None:
    """Airflow's DAG list shows the summary as the schedule and the description on hover."""
    from nova_audit_ops.glue.timetables import MaintenanceWindowTimetable

    daily = MaintenanceWindowTimetable("01:00-05:00")
    assert daily.summary == "daily 01:00-05:00 UTC"
    assert daily.description.startswith("One run per maintenance window, daily 01:00-05:00 UTC")
    weekdays = MaintenanceWindowTimetable("22:00-02:00", ["mon", "tue", "wed", "thu", "fri"])
    assert weekdays.summary == "Mon-Fri 22:00-02:00 UTC"
    some = MaintenanceWindowTimetable(
        "01:00-03:00", ["sun", "mon", "wed", "thu", "fri"], "Europe/Berlin"
    )
    assert some.summary == "Mon, Wed-Fri, Sun 01:00-03:00 Europe/Berlin"
    assert MaintenanceWindowTimetable("01:00-03:00", ["sat", "sun"]).summary.startswith("Sat, Sun ")
