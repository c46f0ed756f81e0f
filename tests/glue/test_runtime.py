"""What a task run takes from its Airflow context: reference time and window deadline."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from nova_audit_ops.glue.runtime import reference_time, run_params, window_end

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)


def test_reference_time_is_the_interval_end_or_run_after() -> None:
    end = dt.datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    assert reference_time({"data_interval_end": end}) == end
    manual = SimpleNamespace(run_after=dt.datetime(2026, 3, 2, tzinfo=UTC), run_type="manual")
    assert reference_time({"data_interval_end": None, "dag_run": manual}) == manual.run_after


def test_liveness_checks_use_the_wall_clock_even_in_a_backfill() -> None:
    old = {"data_interval_end": dt.datetime(2026, 3, 1, 5, 0, tzinfo=UTC)}
    assert reference_time(old, "map_instances") == old["data_interval_end"]
    for task in ("preflight", "host_fault"):
        assert abs((reference_time(old, task) - dt.datetime.now(UTC)).total_seconds()) < 5


def test_scheduled_run_in_a_window_stops_at_its_end() -> None:
    later = NOW + dt.timedelta(hours=2)
    scheduled = SimpleNamespace(run_type="scheduled")
    context = {"data_interval_end": later, "dag_run": scheduled}
    assert window_end(context, {"window": "01:00-05:00"}) == later
    assert window_end(context, {"window": None}) is None


def test_manual_runs_and_past_windows_have_only_the_time_budget() -> None:
    later = NOW + dt.timedelta(hours=2)
    manual = SimpleNamespace(run_type="DagRunType.MANUAL")
    assert (
        window_end({"data_interval_end": later, "dag_run": manual}, {"window": "1:00-5:00"}) is None
    )
    past = {
        "data_interval_end": NOW - dt.timedelta(days=3),
        "dag_run": SimpleNamespace(run_type="backfill"),
    }
    assert window_end(past, {"window": "01:00-05:00"}) is None


def test_only_the_tasks_knobs_are_taken_from_params() -> None:
    params = {"mode": "heal", "batch_size": 7, "unrelated": 1}
    assert run_params("discover_hosts", {"params": params}) == {"mode": "heal", "batch_size": 7}
