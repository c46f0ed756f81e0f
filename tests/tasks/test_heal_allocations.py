"""heal_allocations against real Nova databases and a real Placement service."""

from __future__ import annotations

import json
from typing import Any

import pytest

import testbed
from nova_audit_ops.clients.placement import PlacementClient, PlacementError
from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.engine.state import MemoryStateStore
from testbed.placement import PlacementAPI
from tests import support


def allocations_of(bed: Any, uuids: set[str]) -> dict[str, Any]:
    api = PlacementAPI(bed.placement_url)
    out = {}
    for uuid in sorted(uuids):
        data = api.get(f"/allocations/{uuid}")
        out[uuid] = {
            "allocations": {rp: v["resources"] for rp, v in data["allocations"].items()},
            "project_id": data.get("project_id"),
            "user_id": data.get("user_id"),
        }
    return out


def test_consistent_cloud_needs_nothing(nova_bed_placement: Any) -> None:
    report = support.run(nova_bed_placement, "heal_allocations", mode="heal")
    assert report.code == Code.OK, report.findings
    assert report.counts.drifted == 0 and report.counts.examined > 0


def test_audit_reports_missing_and_wrong_owner_and_writes_nothing(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    missing = {c["instance_uuid"] for c in testbed.drift(bed, "missing_allocations", 3)}
    wrong = {c["instance_uuid"] for c in testbed.drift(bed, "wrong_user_allocations", 2)}
    before_db, before_placement = support.snapshot(bed), testbed.snapshot_placement(bed)
    report = support.run(bed, "heal_allocations", mode="audit")
    assert {f.object_id for f in report.findings} == missing | wrong
    assert {f.status for f in report.findings} == {Status.WOULD_FIX}
    assert support.snapshot(bed) == before_db
    assert testbed.snapshot_placement(bed) == before_placement


def test_heal_matches_nova_manage(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    missing = {c["instance_uuid"] for c in testbed.drift(bed, "missing_allocations", 4)}
    wrong = {c["instance_uuid"] for c in testbed.drift(bed, "wrong_user_allocations", 2)}
    result = testbed.nova_manage(bed, "placement", "heal_allocations", "--skip-port-allocations")
    assert result.returncode == 0, result.stdout + result.stderr
    by_nova = allocations_of(bed, missing | wrong)

    api = PlacementAPI(bed.placement_url)
    for uuid in missing:
        api.delete(f"/allocations/{uuid}")
    testbed.drift(bed, "wrong_user_allocations", 2)  # the same instances, deterministically
    report = support.run(bed, "heal_allocations", mode="heal")
    assert report.code == Code.OK, report.findings
    assert report.counts.fixed == len(missing) + len(wrong)
    assert allocations_of(bed, missing | wrong) == by_nova
    again = support.run(bed, "heal_allocations", mode="audit")
    assert again.counts.drifted == 0


def test_bulk_reads_make_few_placement_requests(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    testbed.drift(bed, "missing_allocations", 2)
    report = support.run(bed, "heal_allocations", mode="heal", check_owners=False)
    providers = sum(len(support.query(c.url, "SELECT id FROM compute_nodes")) for c in bed.cells)
    # one read per provider, then a read and a write per healed instance
    assert report.details["placement_requests"] <= providers + 2 * 2


def _missing_one(bed: Any) -> tuple[str, str]:
    (change,) = testbed.drift(bed, "missing_allocations", 1)
    return change["instance_uuid"], support.cell_url(bed, change["cell"])


def test_task_state_and_no_node_are_skipped_like_nova(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    busy, url = _missing_one(nova_bed_placement)
    support.execute(url, "UPDATE instances SET task_state = 'migrating' WHERE uuid = :u", u=busy)
    report = support.run(bed, "heal_allocations", mode="heal")
    assert busy not in {f.object_id for f in report.findings}
    assert allocations_of(bed, {busy})[busy]["allocations"] == {}
    support.execute(
        url, "UPDATE instances SET task_state = NULL, node = NULL WHERE uuid = :u", u=busy
    )
    report = support.run(bed, "heal_allocations", mode="heal")
    # Nova skips it too, saying "Instance ... is not on a host.": one skipped finding.
    [hostless] = [f for f in report.findings if f.object_id == busy]
    assert hostless.status is Status.LEFT and "not on a host" in hostless.problem
    assert allocations_of(bed, {busy})[busy]["allocations"] == {}


def test_volume_backed_instance_gets_no_root_disk(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    uuid, url = _missing_one(bed)
    flavor = json.loads(
        support.query(url, "SELECT flavor FROM instance_extra WHERE instance_uuid = :u", u=uuid)[
            0
        ].flavor
    )["cur"]["nova_object.data"]
    support.execute(url, "UPDATE instances SET image_ref = '' WHERE uuid = :u", u=uuid)
    support.execute(
        url,
        "UPDATE block_device_mapping SET destination_type = 'volume', source_type = 'volume' "
        "WHERE instance_uuid = :u AND boot_index = 0",
        u=uuid,
    )
    support.run(bed, "heal_allocations", mode="heal")
    (resources,) = allocations_of(bed, {uuid})[uuid]["allocations"].values()
    swap_gb = -(-int(flavor.get("swap") or 0) // 1024)
    assert resources.get("DISK_GB", 0) == int(flavor["ephemeral_gb"] or 0) + swap_gb


def test_vgpu_flavor_must_not_be_healed(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    uuid, url = _missing_one(bed)
    raw = support.query(url, "SELECT flavor FROM instance_extra WHERE instance_uuid = :u", u=uuid)
    flavor = json.loads(raw[0].flavor)
    flavor["cur"]["nova_object.data"].setdefault("extra_specs", {})["resources:VGPU"] = "1"
    support.execute(
        url,
        "UPDATE instance_extra SET flavor = :f WHERE instance_uuid = :u",
        f=json.dumps(flavor),
        u=uuid,
    )
    report = support.run(bed, "heal_allocations", mode="heal")
    (finding,) = [f for f in report.findings if f.object_id == uuid]
    assert finding.status is Status.MUST_NOT_FIX and "VGPU" in finding.problem
    assert uuid in (finding.fix or "") and report.code == Code.FAILURE


def test_bad_flavor_fails_one_instance_and_the_run_goes_on(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    changes = testbed.drift(bed, "missing_allocations", 3)
    broken = changes[0]["instance_uuid"]
    support.execute(
        support.cell_url(bed, changes[0]["cell"]),
        'UPDATE instance_extra SET flavor = \'{"not": "nova"}\' WHERE instance_uuid = :u',
        u=broken,
    )
    report = support.run(bed, "heal_allocations", mode="heal")
    status = {f.object_id: f.status for f in report.findings}
    assert status.pop(broken) is Status.FAILED
    assert set(status.values()) == {Status.FIXED} and len(status) == 2


def test_consumer_generation_conflict_is_retried(
    nova_bed_placement: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bed = nova_bed_placement
    uuid, _ = _missing_one(bed)
    real_put = PlacementClient.put
    conflicts = []

    def put_with_one_conflict(self: PlacementClient, path: str, body: Any, mv: str) -> Any:
        if path.startswith("/allocations/") and not conflicts:
            conflicts.append(path)
            raise PlacementError(409, "consumer generation conflict")
        return real_put(self, path, body, mv)

    monkeypatch.setattr(PlacementClient, "put", put_with_one_conflict)
    report = support.run(bed, "heal_allocations", mode="heal", check_owners=False)
    assert conflicts and [f.status for f in report.findings] == [Status.FIXED]
    assert allocations_of(bed, {uuid})[uuid]["allocations"]


def test_batch_limit_stops_and_next_run_resumes(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    missing = {c["instance_uuid"] for c in testbed.drift(bed, "missing_allocations", 6)}
    state = MemoryStateStore()
    opts = {
        "mode": "heal",
        "batch_size": 3,
        "max_batches": 1,
        "state": state,
        "check_owners": False,
    }
    first = support.run(bed, "heal_allocations", **opts)
    assert first.more_work and first.code == Code.WARNING
    for _ in range(10):
        report = support.run(bed, "heal_allocations", **opts)
        if not report.more_work:
            break
    assert all(allocations_of(bed, missing)[u]["allocations"] for u in missing)


def test_cli_exit_code_and_json(nova_bed_placement: Any) -> None:
    testbed.drift(nova_bed_placement, "missing_allocations", 1)
    code, data = support.cli_json(
        "run", "heal_allocations", "--config-file", str(nova_bed_placement.config_path)
    )
    assert code == 1 and data["counts"]["drifted"] == 1
