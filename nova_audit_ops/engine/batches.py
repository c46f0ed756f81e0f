"""Plan the id ranges a big cell is split into, reading ids only.

The planner steps through the range table's primary key: from the last
boundary, `ORDER BY id LIMIT 2 OFFSET size-1` names the size-th id after it
(the next boundary) and whether anything follows. That is an index-only walk;
no row and no id list is held in memory. A cell of at most `size` rows is one
range, (0, None): exactly the run of a cell that is not split.

The number of ranges per cell is capped (a DAG's mapped tasks must stay far
below Airflow's max_map_length of 1024): a cell that would need more gets
ranges twice as big, as often as needed, never a failed plan.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nova_audit_ops.engine.ranges import IdRange
from nova_audit_ops.nova.schema import table
from nova_audit_ops.settings.spec import RangeSupport

# Ranges of one cell at most; also the runner's lock slots per task and cell.
MAX_RANGES_PER_CELL = 64
# Mapped tasks of one DAG run at most: the per-cell cap shrinks when there are many cells.
MAX_UNITS = 512


def ranges_per_cell(cells: int) -> int:
    """How many ranges each of `cells` cells may have so the plan stays within MAX_UNITS."""
    return max(1, min(MAX_RANGES_PER_CELL, MAX_UNITS // max(1, cells)))


def plan_ranges(
    engine: Engine, support: RangeSupport, cell_id: int, size: int, max_ranges: int
) -> list[IdRange]:
    """Consecutive ranges of about `size` rows covering every id; the last is open."""
    if size <= 0 or max_ranges <= 1:
        return [IdRange()]
    rows = table(engine, support.table)
    filters = []
    if support.live_only:
        filters.append(rows.c.deleted == 0)
    if support.cell_column:
        filters.append(rows.c[support.cell_column] == cell_id)
    bounds: list[int] = []
    step = size
    with engine.connect() as conn:
        while True:
            after = bounds[-1] if bounds else 0
            query = (
                sa.select(rows.c.id)
                .where(rows.c.id > after, *filters)
                .order_by(rows.c.id)
                .offset(step - 1)
                .limit(2)
            )
            ids = [int(i) for i in conn.execute(query).scalars()]
            if len(ids) < 2:  # at most `step` rows left: they are the last, open range
                break
            bounds.append(ids[0])
            if len(bounds) >= max_ranges:  # too many: keep every other boundary
                bounds = bounds[1::2]
                step *= 2
    edges = [0, *bounds]
    return [IdRange(lo, hi) for lo, hi in zip(edges, [*bounds, None], strict=True)]
