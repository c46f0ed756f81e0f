"""The seeded cloud is written the way Nova writes it (formats the product reads)."""

from __future__ import annotations

import json
import math
from collections import Counter

from testbed import CELL0_UUID, TestBed
from testbed.seed import FLAVORS
from tests.testbed.util import mappings, placement, query, scalar

CHILD_TABLES = (
    "instance_extra",
    "instance_info_caches",
    "instance_system_metadata",
    "block_device_mapping",
    "instance_id_mappings",
)


def test_hosts_are_mapped_and_mirrored_in_placement(nova_template: TestBed) -> None:
    bed = nova_template
    api = placement(bed)
    try:
        for cell in bed.compute_cells:
            nodes = query(
                cell.url,
                "SELECT n.uuid, n.host, n.hypervisor_hostname, n.mapped, n.vcpus, s.binary, "
                "s.topic FROM compute_nodes n JOIN services s ON s.id = n.service_id",
            )
            assert len(nodes) == 3
            for node in nodes:
                assert (node.hypervisor_hostname, node.mapped) == (node.host, 1)
                assert (node.binary, node.topic) == ("nova-compute", "compute")
                rp = api.get(f"/resource_providers/{node.uuid}")
                assert rp["name"] == node.host
                inventory = api.get(f"/resource_providers/{node.uuid}/inventories")
                assert set(inventory["inventories"]) == {"VCPU", "PCPU", "MEMORY_MB", "DISK_GB"}
                assert inventory["inventories"]["VCPU"]["total"] == node.vcpus
                aggregates = set(
                    api.get(f"/resource_providers/{node.uuid}/aggregates")["aggregates"]
                )
                expected = {
                    r.uuid
                    for r in query(
                        bed.api_url,
                        "SELECT a.uuid FROM aggregates a JOIN aggregate_hosts h "
                        "ON h.aggregate_id = a.id WHERE h.host = :h",
                        h=node.host,
                    )
                }
                assert aggregates == expected and expected
        assert scalar(bed.api_url, "SELECT COUNT(*) FROM host_mappings") == 6
        az = query(
            bed.api_url, "SELECT value FROM aggregate_metadata WHERE `key` = 'availability_zone'"
        )
        assert {r.value for r in az} == {"az-cell1", "az-cell2"}
    finally:
        api.close()


def test_flavors_and_instance_extra_are_novas_format(nova_template: TestBed) -> None:
    bed = nova_template
    flavors = {r.flavorid: r for r in query(bed.api_url, "SELECT * FROM flavors")}
    assert set(flavors) == {f.flavorid for f in FLAVORS}
    specs = {
        (r.flavor_id, r.key): r.value
        for r in query(bed.api_url, "SELECT * FROM flavor_extra_specs")
    }
    assert specs[(flavors["6"].id, "hw:cpu_policy")] == "dedicated"
    assert specs[(flavors["7"].id, "resources:VCPU")] == "2"
    assert (flavors["5"].ephemeral_gb, flavors["5"].swap) == (10, 2048)

    row = query(
        bed.cell("cell1").url,
        "SELECT i.instance_type_id, e.* FROM instances i JOIN instance_extra e "
        "ON e.instance_uuid = i.uuid ORDER BY i.id LIMIT 1",
    )[0]
    blob = json.loads(row.flavor)
    assert set(blob) == {"cur", "old", "new"} and blob["old"] is None
    cur = blob["cur"]
    assert cur["nova_object.name"] == "Flavor"
    data = cur["nova_object.data"]
    assert {
        "vcpus",
        "memory_mb",
        "root_gb",
        "ephemeral_gb",
        "swap",
        "extra_specs",
        "flavorid",
    } <= set(data)
    assert flavors[data["flavorid"]].id == row.instance_type_id
    assert json.loads(row.pci_requests) == []
    assert json.loads(row.keypairs)["nova_object.name"] == "KeyPairList"


def test_every_flavor_kind_is_seeded_with_novas_extra_columns(nova_template: TestBed) -> None:
    seen: Counter[str] = Counter()
    for cell in nova_template.compute_cells:
        rows = query(
            cell.url,
            "SELECT e.flavor, e.numa_topology, i.image_ref FROM instance_extra e "
            "JOIN instances i ON i.uuid = e.instance_uuid WHERE i.deleted = 0",
        )
        for row in rows:
            data = json.loads(row.flavor)["cur"]["nova_object.data"]
            dedicated = data["extra_specs"].get("hw:cpu_policy") == "dedicated"
            assert (row.numa_topology is not None) == dedicated
            if dedicated:
                topology = json.loads(row.numa_topology)
                assert topology["nova_object.name"] == "InstanceNUMATopology"
            seen[data["name"]] += 1
            seen["volume-backed" if row.image_ref == "" else "image-backed"] += 1
    assert set(seen) == {f.name for f in FLAVORS} | {"volume-backed", "image-backed"}


def expected_resources(flavor: dict, bfv: bool) -> dict[str, int]:
    specs = flavor["extra_specs"]
    cpu = "PCPU" if specs.get("hw:cpu_policy") == "dedicated" else "VCPU"
    vcpus = int(specs.get("resources:VCPU", flavor["vcpus"]))
    disk = (0 if bfv else flavor["root_gb"]) + flavor["ephemeral_gb"]
    disk += math.ceil(flavor["swap"] / 1024)
    resources = {cpu: vcpus, "MEMORY_MB": flavor["memory_mb"], "DISK_GB": disk}
    return {k: v for k, v in resources.items() if v}


def test_live_instances_have_matching_allocations(nova_template: TestBed) -> None:
    bed = nova_template
    api = placement(bed)
    kinds: Counter[str] = Counter()
    try:
        for cell in bed.compute_cells:
            rows = query(
                cell.url,
                "SELECT i.uuid, i.project_id, i.user_id, i.deleted, i.image_ref, "
                "n.uuid AS node, e.flavor, b.destination_type AS root "
                "FROM instances i JOIN compute_nodes n ON n.id = i.compute_id "
                "JOIN instance_extra e ON e.instance_uuid = i.uuid "
                "JOIN block_device_mapping b ON b.instance_uuid = i.uuid AND b.boot_index = 0",
            )
            assert rows
            for r in rows:
                got = api.get(f"/allocations/{r.uuid}")
                if r.deleted:
                    assert got["allocations"] == {}
                    continue
                bfv = r.root == "volume"
                assert bfv == (r.image_ref == "")
                kinds["bfv" if bfv else "image"] += 1
                flavor = json.loads(r.flavor)["cur"]["nova_object.data"]
                assert got["allocations"] == {
                    r.node: {
                        "resources": expected_resources(flavor, bfv),
                        "generation": got["allocations"][r.node]["generation"],
                    }
                }
                assert (got["project_id"], got["user_id"]) == (r.project_id, r.user_id)
                assert got["consumer_type"] == "INSTANCE"
    finally:
        api.close()
    assert kinds["bfv"] and kinds["image"]


def test_deleted_instances_are_soft_deleted_like_nova_does(nova_template: TestBed) -> None:
    bed = nova_template
    maps = mappings(bed)
    for cell in bed.compute_cells:
        gone = query(
            cell.url,
            "SELECT id, uuid, deleted, deleted_at, vm_state FROM instances WHERE deleted != 0",
        )
        assert gone, "about 20 % of the instances are deleted"
        for inst in gone:
            assert (inst.deleted, inst.vm_state) == (inst.id, "deleted")
            assert inst.deleted_at is not None
            assert maps[inst.uuid] == (cell.name, True)
            for table in CHILD_TABLES:
                key = "uuid" if table == "instance_id_mappings" else "instance_uuid"
                rows = query(
                    cell.url,
                    f"SELECT id, deleted, deleted_at FROM {table} WHERE {key} = :u",
                    u=inst.uuid,
                )
                assert rows, table
                assert all(r.deleted == r.id and r.deleted_at == inst.deleted_at for r in rows), (
                    table
                )
            actions = query(
                cell.url,
                "SELECT action, deleted FROM instance_actions WHERE instance_uuid = :u",
                u=inst.uuid,
            )
            assert sorted(a.action for a in actions) == ["create", "delete"]
            assert all(a.deleted == 0 for a in actions), "actions are never soft-deleted"
        live = query(cell.url, "SELECT uuid, vm_state, host, node FROM instances WHERE deleted = 0")
        for inst in live:
            assert inst.vm_state == "active" and inst.host == inst.node
            assert maps[inst.uuid] == (cell.name, False)
    specs = {r.instance_uuid for r in query(bed.api_url, "SELECT instance_uuid FROM request_specs")}
    assert specs == set(maps)


def test_cell0_holds_instances_that_failed_to_schedule(nova_template: TestBed) -> None:
    bed = nova_template
    cell0 = bed.cell("cell0")
    assert cell0.uuid == CELL0_UUID
    rows = query(cell0.url, "SELECT uuid, vm_state, host, node FROM instances")
    assert len(rows) == 2
    assert all((r.vm_state, r.host, r.node) == ("error", None, None) for r in rows)
    maps = mappings(bed)
    assert all(maps[r.uuid] == ("cell0", False) for r in rows)
    faults = query(cell0.url, "SELECT message FROM instance_faults")
    assert [f.message for f in faults] == ["No valid host was found. "] * 2


def test_request_specs_are_novas_serialization(nova_template: TestBed) -> None:
    bed = nova_template
    row = query(
        bed.api_url,
        "SELECT m.instance_uuid, m.project_id, m.user_id, s.spec "
        "FROM instance_mappings m JOIN request_specs s "
        "ON s.instance_uuid = m.instance_uuid ORDER BY m.id LIMIT 1",
    )[0]
    spec = json.loads(row.spec)
    assert spec["nova_object.name"] == "RequestSpec"
    data = spec["nova_object.data"]
    assert data["instance_uuid"] == row.instance_uuid
    assert (data["project_id"], data["user_id"]) == (row.project_id, row.user_id)
    assert data["flavor"]["nova_object.name"] == "Flavor"
    assert "is_bfv" in data
