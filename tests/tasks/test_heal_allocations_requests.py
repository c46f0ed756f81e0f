"""heal_allocations at Placement's request floor, counted by Placement itself.

Placement's own request log (placement.requestlog, one line per request) is
the count, not the client's counter: a request the client forgot to count
still shows. The floor: one read per compute provider, one bulk write per
batch of new consumers; per-consumer writes only after a real 409.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import testbed
from nova_audit_ops.engine.report import Code, Status
from testbed.placement import PlacementAPI
from tests import support

REQUEST = re.compile(r'placement\.requestlog.*"(GET|PUT|POST|DELETE) ([^ ?"]+)')


def placement_log(bed: Any) -> list[tuple[str, str]]:
    """(method, path) of every request Placement has logged so far."""
    text = (Path(bed.dir) / "placement.log").read_text(encoding="utf-8", errors="replace")
    return [(m.group(1), m.group(2)) for m in REQUEST.finditer(text)]


def requests_of_run(
    bed: Any, mode: str = "heal", **params: Any
) -> tuple[Any, list[tuple[str, str]]]:
    before = len(placement_log(bed))
    report = support.run(bed, "heal_allocations", mode=mode, **params)
    return report, placement_log(bed)[before:]


def compute_providers(bed: Any) -> int:
    return sum(len(support.query(c.url, "SELECT id FROM compute_nodes")) for c in bed.cells)


def owner_pairs(bed: Any) -> int:
    pairs: set[tuple[str, str]] = set()
    for cell in bed.cells:
        rows = support.query(cell.url, "SELECT project_id, user_id FROM instances WHERE deleted=0")
        pairs.update((r.project_id, r.user_id) for r in rows)
    return len(pairs)


def test_heal_stays_at_the_request_floor(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    missing = testbed.drift(bed, "missing_allocations", 8)
    batches = len({c["cell"] for c in missing})  # one page per cell at the default batch size
    providers = compute_providers(bed)
    report, sent = requests_of_run(bed, check_owners=False)
    assert report.code == Code.OK, report.findings
    assert report.counts.fixed == len(missing) == 8
    assert [r for r in sent if r[0] != "GET"] == [("POST", "/allocations")] * batches
    reads = [path for method, path in sent if method == "GET"]
    assert all(p.startswith("/resource_providers/") and p.endswith("/allocations") for p in reads)
    assert len(reads) == len(set(reads)) <= providers
    assert len(sent) <= 1.5 * (providers + batches) + 4
    assert report.details["placement_requests"] == len(sent)
    healed = PlacementAPI(bed.placement_url)
    for change in missing:
        assert healed.get(f"/allocations/{change['instance_uuid']}")["allocations"]


def test_owner_check_adds_one_request_per_owner_and_no_provider_twice(
    nova_bed_placement: Any,
) -> None:
    bed = nova_bed_placement
    missing = testbed.drift(bed, "missing_allocations", 4)
    batches = len({c["cell"] for c in missing})
    providers = compute_providers(bed)
    report, sent = requests_of_run(bed)
    assert report.code == Code.OK, report.findings
    # the cell steps' reads, their writes, the provider list, one usage per project/user
    assert len(sent) <= providers + batches + 1 + owner_pairs(bed)
    reads = [p for m, p in sent if m == "GET" and p.endswith("/allocations")]
    assert len(reads) == len(set(reads))


def test_a_rejected_bulk_write_heals_the_rest_one_by_one(nova_bed_placement: Any) -> None:
    """A real 409 (a provider's capacity): the one that does not fit fails, the rest heal."""
    bed = nova_bed_placement
    missing = testbed.drift(bed, "missing_allocations", 6)
    rp = full = missing[0]["provider"]  # the compute node's uuid, its provider's too
    api = PlacementAPI(bed.placement_url)
    inventories = api.get(f"/resource_providers/{rp}/inventories")
    memory = dict(inventories["inventories"]["MEMORY_MB"], max_unit=1)
    api.put(
        f"/resource_providers/{rp}/inventories/MEMORY_MB",
        {**memory, "resource_provider_generation": inventories["resource_provider_generation"]},
    )
    before = testbed.snapshot_placement(bed)
    audit = support.run(bed, "heal_allocations", mode="audit", check_owners=False)
    assert {f.status for f in audit.findings} == {Status.WOULD_FIX}
    assert testbed.snapshot_placement(bed) == before

    report, sent = requests_of_run(bed, check_owners=False)
    blocked = {c["instance_uuid"] for c in missing if c["provider"] == full}
    assert 0 < len(blocked) < len(missing)
    status = {f.object_id: f.status for f in report.findings}
    assert {u for u, s in status.items() if s is Status.FAILED} == blocked
    assert {u for u, s in status.items() if s is Status.FIXED} == {
        c["instance_uuid"] for c in missing
    } - blocked
    failed = [f for f in report.findings if f.status is Status.FAILED]
    assert all("409" in f.problem and f.fix for f in failed)
    assert ("POST", "/allocations") in sent  # tried in bulk first, then one by one
    for change in missing:
        held = api.get(f"/allocations/{change['instance_uuid']}")["allocations"]
        assert bool(held) is (change["instance_uuid"] not in blocked)


def test_consumers_that_are_no_instance_are_read_once_not_every_instance(
    nova_bed_placement: Any,
) -> None:
    """Orphans count in their pair's usage: each is read once, no instance of the pair is."""
    bed = nova_bed_placement
    orphans = {c["consumer_uuid"] for c in testbed.drift(bed, "orphan_allocations", 3)}
    report, sent = requests_of_run(bed, mode="audit")
    assert report.code == Code.OK, report.findings
    consumers = {p.rsplit("/", 1)[1] for m, p in sent if m == "GET" and _is_consumer(p)}
    assert consumers == orphans
    wrong = {c["instance_uuid"] for c in testbed.drift(bed, "wrong_user_allocations", 2)}
    report, sent = requests_of_run(bed, mode="audit")
    assert {f.object_id for f in report.findings} == wrong
    assert {f.status for f in report.findings} == {Status.WOULD_FIX}


def _is_consumer(path: str) -> bool:
    return path.startswith("/allocations/") and path.count("/") == 2
