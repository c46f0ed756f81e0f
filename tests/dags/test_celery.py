"""The production shape (docker-compose.yaml): CeleryExecutor, PostgreSQL metadata DB, Redis.

The machine's PostgreSQL and Redis, a Celery worker beside the scheduler: a
manual heal run of discover_hosts maps the host that drift unmapped, with the
per-cell tasks fanned out to the worker and the report in PostgreSQL's XCom.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from nova_audit_ops.engine.report import Code
from testbed import airflow_stack, drift
from tests import support

pytestmark = pytest.mark.timeout(600)
DAG = "nova_audit_discover_hosts"


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[airflow_stack.AirflowStack]:
    home = tmp_path_factory.mktemp("airflow-celery")
    with airflow_stack.running(home, executor="celery") as running:
        yield running


def test_a_manual_heal_run_through_celery(stack: airflow_stack.AirflowStack, nova_bed: Any) -> None:
    shutil.copy(nova_bed.config_path, stack.config_path)
    [change] = drift(nova_bed, "unmapped_hosts", 1)
    stack.wait_for_dags([DAG])
    stack.airflow("dags", "unpause", DAG)
    stack.airflow("dags", "trigger", DAG, "-c", json.dumps({"mode": "heal"}))
    [run] = stack.wait_for_runs(DAG, 1, run_type="manual")
    assert run["state"] == "success"
    report = stack.summary(run["id"])
    assert report.code == Code.OK and report.counts.fixed == 1
    mapped = support.query(
        nova_bed.api_url, "SELECT host FROM host_mappings WHERE host = :h", h=change["host"]
    )
    assert len(mapped) == 1
    states = stack.query(
        "SELECT task_id, rendered_map_index, state FROM task_instance WHERE run_id = :r",
        r=run["run_id"],
    )
    by_task = {(s["task_id"], s["rendered_map_index"]): s["state"] for s in states}
    assert by_task.pop(("run_cell", "cell0")) == "skipped"  # discover_hosts skips cell0
    assert {("run_cell", "cell1"), ("run_cell", "cell2")} <= set(by_task)
    assert set(by_task.values()) == {"success"}

    # Batch fan-out through the same stack: map_instances with its cells split into id
    # ranges, the batches run by the worker's two slots side by side, the summary merged.
    missing = {c["instance_uuid"] for c in drift(nova_bed, "unmapped_instances", 8)}
    fanned = "nova_audit_map_instances"
    stack.wait_for_dags([fanned])
    stack.airflow("dags", "unpause", fanned)
    params = {"mode": "heal", "fanout_instances": 3}
    stack.airflow("dags", "trigger", fanned, "-c", json.dumps(params))
    [run] = stack.wait_for_runs(fanned, 1, run_type="manual")
    assert run["state"] == "success"
    report = stack.summary(run["id"])
    assert report.code == Code.OK and report.counts.fixed == len(missing)
    assert sorted(report.cells_checked) == ["cell0", "cell1", "cell2"]
    states = stack.query(
        "SELECT task_id, rendered_map_index, state FROM task_instance WHERE run_id = :r",
        r=run["run_id"],
    )
    batches = {s["rendered_map_index"]: s["state"] for s in states if s["task_id"] == "run_cell"}
    assert len([b for b in batches if b.startswith("cell1 ids ")]) == 4, batches
    assert "cell0" in batches and set(batches.values()) == {"success"}
    left = support.query(nova_bed.api_url, "SELECT instance_uuid FROM instance_mappings")
    assert missing <= {r.instance_uuid for r in left}
