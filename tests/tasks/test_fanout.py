"""Split cells: range runs of map_instances and heal_allocations on the MariaDB test bed.

A batch touches only its range, the batches of a cell add up to one whole-cell
run (counts, findings, database state), audit batches write nothing, and each
batch resumes from its own marker.
"""

from __future__ import annotations

from typing import Any

import testbed
from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.engine.state import MemoryStateStore
from tests import support
from tests.batches import plan, run_batched, run_unit, split
from tests.tasks.test_map_instances import instances, mappings, unmapped

FANOUT = 3  # the bed's cells hold 10 instances each: four ranges per cell


def ids_of(bed: Any, cell: str, live_only: bool = False) -> dict[str, int]:
    where = " WHERE deleted = 0" if live_only else ""
    rows = support.query(support.cell_url(bed, cell), f"SELECT id, uuid FROM instances{where}")
    return {r.uuid: int(r.id) for r in rows}


def test_plan_splits_big_cells_and_keeps_cell0_whole(nova_bed: Any) -> None:
    units = plan(nova_bed, "map_instances", MemoryStateStore(), fanout_instances=FANOUT)
    for cell in ("cell1", "cell2"):
        parts = split(units, cell)
        assert len(parts) == 4 and [u["slot"] for u in parts] == [0, 1, 2, 3]
        assert parts[0]["label"].startswith(f"{cell} ids 1-")
        assert parts[-1]["label"].endswith("-end") and parts[-1]["range"]["hi"] is None
    cell0 = split(units, "cell0")
    assert [u["label"] for u in cell0] == ["cell0"] and cell0[0]["range"] is None
    whole = plan(nova_bed, "map_instances", MemoryStateStore(), fanout_instances=0)
    assert [u["label"] for u in whole] == ["cell0", "cell1", "cell2"]
    skipped = plan(nova_bed, "heal_allocations", MemoryStateStore(), fanout_instances=FANOUT)
    assert [u["label"] for u in split(skipped, "cell0")] == ["cell0"], "skipped: one unit"


def test_map_instances_range_run_touches_only_its_range(nova_bed: Any) -> None:
    testbed.drift(nova_bed, "unmapped_instances", 20)
    state = MemoryStateStore()
    unit = split(plan(nova_bed, "map_instances", state, fanout_instances=FANOUT), "cell1")[1]
    report = run_unit(nova_bed, "map_instances", unit, state, mode="heal")
    ids = ids_of(nova_bed, "cell1")
    inside = {u for u, i in ids.items() if unit["range"]["lo"] < i <= unit["range"]["hi"]}
    assert report.code == Code.OK and {f.object_id for f in report.findings} == inside
    assert report.counts.examined == 3 and report.cells_checked == ["cell1"]
    assert unmapped(nova_bed) == (set(instances(nova_bed)) - set(mappings(nova_bed)))
    assert not unmapped(nova_bed) & inside and unmapped(nova_bed) - inside


def test_map_instances_batches_add_up_to_one_whole_run(nova_bed: Any) -> None:
    testbed.drift(nova_bed, "unmapped_instances", 12)
    missing = unmapped(nova_bed)
    before = support.snapshot(nova_bed)
    whole = support.run(nova_bed, "map_instances", mode="audit")
    batched = run_batched(
        nova_bed, "map_instances", MemoryStateStore(), mode="audit", fanout_instances=FANOUT
    )
    assert support.snapshot(nova_bed) == before, "audit batches wrote to a database"
    assert batched.counts.to_dict() == whole.counts.to_dict()
    assert sorted(f.object_id for f in batched.findings) == sorted(missing)
    assert sorted(batched.cells_checked) == sorted(whole.cells_checked)
    assert batched.code == whole.code == Code.WARNING

    healed = run_batched(
        nova_bed, "map_instances", MemoryStateStore(), mode="heal", fanout_instances=FANOUT
    )
    assert healed.code == Code.OK and healed.counts.fixed == len(missing)
    assert {f.status for f in healed.findings} == {Status.FIXED}
    have, truth = mappings(nova_bed), instances(nova_bed)
    assert {u: have[u] for u in missing} == {u: truth[u] for u in missing}
    assert support.run(nova_bed, "map_instances", mode="heal").findings == []


def test_each_batch_resumes_from_its_own_marker(nova_bed: Any) -> None:
    testbed.drift(nova_bed, "unmapped_instances", 20)
    state = MemoryStateStore()
    params = {"mode": "heal", "batch_size": 1, "max_batches": 1, "cells": ["cell1"]}
    units = plan(nova_bed, "map_instances", state, fanout_instances=FANOUT, **params)
    assert len(units) == 4
    first = run_batched(nova_bed, "map_instances", state, units, **params)
    assert first.more_work and first.counts.examined == 4, "one page per batch"
    labels = {u["label"] for u in units[:-1]}
    assert labels <= set(first.markers), first.markers
    assert all("@" in key for key in state.values), "batch markers are keyed by range"
    runs = 1
    while run_batched(nova_bed, "map_instances", state, units, **params).more_work:
        runs += 1
        assert runs < 10
    # three rows per range at one row per run, and the run that finds each range done;
    # a whole-cell walk at one row per run would need eleven
    assert runs + 1 == FANOUT + 1, "the batches advanced side by side, not one after another"
    assert not state.values, "every batch cleared its marker when done"
    cell1 = set(ids_of(nova_bed, "cell1"))
    assert not unmapped(nova_bed) & cell1


def test_heal_allocations_batches_add_up_and_touch_only_their_range(
    nova_bed_placement: Any,
) -> None:
    bed = nova_bed_placement
    missing = {c["instance_uuid"] for c in testbed.drift(bed, "missing_allocations", 6)}
    before_db, before_placement = support.snapshot(bed), testbed.snapshot_placement(bed)
    whole = support.run(bed, "heal_allocations", mode="audit", check_owners=False)
    batched = run_batched(
        bed,
        "heal_allocations",
        MemoryStateStore(),
        mode="audit",
        check_owners=False,
        fanout_instances=2,
    )
    assert support.snapshot(bed) == before_db
    assert testbed.snapshot_placement(bed) == before_placement, "audit batches wrote"
    assert batched.counts.to_dict() == whole.counts.to_dict()
    assert (
        {f.object_id for f in batched.findings} == missing == {f.object_id for f in whole.findings}
    )

    state = MemoryStateStore()
    units = split(plan(bed, "heal_allocations", state, fanout_instances=2), "cell1")
    assert len(units) > 2
    live = ids_of(bed, "cell1", live_only=True)
    unit = next(
        u
        for u in units
        if any(
            u["range"]["lo"] < live[m] <= (u["range"]["hi"] or 1e12) for m in missing if m in live
        )
    )
    inside = {
        m
        for m in missing
        if m in live
        and unit["range"]["lo"] < live[m]
        and (unit["range"]["hi"] is None or live[m] <= unit["range"]["hi"])
    }
    one = run_unit(bed, "heal_allocations", unit, state, mode="heal")
    assert one.code == Code.OK and {f.object_id for f in one.findings} == inside
    left = support.run(bed, "heal_allocations", mode="audit", check_owners=False)
    assert {f.object_id for f in left.findings} == missing - inside

    # the cells named: no global step (its lock name is the same for every bed on the server)
    cells = ["cell1", "cell2"]
    healed = run_batched(
        bed, "heal_allocations", state, mode="heal", fanout_instances=2, cells=cells
    )
    assert healed.code == Code.OK and healed.counts.fixed == len(missing - inside)
    assert support.run(bed, "heal_allocations", mode="audit").counts.drifted == 0


def test_a_failed_batch_fails_its_cell_and_names_its_range(nova_bed: Any, tmp_path: Any) -> None:
    from nova_audit_ops import registry, runner
    from nova_audit_ops.clients.locks import named_lock
    from nova_audit_ops.engine.report import merge

    testbed.drift(nova_bed, "unmapped_instances", 20)
    config = support.config_with(nova_bed, tmp_path, audit={"task_lock_wait": "0"})
    state = MemoryStateStore()
    units = split(plan(nova_bed, "map_instances", state, fanout_instances=FANOUT), "cell1")
    busy = units[2]
    cell_uuid = busy["cell"]["uuid"]
    ctx = runner.open_context("map_instances", registry.load_config(config), {"mode": "heal"})
    slot = runner.slot_lock_name("map_instances", cell_uuid, busy["slot"])
    try:
        with named_lock(ctx.engines.api, slot, 0):  # another run of that range, in progress
            reports = [
                run_unit(nova_bed, "map_instances", u, state, mode="heal", config_path=config)
                for u in units
            ]
    finally:
        ctx.engines.dispose()
    merged = merge("map_instances", "heal", reports)
    assert merged.code == Code.FAILURE and merged.cells_failed == ["cell1"]
    [failure] = [f for f in merged.findings if f.kind == "cell"]
    assert failure.object_id == busy["label"] and busy["label"] in failure.problem
    assert "held by another run" in failure.problem
    fixed = {f.object_id for f in merged.findings if f.status is Status.FIXED}
    ids = ids_of(nova_bed, "cell1")
    lo, hi = busy["range"]["lo"], busy["range"]["hi"]
    assert fixed and all(not lo < ids[u] <= hi for u in fixed), "the other batches wrote"
    assert {u for u in unmapped(nova_bed) if u in ids} == {
        u for u, i in ids.items() if lo < i <= hi
    }


def test_heal_instance_mappings_splits_on_the_mappings_of_a_cell(nova_bed: Any) -> None:
    testbed.drift(nova_bed, "wrong_cell_mappings", 6)
    params = {"mode": "audit", "grace_period": 0, "cells": ["cell1", "cell2"]}
    state = MemoryStateStore()
    units = plan(nova_bed, "heal_instance_mappings", state, fanout_instances=4, **params)
    assert len(split(units, "cell1")) > 1 and len(split(units, "cell2")) > 1
    before = support.snapshot(nova_bed)
    whole = support.run(nova_bed, "heal_instance_mappings", **params)
    batched = run_batched(nova_bed, "heal_instance_mappings", state, units, **params)
    assert support.snapshot(nova_bed) == before
    assert batched.counts.to_dict() == whole.counts.to_dict() and whole.counts.drifted
    assert sorted(f.object_id for f in batched.findings) == sorted(
        f.object_id for f in whole.findings
    )
    healed = run_batched(
        nova_bed, "heal_instance_mappings", state, units, **{**params, "mode": "heal"}
    )
    assert healed.code == Code.OK and healed.counts.fixed == whole.counts.drifted
    assert support.run(nova_bed, "heal_instance_mappings", **params).counts.drifted == 0
