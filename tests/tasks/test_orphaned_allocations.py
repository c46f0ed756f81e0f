"""The orphaned-allocation audit against real Nova databases and a real Placement."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import testbed
from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.engine.state import MemoryStateStore
from tests import support

T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


def consumers(bed: Any) -> set[str]:
    return set(testbed.snapshot_placement(bed)["consumers"])


def test_consistent_cloud_has_no_orphans(nova_bed_placement: Any) -> None:
    report = support.run(nova_bed_placement, "orphaned_allocations", mode="heal", delete=True)
    assert report.code == Code.OK, report.findings
    assert report.counts.examined > 0


def test_audit_finds_the_same_orphans_as_nova_and_writes_nothing(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    injected = {c["consumer_uuid"] for c in testbed.drift(bed, "orphan_allocations", 3)}
    before_db, before_placement = support.snapshot(bed), testbed.snapshot_placement(bed)
    report = support.run(bed, "orphaned_allocations", mode="audit", delete=True, reference_time=T0)
    assert {f.object_id for f in report.findings} == injected
    assert report.code == Code.WARNING
    assert support.snapshot(bed) == before_db
    assert testbed.snapshot_placement(bed) == before_placement

    nova = testbed.nova_manage(bed, "placement", "audit", "--verbose")
    assert nova.returncode == 3, nova.stdout + nova.stderr
    found_by_nova = set(
        re.findall(r"consumer UUID ([0-9a-f-]{36}) on Resource Provider", nova.stdout)
    )
    assert found_by_nova == injected


def test_deletion_needs_two_sightings_a_grace_period_apart(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    injected = {c["consumer_uuid"] for c in testbed.drift(bed, "orphan_allocations", 2)}
    others = consumers(bed) - injected
    state = MemoryStateStore()
    opts = {"mode": "heal", "delete": True, "grace_period": 3600, "state": state}

    first = support.run(bed, "orphaned_allocations", reference_time=T0, **opts)
    assert {f.status for f in first.findings} == {Status.LEFT}
    soon = support.run(
        bed, "orphaned_allocations", reference_time=T0 + dt.timedelta(minutes=30), **opts
    )
    assert {f.status for f in soon.findings} == {Status.LEFT}
    assert injected <= consumers(bed)

    later = support.run(
        bed, "orphaned_allocations", reference_time=T0 + dt.timedelta(hours=2), **opts
    )
    assert {f.status for f in later.findings} == {Status.FIXED}
    assert later.counts.fixed == 2 and later.code == Code.OK
    assert consumers(bed) == others


def test_without_delete_nothing_is_ever_deleted(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    testbed.drift(bed, "orphan_allocations", 2)
    state = MemoryStateStore()
    before = testbed.snapshot_placement(bed)
    for hours in (0, 5):
        when = T0 + dt.timedelta(hours=hours)
        report = support.run(
            bed, "orphaned_allocations", mode="heal", state=state, reference_time=when
        )
        assert {f.status for f in report.findings} == {Status.LEFT}
        assert all("delete" in (f.fix or "") for f in report.findings)
    assert testbed.snapshot_placement(bed) == before


def test_migrations_and_builds_in_flight_are_not_orphans(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    changes = testbed.drift(bed, "orphan_allocations", 3)
    migrating, building, orphan = (c["consumer_uuid"] for c in changes)
    node = support.query(
        support.cell_url(bed, changes[0]["cell"]),
        "SELECT host, hypervisor_hostname FROM compute_nodes WHERE uuid = :u",
        u=changes[0]["provider"],
    )[0]
    instance = support.query(
        support.cell_url(bed, changes[0]["cell"]), "SELECT uuid FROM instances ORDER BY id LIMIT 1"
    )[0].uuid
    support.execute(
        support.cell_url(bed, changes[0]["cell"]),
        "INSERT INTO migrations (uuid, instance_uuid, source_compute, source_node, dest_compute, "
        "dest_node, status, migration_type, deleted, created_at) VALUES "
        "(:m, :i, 'elsewhere', 'elsewhere', :h, :n, 'migrating', 'migration', 0, NOW())",
        m=migrating,
        i=instance,
        h=node.host,
        n=node.hypervisor_hostname,
    )
    support.execute(
        bed.api_url,
        "INSERT INTO build_requests (instance_uuid, project_id, created_at) "
        "VALUES (:u, 'p', NOW())",
        u=building,
    )
    report = support.run(bed, "orphaned_allocations", mode="audit")
    assert {f.object_id for f in report.findings} == {orphan}


def test_only_the_orphaned_providers_part_is_removed(nova_bed_placement: Any) -> None:
    """A consumer's part on a provider of an unchecked cell is left alone."""
    from testbed.placement import PlacementAPI

    bed = nova_bed_placement
    (orphan,) = testbed.drift(bed, "orphan_allocations", 1)
    other_cell = next(c.name for c in bed.cells if c.name not in ("cell0", orphan["cell"]))
    other_rp = support.query(
        support.cell_url(bed, other_cell), "SELECT uuid FROM compute_nodes ORDER BY id LIMIT 1"
    )[0].uuid
    api = PlacementAPI(bed.placement_url)
    consumer = orphan["consumer_uuid"]
    current = api.get(f"/allocations/{consumer}")
    allocations = {rp: {"resources": v["resources"]} for rp, v in current["allocations"].items()}
    allocations[other_rp] = {"resources": {"VCPU": 1}}
    api.put(
        f"/allocations/{consumer}",
        {
            "allocations": allocations,
            "project_id": current["project_id"],
            "user_id": current["user_id"],
            "consumer_generation": current["consumer_generation"],
            "consumer_type": "INSTANCE",
        },
    )
    opts = {
        "mode": "heal",
        "delete": True,
        "grace_period": 60,
        "state": MemoryStateStore(),
        "cells": [orphan["cell"]],
    }
    support.run(bed, "orphaned_allocations", reference_time=T0, **opts)
    report = support.run(
        bed, "orphaned_allocations", reference_time=T0 + dt.timedelta(hours=1), **opts
    )
    assert report.counts.fixed == 1
    left = api.get(f"/allocations/{consumer}")
    assert set(left["allocations"]) == {other_rp}
    assert left["project_id"] == current["project_id"]


def test_a_run_stopped_early_is_continued_by_the_next(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    injected = {c["consumer_uuid"] for c in testbed.drift(bed, "orphan_allocations", 6)}
    state = MemoryStateStore()
    opts = {"mode": "audit", "batch_size": 1, "max_batches": 1, "state": state, "cells": ["cell1"]}
    found: set[str] = set()
    runs = 0
    while runs < 20:
        runs += 1
        report = support.run(bed, "orphaned_allocations", reference_time=T0, **opts)
        found |= {f.object_id for f in report.findings}
        if not report.more_work:
            break
    assert runs > 1, "one provider per run must take several runs"
    assert found and found <= injected
    full = support.run(
        bed, "orphaned_allocations", mode="audit", cells=["cell1"], reference_time=T0
    )
    assert {f.object_id for f in full.findings} == found
