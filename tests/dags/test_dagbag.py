"""DAG integrity: every file imports cleanly and fast, and follows the conventions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nova_audit_ops.registry import TASKS
from testbed.airflow_env import DAGS_FOLDER

DAG_FILES = sorted(DAGS_FOLDER.glob("nova_audit_*.py"))


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}


def test_one_dag_per_task_named_after_its_file(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert {f.stem for f in DAG_FILES} == {f"nova_audit_{t}" for t in TASKS}
    assert set(dagbag.dag_ids) == {f.stem for f in DAG_FILES}
    for path in DAG_FILES:
        assert Path(dagbag.dags[path.stem].fileloc).name == path.name


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_conventions(dagbag, path: Path) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[path.stem]
    task = path.stem.removeprefix("nova_audit_")
    assert dag.max_active_runs == 1
    assert set(dag.tags) == {"nova-audit", TASKS[task].family}
    assert dag.doc_md and path.stem in dag.doc_md
    for op in dag.tasks:
        assert op.retries >= 2, f"{op.task_id} has retries={op.retries}"
    assert {"list_cells", "run_cell", "summary"} <= set(dag.task_ids)
    assert set(dag.params) == {k.name for k in TASKS[task].param_knobs()}
    assert dag.params["mode"] == "audit", "the shipped default mode must be audit"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_file_imports_in_under_two_seconds(path: Path) -> None:
    # Airflow itself is imported first: the budget is for the DAG file's own cost.
    code = (
        "import time, runpy, airflow.sdk\n"
        "t = time.perf_counter()\n"
        f"runpy.run_path({str(path)!r})\n"
        "print(time.perf_counter() - t)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    seconds = float(out.stdout.strip().splitlines()[-1])
    assert seconds < 2.0, f"{path.name} took {seconds:.2f} s to import"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("mode", "destroy"),
        ("batch_size", 0),
        ("batch_size", "many"),
        ("cells", "cell1"),
        ("max_batches", -1),
        ("batch_pause_ms", -1),
        ("max_rows_per_second", "fast"),
        ("max_replica_lag", -5),
    ],
)
def test_params_reject_bad_values(dagbag, name: str, value: object) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk.exceptions import ParamValidationError

    params = dagbag.dags["nova_audit_map_instances"].params
    with pytest.raises(ParamValidationError):
        params.get_param(name).resolve(value)


def test_params_accept_good_values(dagbag) -> None:  # type: ignore[no-untyped-def]
    params = dagbag.dags["nova_audit_discover_hosts"].params
    assert params.get_param("mode").resolve("heal") == "heal"
    assert params.get_param("cells").resolve(["cell1"]) == ["cell1"]
    assert params.get_param("lock_timeout").resolve(5) == 5
    archive = dagbag.dags["nova_audit_archive_deleted_rows"].params
    assert archive.get_param("max_replica_lag").resolve(10) == 10
    assert archive.get_param("batch_pause_ms").resolve(250) == 250


def test_host_fault_instance_state_is_a_choice(dagbag) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk.exceptions import ParamValidationError

    param = dagbag.dags["nova_audit_host_fault"].params.get_param("instance_state")
    assert param.value == "error", "today's behaviour stays the default"
    assert param.resolve("stopped") == "stopped"
    with pytest.raises(ParamValidationError):
        param.resolve("shutoff")


def test_archive_runs_in_a_window_and_purge_on_its_assets(dagbag) -> None:  # type: ignore[no-untyped-def]
    from nova_audit_ops.glue.timetables import MaintenanceWindowTimetable

    archive = dagbag.dags["nova_audit_archive_deleted_rows"]
    assert isinstance(archive.timetable, MaintenanceWindowTimetable)
    assert archive.timetable.window_spec == "01:00-05:00"
    purge = dagbag.dags["nova_audit_purge_shadow_tables"]
    assert "nova_audit_shadow_tables" in str(purge.timetable.asset_condition)
    # One task adds all of a run's events (one purge run per archive run), not each cell
    announce = archive.get_task("announce")
    assert [o.name for o in announce.outlets] == ["nova_audit_shadow_tables"]
    assert not archive.get_task("run_cell").partial_kwargs.get("outlets")
    assert announce.trigger_rule == "all_done"
    assert announce.upstream_task_ids == {"run_cell"}
    # Only archive's events start purge: paused, it would never run
    assert purge.is_paused_upon_creation is False
    assert "announce" not in purge.task_ids
    others = [d for d in dagbag.dags.values() if d.dag_id != purge.dag_id]
    assert all(d.is_paused_upon_creation for d in others)


def test_schedules_read_as_words(dagbag) -> None:  # type: ignore[no-untyped-def]
    """The DAG list shows a timetable's summary and, on hover, its description."""
    archive = dagbag.dags["nova_audit_archive_deleted_rows"].timetable
    assert archive.summary == "daily 01:00-05:00 UTC"
    from airflow.serialization.encoders import coerce_to_core_timetable

    # The scheduler's copy describes a cron in words (cron-descriptor, Airflow's dependency)
    cron = coerce_to_core_timetable(dagbag.dags["nova_audit_discover_hosts"].timetable)
    assert cron.description == "Every 10 minutes"
