"""Every drift scenario really produces the drift it reports, and only that."""

from __future__ import annotations

from pathlib import Path

import testbed
from testbed import TestBed
from tests.testbed.util import (
    allocations,
    compute_hosts,
    host_mappings,
    instances,
    mappings,
    placement,
    query,
    tables,
)


def test_unmapped_hosts(nova_bed: TestBed) -> None:
    changes = testbed.drift(nova_bed, "unmapped_hosts", 3)
    hosts = {(c["cell"], c["host"]) for c in changes}
    assert len(hosts) == 3 and {c for c, _ in hosts} == {"cell1", "cell2"}
    assert compute_hosts(nova_bed, mapped=0) == hosts
    assert host_mappings(nova_bed) == compute_hosts(nova_bed) - hosts
    more = testbed.drift(nova_bed, "unmapped_hosts", 100)
    assert len(more) == 3 and not {(c["cell"], c["host"]) for c in more} & hosts
    assert host_mappings(nova_bed) == set()


def test_new_hosts_without_own_placement(nova_bed: TestBed) -> None:
    before = compute_hosts(nova_bed)
    changes = testbed.drift(nova_bed, "new_hosts", 3)
    new = {(c["cell"], c["host"]) for c in changes}
    assert compute_hosts(nova_bed) == before | new
    assert compute_hosts(nova_bed, mapped=0) == new
    assert not new & host_mappings(nova_bed)
    assert all(c["provider"].startswith("skipped") for c in changes)
    for change in changes:
        cell = nova_bed.cell(change["cell"])
        services = query(
            cell.url, "SELECT `binary`, topic FROM services WHERE host = :h", h=change["host"]
        )
        assert [(s.binary, s.topic) for s in services] == [("nova-compute", "compute")]
    again = testbed.drift(nova_bed, "new_hosts", 2)
    assert not {(c["cell"], c["host"]) for c in again} & new


def test_new_hosts_with_own_placement(nova_bed_placement: TestBed) -> None:
    changes = testbed.drift(nova_bed_placement, "new_hosts", 2)
    api = placement(nova_bed_placement)
    try:
        for change in changes:
            rp = api.get(f"/resource_providers/{change['node_uuid']}")
            assert (
                rp["name"] == change["host"] == change["provider"] or rp["name"] == change["host"]
            )
            inventory = api.get(f"/resource_providers/{change['node_uuid']}/inventories")
            assert "VCPU" in inventory["inventories"]
    finally:
        api.close()


def test_unmapped_instances(nova_bed: TestBed) -> None:
    changes = testbed.drift(nova_bed, "unmapped_instances", 8)
    assert len(changes) == 8
    assert {c["deleted"] for c in changes} == {True, False}
    maps, truth = mappings(nova_bed), instances(nova_bed)
    for change in changes:
        assert change["instance_uuid"] not in maps
        assert truth[change["instance_uuid"]] == (change["cell"], change["deleted"])
    specs = {
        r.instance_uuid for r in query(nova_bed.api_url, "SELECT instance_uuid FROM request_specs")
    }
    assert {c["instance_uuid"] for c in changes} <= specs, "request specs stay"
    everything = testbed.drift(nova_bed, "unmapped_instances", 10_000)
    assert set(mappings(nova_bed)) == {u for u, (c, _) in truth.items() if c == "cell0"}
    compute_cell_instances = sum(1 for c, _ in truth.values() if c != "cell0")
    assert len(everything) == compute_cell_instances - 8


def test_null_and_wrong_cell_mappings(nova_bed: TestBed) -> None:
    null = testbed.drift(nova_bed, "null_cell_mappings", 2)
    wrong = testbed.drift(nova_bed, "wrong_cell_mappings", 2)
    maps, truth = mappings(nova_bed), instances(nova_bed)
    assert not {c["instance_uuid"] for c in null} & {c["instance_uuid"] for c in wrong}
    for change in null:
        assert maps[change["instance_uuid"]][0] is None
    for change in wrong:
        real = truth[change["instance_uuid"]][0]
        assert maps[change["instance_uuid"]][0] == change["mapped_to"] != real
    assert query(nova_bed.api_url, "SELECT * FROM build_requests") == []


def test_orphan_mappings(nova_bed: TestBed) -> None:
    changes = testbed.drift(nova_bed, "orphan_mappings", 4)
    maps, truth = mappings(nova_bed), instances(nova_bed)
    specs = {
        r.instance_uuid: r.spec
        for r in query(nova_bed.api_url, "SELECT instance_uuid, spec FROM request_specs")
    }
    assert {c["cell"] is None for c in changes} == {True, False}
    for change in changes:
        uuid = change["instance_uuid"]
        assert uuid not in truth
        assert maps[uuid] == (change["cell"], False)
        assert uuid in specs[uuid]
    assert not query(nova_bed.api_url, "SELECT * FROM build_requests")


def test_placement_scenarios(nova_bed_placement: TestBed) -> None:
    bed = nova_bed_placement
    missing = testbed.drift(bed, "missing_allocations", 2)
    for change in missing:
        assert allocations(bed, change["instance_uuid"])["allocations"] == {}
    wrong = testbed.drift(bed, "wrong_user_allocations", 2)
    assert not {c["instance_uuid"] for c in missing} & {c["instance_uuid"] for c in wrong}
    for change in wrong:
        got = allocations(bed, change["instance_uuid"])
        assert got["user_id"] == change["placement_user_id"] != change["user_id"]
        assert got["project_id"] == change["placement_project_id"]
        assert got["allocations"]
    gone = testbed.drift(bed, "missing_aggregates", 2)
    api = placement(bed)
    try:
        for change in gone:
            aggs = api.get(f"/resource_providers/{change['provider']}/aggregates")["aggregates"]
            assert change["aggregate_uuid"] not in aggs
            hosts = query(
                bed.api_url,
                "SELECT h.host FROM aggregate_hosts h JOIN aggregates a "
                "ON a.id = h.aggregate_id WHERE a.uuid = :u",
                u=change["aggregate_uuid"],
            )
            assert change["host"] in {h.host for h in hosts}
    finally:
        api.close()
    orphans = testbed.drift(bed, "orphan_allocations", 2)
    known = instances(bed)
    for change in orphans:
        assert change["consumer_uuid"] not in known
        assert change["provider"] in allocations(bed, change["consumer_uuid"])["allocations"]


def test_drift_is_deterministic(nova_template: TestBed, tmp_path: Path) -> None:
    first = testbed.clone(nova_template, tmp_path / "a")
    second = testbed.clone(nova_template, tmp_path / "b")
    try:
        for scenario in ("unmapped_hosts", "unmapped_instances", "orphan_mappings"):
            assert testbed.drift(first, scenario, 3) == testbed.drift(second, scenario, 3)
        shots = tables(first), tables(second)
        strip = [
            {db: {t: v for t, v in s.items() if t != "cell_mappings"} for db, s in shot.items()}
            for shot in shots
        ]
        assert strip[0] == strip[1]
    finally:
        testbed.down(first.dir)
        testbed.down(second.dir)
