"""The DAGs under `airflow dags test` against a real Nova test bed on MariaDB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nova_audit_ops.engine.report import Code, Status
from testbed import drift
from testbed.airflow_env import (
    airflow_env,
    run_airflow,
    run_state,
    summary_report,
    task_states,
)
from tests import support
from tests.dags.test_glance import notes


def dags_test(
    home: Path, bed: Any, task: str, config: str | None = None, **params: Any
) -> tuple[int, str]:
    env = airflow_env(home, config or bed.config_path)
    result = run_airflow(
        env, "dags", "test", f"nova_audit_{task}", "-c", json.dumps(params), check=False
    )
    return result.returncode, result.stdout + result.stderr


def check_task_logs(log: str) -> None:
    """Each cell's log holds its findings table and the summary its own, each header once;
    the tables' lines fit 120 columns (Airflow adds its timestamp and logger around them)."""
    for cell in ("cell1", "cell2"):
        assert log.count(f"discover_hosts (audit mode), cell {cell}\n") == 1, log
    assert log.count("discover_hosts (audit mode)\n") == 1, "the summary's header, once"
    assert log.count("PROBLEM / ACTION / FIX") == 3  # cell1, cell2 and the summary
    rows = [line for line in log.splitlines() if line.startswith(("CELL ", "cell1 ", "cell2 "))]
    assert len(rows) == 3 + 2 * 2 and max(len(line) for line in rows) <= 120


def test_discover_hosts_audit_heal_audit(airflow_home: Path, nova_bed: Any) -> None:
    drift(nova_bed, "unmapped_hosts", 2)
    before = support.snapshot(nova_bed)

    _, log = dags_test(airflow_home, nova_bed, "discover_hosts", mode="audit")
    check_task_logs(log)
    audit = summary_report(airflow_home, "nova_audit_discover_hosts")
    assert audit.code == Code.WARNING
    assert {f.status for f in audit.findings} == {Status.WOULD_FIX}
    assert audit.counts.drifted == 2
    assert support.snapshot(nova_bed) == before, "audit mode wrote to a database"
    states = task_states(airflow_home, "nova_audit_discover_hosts")
    # the mapped tasks carry the cell names (map_index_template); cell0, which
    # discover_hosts does not work on, is skipped, not a green task that did nothing
    assert states.pop("run_cell[cell0]") == "skipped"
    assert {"run_cell[cell1]", "run_cell[cell2]"} <= set(states)
    assert set(states.values()) == {"success"}
    assert sorted(audit.cells_checked) == ["cell1", "cell2"] and not audit.cells_failed
    assert run_state(airflow_home, "nova_audit_discover_hosts") == "success"

    dags_test(airflow_home, nova_bed, "discover_hosts", mode="heal")
    heal = summary_report(airflow_home, "nova_audit_discover_hosts")
    assert heal.code == Code.OK and heal.counts.fixed == 2

    dags_test(airflow_home, nova_bed, "discover_hosts", mode="audit")
    assert summary_report(airflow_home, "nova_audit_discover_hosts").counts.drifted == 0


def test_unknown_cell_fails_list_cells_and_writes_nothing(
    airflow_home: Path, nova_bed: Any
) -> None:
    drift(nova_bed, "unmapped_hosts", 1)
    before = support.snapshot(nova_bed)
    _code, output = dags_test(
        airflow_home, nova_bed, "discover_hosts", mode="heal", cells=["no-such-cell"]
    )
    states = task_states(airflow_home, "nova_audit_discover_hosts")
    assert states["list_cells"] == "failed"
    assert states["summary"] == "failed"
    assert run_state(airflow_home, "nova_audit_discover_hosts") == "failed"
    assert "no-such-cell" in output
    assert not any(key.startswith("run_cell[") for key in states)
    note, _ = notes(airflow_home)  # what the grid and the runs list mark
    assert note is not None
    assert note.startswith("nova-audit: FAILURE in discover_hosts: no summary report")
    assert support.snapshot(nova_bed) == before


def test_bad_param_is_refused_before_the_run(airflow_home: Path, nova_bed: Any) -> None:
    code, output = dags_test(airflow_home, nova_bed, "discover_hosts", mode="destroy")
    assert code != 0
    assert "destroy" in output


def test_unreachable_cell_fails_that_cell_only(
    airflow_home: Path, nova_bed: Any, tmp_path: Path
) -> None:
    drift(nova_bed, "unmapped_hosts", 2)
    config = Path(nova_bed.config_path).read_text(encoding="utf-8")
    config += "\n[audit.cells]\ncell2 = mysql+pymysql://natb:s3cret-pw@127.0.0.1:1/nope\n"
    broken = tmp_path / "nova-audit.conf"
    broken.write_text(config, encoding="utf-8")
    env = airflow_env(airflow_home, broken)
    result = run_airflow(
        env, "dags", "test", "nova_audit_discover_hosts", "-c", '{"mode": "heal"}', check=False
    )
    report = summary_report(airflow_home, "nova_audit_discover_hosts")
    states = task_states(airflow_home, "nova_audit_discover_hosts")
    assert states["run_cell[cell2]"] == "failed"
    assert states["run_cell[cell1]"] == "success"
    assert report.code == Code.FAILURE
    assert report.cells_failed == ["cell2"]
    assert report.counts.fixed == 1  # cell1's host was still mapped
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "s3cret-pw" not in json.dumps(report.to_dict())


@pytest.mark.parametrize(
    ("task", "scenario", "count"),
    [
        ("map_instances", "unmapped_instances", 3),
        ("heal_instance_mappings", "wrong_cell_mappings", 2),
        ("heal_instance_mappings", "orphan_mappings", 2),
    ],
)
def test_instance_mapping_dags_heal(
    airflow_home: Path, nova_bed: Any, task: str, scenario: str, count: int
) -> None:
    drift(nova_bed, scenario, count)
    dags_test(airflow_home, nova_bed, task, mode="heal")
    heal = summary_report(airflow_home, f"nova_audit_{task}")
    assert heal.counts.fixed == count and heal.code == Code.OK
    dags_test(airflow_home, nova_bed, task, mode="audit")
    assert summary_report(airflow_home, f"nova_audit_{task}").counts.drifted == 0


def test_cell_connection_overrides_cell_mappings(airflow_home: Path, nova_bed: Any) -> None:
    """An Airflow connection nova_cell_<name> replaces the cell's database URL."""
    conn = {
        "conn_type": "mysql",
        "host": "127.0.0.1",
        "port": 1,
        "login": "natb",
        "password": "conn-s3cret",
        "schema": "nope",
    }
    env = airflow_env(airflow_home, nova_bed.config_path)
    env["AIRFLOW_CONN_NOVA_CELL_CELL1"] = json.dumps(conn)
    result = run_airflow(
        env, "dags", "test", "nova_audit_discover_hosts", "-c", '{"mode": "audit"}', check=False
    )
    states = task_states(airflow_home, "nova_audit_discover_hosts")
    assert states["run_cell[cell1]"] == "failed"
    assert states["run_cell[cell2]"] == "success"
    report = summary_report(airflow_home, "nova_audit_discover_hosts")
    assert report.cells_failed == ["cell1"]
    assert "conn-s3cret" not in result.stdout + result.stderr


def test_placement_dags(airflow_home: Path, nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    drift(bed, "missing_aggregates", 2)
    orphans = {c["consumer_uuid"] for c in drift(bed, "orphan_allocations", 2)}
    _, log = dags_test(airflow_home, bed, "sync_aggregates", mode="heal")
    assert log.count("sync_aggregates (heal mode), global step\n") == 1, "its own table"
    healed = summary_report(airflow_home, "nova_audit_sync_aggregates")
    assert healed.counts.fixed == 2 and healed.code == Code.OK
    assert "run_global" in task_states(airflow_home, "nova_audit_sync_aggregates")

    dags_test(airflow_home, bed, "orphaned_allocations", mode="audit")
    audit = summary_report(airflow_home, "nova_audit_orphaned_allocations")
    assert {f.object_id for f in audit.findings} == orphans
    assert audit.code == Code.WARNING


def test_archive_updates_cell_assets_and_purge_follows(airflow_home: Path, nova_bed: Any) -> None:
    import sqlite3

    dags_test(airflow_home, nova_bed, "archive_deleted_rows", mode="heal", before="2100-01-01")
    report = summary_report(airflow_home, "nova_audit_archive_deleted_rows")
    assert report.code == Code.OK and report.counts.fixed > 0
    moved = {cell for cell, tables in report.details["rows"].items() if sum(tables.values())}
    assert moved, report.details
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        [(run_id,)] = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = 'nova_audit_archive_deleted_rows' "
            "ORDER BY id DESC LIMIT 1"
        ).fetchall()
        sent = db.execute(
            "SELECT a.name, a.uri, e.extra, e.source_task_id FROM asset_event e "
            "JOIN asset a ON a.id = e.asset_id WHERE e.source_run_id = ?",
            (run_id,),
        ).fetchall()
    uuids = {c.name: c.uuid for c in nova_bed.cells}
    # one event per cell that moved rows (none for a cell that moved nothing), all from the
    # announce task, named by the cell's name, its uuid in the URI and the extra
    assert sorted(name for name, *_ in sent) == sorted(
        f"nova_audit_shadow_tables.{cell}" for cell in moved
    )
    assert {task for *_, task in sent} == {"announce"}
    for name, uri, extra, _ in sent:
        cell = name.removeprefix("nova_audit_shadow_tables.")
        assert uri == f"nova-audit://nova_audit_shadow_tables/{uuids[cell]}"
        assert json.loads(extra)["cell_uuid"] == uuids[cell]
        assert json.loads(extra)["rows"] == report.details["rows"][cell]

    dags_test(airflow_home, nova_bed, "purge_shadow_tables", mode="heal", before="2100-01-01")
    purge = summary_report(airflow_home, "nova_audit_purge_shadow_tables")
    assert purge.code == Code.OK and purge.counts.fixed > 0
    for cell in nova_bed.cells:
        assert support.query(cell.url, "SELECT COUNT(*) AS n FROM shadow_instances")[0].n == 0


def test_resume_markers_live_in_airflow_variables(airflow_home: Path, nova_bed: Any) -> None:
    import sqlite3

    drift(nova_bed, "unmapped_instances", 4)
    dags_test(airflow_home, nova_bed, "map_instances", mode="heal", batch_size=1, max_batches=1)
    first = summary_report(airflow_home, "nova_audit_map_instances")
    assert first.more_work and first.code == Code.WARNING
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        keys = {r[0] for r in db.execute("SELECT key FROM variable")}
    assert any(k.startswith("nova_audit.map_instances.") for k in keys)
    for _ in range(40):
        dags_test(airflow_home, nova_bed, "map_instances", mode="heal", batch_size=20)
        if not summary_report(airflow_home, "nova_audit_map_instances").more_work:
            break
    dags_test(airflow_home, nova_bed, "map_instances", mode="audit")
    assert summary_report(airflow_home, "nova_audit_map_instances").counts.drifted == 0
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        left = {r[0] for r in db.execute("SELECT key FROM variable")}
    assert not any(k.startswith("nova_audit.map_instances.") for k in left)


def test_preflight_and_host_fault_dags(
    airflow_home: Path, nova_bed_placement: Any, tmp_path: Path
) -> None:
    from testbed import heartbeat, nova_api

    bed = nova_bed_placement
    [silent] = drift(bed, "silent_hosts", 1)
    drift(bed, "unmapped_hosts", 1)
    heartbeat(bed)
    code, output = dags_test(airflow_home, bed, "preflight", mode="heal")
    assert code != 0 and "mode" in output, "preflight must refuse heal"
    dags_test(airflow_home, bed, "preflight")
    checks = summary_report(airflow_home, "nova_audit_preflight")
    assert checks.code == Code.WARNING
    assert {f.object_id for f in checks.findings} == {
        "Compute services up",
        "Unmapped compute nodes",
    }
    assert "run_global" in task_states(airflow_home, "nova_audit_preflight")

    api = nova_api.start(bed)
    try:
        config = support.config_with(bed, tmp_path, nova=nova_api.config_section(api))
        dags_test(
            airflow_home, bed, "host_fault", config=config, mode="heal", hosts=[silent["host"]]
        )
    finally:
        nova_api.stop(api)
    healed = summary_report(airflow_home, "nova_audit_host_fault")
    assert healed.code == Code.OK, healed.findings
    assert any(f.kind == "host" and f.status is Status.FIXED for f in healed.findings)
    forced = support.query(
        support.cell_url(bed, silent["cell"]),
        "SELECT forced_down FROM services WHERE host = :h AND `binary` = 'nova-compute'",
        h=silent["host"],
    )
    assert forced[0].forced_down


def test_volume_attachments_dag(airflow_home: Path, nova_bed: Any, tmp_path: Path) -> None:
    from testbed import cinder as cinder_bed

    cinder = cinder_bed.start(nova_bed)
    try:
        cinder_bed.seed(nova_bed, cinder)
        dangling = {c["attachment_id"] for c in cinder_bed.deleted_servers(nova_bed, cinder, 2)}
        config = support.config_with(
            nova_bed,
            tmp_path,
            cinder=cinder_bed.config_section(cinder),
            **{"audit.volume_attachments": {"grace_period": "0"}},
        )
        dags_test(airflow_home, nova_bed, "volume_attachments", config=config, mode="heal")
        healed = summary_report(airflow_home, "nova_audit_volume_attachments")
        assert {f.object_id for f in healed.findings if f.status is Status.FIXED} == dangling
        assert not dangling & set(cinder_bed.attachments(cinder))
        states = task_states(airflow_home, "nova_audit_volume_attachments")
        assert "run_global" in states and set(states.values()) == {"success"}
    finally:
        cinder_bed.stop(cinder)
