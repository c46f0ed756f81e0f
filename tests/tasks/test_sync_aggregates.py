"""sync_aggregates against real Nova databases and a real Placement service."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

import testbed
from nova_audit_ops.engine.report import Code, Status
from testbed.placement import PlacementAPI
from tests import support


def aggregates_of(bed: Any) -> dict[str, list[str]]:
    shot = testbed.snapshot_placement(bed, consumers=False)
    return {rp: p["aggregates"] for rp, p in shot["providers"].items()}


def compute_node(bed: Any, cell: str = "cell1") -> tuple[str, str]:
    row = support.query(
        support.cell_url(bed, cell), "SELECT host, uuid FROM compute_nodes ORDER BY id LIMIT 1"
    )[0]
    return row.host, row.uuid


def test_consistent_cloud_has_nothing_to_sync(nova_bed_placement: Any) -> None:
    report = support.run(nova_bed_placement, "sync_aggregates", mode="heal")
    assert report.code == Code.OK, report.findings
    assert report.counts.drifted == 0
    assert report.counts.examined > 0


def test_audit_reports_missing_memberships_and_writes_nothing(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    changes = testbed.drift(bed, "missing_aggregates", 3)
    before_db, before_placement = support.snapshot(bed), testbed.snapshot_placement(bed)
    report = support.run(bed, "sync_aggregates", mode="audit")
    assert report.code == Code.WARNING
    assert [f.status for f in report.findings] == [Status.WOULD_FIX] * len(changes)
    assert support.snapshot(bed) == before_db
    assert testbed.snapshot_placement(bed) == before_placement


def test_heal_adds_missing_memberships_like_nova_manage(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    consistent = aggregates_of(bed)
    testbed.drift(bed, "missing_aggregates", 4)
    result = testbed.nova_manage(bed, "placement", "sync_aggregates")
    assert result.returncode == 0, result.stdout + result.stderr
    by_nova = aggregates_of(bed)
    assert by_nova == consistent

    changes = testbed.drift(bed, "missing_aggregates", 4)
    assert len(changes) == 4
    report = support.run(bed, "sync_aggregates", mode="heal")
    assert report.code == Code.OK and report.counts.fixed == 4
    assert aggregates_of(bed) == by_nova
    again = support.run(bed, "sync_aggregates", mode="audit")
    assert again.counts.drifted == 0


def test_extra_membership_is_reported_and_removed_only_when_asked(
    nova_bed_placement: Any,
) -> None:
    bed = nova_bed_placement
    agg_uuid = support.query(bed.api_url, "SELECT uuid FROM aggregates ORDER BY id LIMIT 1")[0].uuid
    members = {
        r.host
        for r in support.query(
            bed.api_url,
            "SELECT h.host FROM aggregate_hosts h JOIN aggregates a ON a.id = h.aggregate_id "
            "WHERE a.uuid = :u",
            u=agg_uuid,
        )
    }
    outsider = next(
        r
        for c in ("cell1", "cell2")
        for r in support.query(support.cell_url(bed, c), "SELECT host, uuid FROM compute_nodes")
        if r.host not in members
    )
    api = PlacementAPI(bed.placement_url)
    current = api.get(f"/resource_providers/{outsider.uuid}/aggregates")
    api.put(
        f"/resource_providers/{outsider.uuid}/aggregates",
        {
            "aggregates": [*current["aggregates"], agg_uuid],
            "resource_provider_generation": current["resource_provider_generation"],
        },
    )
    report = support.run(bed, "sync_aggregates", mode="heal")
    assert [(f.object_id, f.status) for f in report.findings] == [(agg_uuid, Status.LEFT)]
    assert outsider.host in report.findings[0].problem
    assert agg_uuid in aggregates_of(bed)[outsider.uuid]

    report = support.run(bed, "sync_aggregates", mode="heal", remove_extra=True)
    assert [f.status for f in report.findings] == [Status.FIXED]
    assert agg_uuid not in aggregates_of(bed)[outsider.uuid]


def test_unmapped_and_nodeless_hosts_name_the_fix(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    agg_id = support.query(bed.api_url, "SELECT id FROM aggregates ORDER BY id LIMIT 1")[0].id
    support.execute(
        bed.api_url,
        "INSERT INTO aggregate_hosts (host, aggregate_id, created_at) VALUES "
        "('ghost-host', :a, NOW()), ('nodeless-host', :a, NOW())",
        a=agg_id,
    )
    support.execute(
        bed.api_url,
        "INSERT INTO host_mappings (cell_id, host, created_at) "
        "SELECT id, 'nodeless-host', NOW() FROM cell_mappings WHERE name = 'cell1'",
    )
    before = testbed.snapshot_placement(bed)
    report = support.run(bed, "sync_aggregates", mode="heal")
    by_host = {f.object_id: f for f in report.findings}
    assert "discover_hosts" in (by_host["ghost-host"].fix or "")
    assert "no compute node" in by_host["nodeless-host"].problem
    assert {f.status for f in report.findings} == {Status.LEFT}
    assert testbed.snapshot_placement(bed) == before


def test_missing_provider_is_a_finding_not_a_crash(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    host, node_uuid = compute_node(bed)
    fake = str(uuidlib.uuid4())
    support.execute(
        support.cell_url(bed, "cell1"),
        "UPDATE compute_nodes SET uuid = :f WHERE uuid = :u",
        f=fake,
        u=node_uuid,
    )
    report = support.run(bed, "sync_aggregates", mode="heal")
    lost = [f for f in report.findings if host in f.problem]
    assert lost and all(f.status is Status.LEFT for f in lost)
    assert all("restart nova-compute" in (f.fix or "") for f in lost)


def test_placement_requests_scale_with_aggregates_not_hosts(nova_bed_placement: Any) -> None:
    report = support.run(nova_bed_placement, "sync_aggregates", mode="audit", cells=["cell1"])
    aggregates = len(support.query(nova_bed_placement.api_url, "SELECT id FROM aggregates"))
    assert report.details["placement_requests"] == aggregates
