"""A fanned-out DAG run under `airflow dags test`: split cells, readable batch names,
the summary merging the batches, and a failed batch failing its cell by range."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nova_audit_ops.engine.report import Code, Status
from testbed import drift
from testbed.airflow_env import run_state, summary_report, task_states
from tests import support
from tests.dags.test_dag_runs import dags_test
from tests.tasks.test_map_instances import unmapped

DAG = "nova_audit_map_instances"


def test_map_instances_split_into_batches(airflow_home: Path, nova_bed: Any) -> None:
    missing = {c["instance_uuid"] for c in drift(nova_bed, "unmapped_instances", 9)}
    before = support.snapshot(nova_bed)
    code, log = dags_test(airflow_home, nova_bed, "map_instances", mode="audit", fanout_instances=3)
    assert code == 0, log
    assert support.snapshot(nova_bed) == before, "an audit run of the batches wrote"
    audit = summary_report(airflow_home, DAG)
    assert audit.code == Code.WARNING and {f.object_id for f in audit.findings} == missing
    assert sorted(audit.cells_checked) == ["cell0", "cell1", "cell2"]
    states = task_states(airflow_home, DAG)
    batches = sorted(k for k in states if k.startswith("run_cell["))
    assert "run_cell[cell0]" in batches, "a cell at or below the threshold keeps its name"
    for cell in ("cell1", "cell2"):
        mine = [k for k in batches if k.startswith(f"run_cell[{cell} ids ")]
        assert len(mine) == 4, batches
        assert f"run_cell[{cell} ids 1-" in " ".join(mine) and any(
            k.endswith("-end]") for k in mine
        )
    assert states["plan_batches"] == "success" and set(states.values()) == {"success"}

    dags_test(airflow_home, nova_bed, "map_instances", mode="heal", fanout_instances=3)
    heal = summary_report(airflow_home, DAG)
    assert heal.code == Code.OK and heal.counts.fixed == len(missing)
    assert {f.status for f in heal.findings} == {Status.FIXED}
    assert not unmapped(nova_bed)
    assert set(heal.details["batches"]) == {k[9:-1] for k in batches if " ids " in k}


def test_whole_cells_when_fanout_is_off(airflow_home: Path, nova_bed: Any) -> None:
    dags_test(airflow_home, nova_bed, "map_instances", mode="audit", fanout_instances=0)
    states = task_states(airflow_home, DAG)
    cells = sorted(k for k in states if k.startswith("run_cell["))
    assert cells == ["run_cell[cell0]", "run_cell[cell1]", "run_cell[cell2]"]
    assert run_state(airflow_home, DAG) == "success"
