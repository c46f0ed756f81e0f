"""preflight: nova-status-style checks against real Nova databases and Placement."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import testbed
from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.settings.errors import ConfigError
from testbed.placement import PlacementAPI
from tests import support


def seeded_at(bed: Any) -> dt.datetime:
    """The moment the test bed's services last reported: their heartbeat."""
    return dt.datetime.fromisoformat(bed.anchor).replace(tzinfo=dt.timezone.utc)


def run(bed: Any, after: float = 10, **params: Any) -> Any:
    when = seeded_at(bed) + dt.timedelta(seconds=after)
    return support.run(bed, "preflight", reference_time=when, **params)


def problems(report: Any, check: str) -> list[Any]:
    return [f for f in report.findings if f.object_id == check]


def test_consistent_cloud_passes_every_check(nova_bed_placement: Any) -> None:
    report = run(nova_bed_placement)
    assert report.code == Code.OK, report.findings
    checks = report.details["checks"]
    assert checks["Cells v2"] == "success"
    assert checks["Placement API"] == "success"
    assert checks["Cell schema revisions"] == "success"
    assert checks["Cinder API"].startswith("skipped")
    for cell in ("cell1", "cell2"):
        for name in (
            "Compute service versions",
            "Compute services up",
            "Unmapped compute nodes",
            "Compute node providers",
            "Instance mappings",
        ):
            assert checks[f"{cell}: {name}"] == "success"
    assert checks["cell0: Instance mappings"] == "success"


def test_preflight_writes_nothing(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    testbed.drift(bed, "unmapped_hosts", 2)
    testbed.drift(bed, "unmapped_instances", 3)
    before_db, before_placement = support.snapshot(bed), testbed.snapshot_placement(bed)
    report = run(bed, after=3600)
    assert report.code == Code.WARNING
    assert support.snapshot(bed) == before_db
    assert testbed.snapshot_placement(bed) == before_placement


def test_heal_mode_is_refused(nova_bed: Any) -> None:
    with pytest.raises(ConfigError, match="mode"):
        run(nova_bed, mode="heal")


def test_drift_is_reported_with_the_command_that_fixes_it(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    unmapped = testbed.drift(bed, "unmapped_hosts", 2)
    testbed.drift(bed, "unmapped_instances", 3)
    testbed.drift(bed, "orphan_mappings", 2)
    report = run(bed)
    assert report.code == Code.WARNING
    nodes = problems(report, "Unmapped compute nodes")
    assert {f.cell for f in nodes} == {c["cell"] for c in unmapped}
    assert all("discover_hosts" in (f.fix or "") for f in nodes)
    mappings = problems(report, "Instance mappings")
    assert mappings and all(f.status is Status.LEFT for f in mappings)
    assert any("map_instances" in (f.fix or "") for f in mappings)


def test_a_lost_host_mapping_is_reported(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    cell2 = support.cell_url(bed, "cell2")
    host = support.query(cell2, "SELECT host FROM compute_nodes ORDER BY id LIMIT 1")[0].host
    support.execute(bed.api_url, "DELETE FROM host_mappings WHERE host = :h", h=host)
    nodes = problems(run(bed), "Unmapped compute nodes")
    assert [f.cell for f in nodes] == ["cell2"]
    assert "1 host(s) have compute nodes flagged mapped" in nodes[0].problem
    assert "discover_hosts" in (nodes[0].fix or "")


def test_silent_and_old_compute_services(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    cell1 = support.cell_url(bed, "cell1")
    hosts = [
        r.host
        for r in support.query(
            cell1, "SELECT host FROM services WHERE `binary` = 'nova-compute' ORDER BY id"
        )
    ]
    silent, old, forced = hosts[0], hosts[1], hosts[2]
    support.execute(
        cell1,
        "UPDATE services SET last_seen_up = last_seen_up - INTERVAL 1 HOUR WHERE host IN (:a, :b)",
        a=silent,
        b=forced,
    )
    support.execute(cell1, "UPDATE services SET forced_down = 1 WHERE host = :h", h=forced)
    support.execute(cell1, "UPDATE services SET version = 60 WHERE host = :h", h=old)
    upgrading = run(bed)
    [behind] = problems(upgrading, "Compute service versions")
    assert behind.status is Status.LEFT and "upgrade in progress" in behind.problem
    report = run(bed, min_compute_service_version=72)
    assert report.code == Code.FAILURE
    down = problems(report, "Compute services up")
    assert [silent in f.problem for f in down] == [True]
    assert "host_fault" in (down[0].fix or "")
    too_old = problems(report, "Compute service versions")
    assert len(too_old) == 1 and old in too_old[0].problem
    assert too_old[0].status is Status.FAILED
    assert report.details["checks"]["cell1: Compute service versions"] == "failure"
    assert report.details["checks"]["cell2: Compute services up"] == "success"


def test_compute_node_without_provider(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    new = testbed.drift(bed, "new_hosts", 1)
    node = support.query(
        support.cell_url(bed, new[0]["cell"]),
        "SELECT uuid FROM compute_nodes WHERE host = :h",
        h=new[0]["host"],
    )[0].uuid
    PlacementAPI(bed.placement_url).delete(f"/resource_providers/{node}")
    report = run(bed)
    missing = problems(report, "Compute node providers")
    assert [node in f.problem for f in missing] == [True]


def test_placement_unreachable_is_a_failure(nova_bed: Any, tmp_path: Any) -> None:
    config = support.config_with(
        nova_bed, tmp_path, placement={"endpoint": "http://127.0.0.1:9", "connect_retries": "0"}
    )
    when = seeded_at(nova_bed)
    report = support.run(nova_bed, "preflight", reference_time=when, config_path=config)
    assert report.code == Code.FAILURE
    [placement] = problems(report, "Placement API")
    assert placement.status is Status.FAILED and "[placement]" in (placement.fix or "")
    assert report.details["checks"]["cell1: Compute node providers"].startswith("skipped")


def test_cell_schema_drift_and_missing_cell0(nova_bed: Any) -> None:
    cell2 = support.cell_url(nova_bed, "cell2")
    support.execute(cell2, "UPDATE alembic_version SET version_num = 'older'")
    report = run(nova_bed)
    [schema] = problems(report, "Cell schema revisions")
    assert "cell2" in schema.problem and "db sync" in (schema.fix or "")
    support.execute(
        nova_bed.api_url,
        "UPDATE cell_mappings SET uuid = '11111111-1111-1111-1111-111111111111' "
        "WHERE name = 'cell0'",
    )
    report = run(nova_bed)
    [cells] = problems(report, "Cells v2")
    assert cells.status is Status.FAILED and "cell0" in cells.problem


def test_cli_exit_code_and_json(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    testbed.drift(bed, "unmapped_hosts", 1)
    code, data = support.cli_json("run", "preflight", "--config-file", bed.config_path)
    assert data["task"] == "preflight" and data["mode"] == "audit"
    assert code == data["code"] >= 1  # the bed's heartbeats are old by now: a warning at least
    assert any(f["object_id"] == "Unmapped compute nodes" for f in data["findings"])


def test_silent_hosts_against_the_wall_clock(nova_bed: Any) -> None:
    """The test bed's own drift: after a heartbeat, only the silenced hosts are down."""
    silenced = testbed.drift(nova_bed, "silent_hosts", 2)
    assert testbed.heartbeat(nova_bed) > 0
    report = support.run(nova_bed, "preflight")
    down = problems(report, "Compute services up")
    assert sorted((f.cell, f.problem.split()[2]) for f in down) == sorted(
        (c["cell"], c["host"]) for c in silenced
    )
