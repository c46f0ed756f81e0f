"""Batch fan-out: the units a DAG run expands its per-cell task over.

A unit is one cell, or one id range of a cell too big for one task (more rows
in its task's range table than `fanout_instances`). Cells the task skips, and
cells of tasks that cannot be split, are one unit each, as before fan-out. The
plan reads ids only (engine/batches.py) and stays within MAX_UNITS in all.

The CLI does not use this: it walks each cell whole under the whole-cell lock,
which covers the same ids as the union of the batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nova_audit_ops.engine.batches import plan_ranges, ranges_per_cell
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.ranges import IdRange
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.runner import EXPECTED_FAILURES, LOG, failure_message, skip_reason


def fanout_size(ctx: RunContext) -> int:
    """Rows per batch for this run, 0 when its cells are never split."""
    if ctx.spec.ranges is None:
        return 0
    return int(ctx.options.get("fanout_instances") or 0)


def plan_units(ctx: RunContext, cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """One unit per cell, or per range of a cell to split; JSON-ready, no secrets."""
    size = fanout_size(ctx)
    working = [c for c in cells if not skip_reason(ctx.spec, c.uuid)]
    cap = ranges_per_cell(len(working))
    units: list[dict[str, Any]] = []
    for cell in cells:
        ranges = [IdRange()]
        if size and cell in working:
            ranges = _cell_ranges(ctx, cell, size, cap)
        units.extend(unit(cell, r, slot, len(ranges)) for slot, r in enumerate(ranges))
    return units


def unit(cell: Cell, id_range: IdRange, slot: int, of: int) -> dict[str, Any]:
    """The XCom form of one unit; its label is the mapped task's name in the grid."""
    split = of > 1
    return {
        "cell": cell.public(),
        "range": id_range.public() if split else None,
        "slot": slot,
        "batches": of,
        "label": f"{cell.label} {id_range.label}" if split else cell.label,
    }


def _cell_ranges(ctx: RunContext, cell: Cell, size: int, cap: int) -> list[IdRange]:
    """The cell's ranges; a cell that cannot be planned is one unit, whose run says why."""
    support = ctx.spec.ranges
    assert support is not None
    try:
        engine = ctx.engines.api if support.database == "api" else ctx.engines.cell(cell)
        return plan_ranges(engine, support, cell.id, size, cap)
    except EXPECTED_FAILURES as exc:
        LOG.warning("%s: cell %s not split: %s", ctx.spec.name, cell.label, failure_message(exc))
        return [IdRange()]
