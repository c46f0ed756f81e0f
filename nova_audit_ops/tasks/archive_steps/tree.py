"""The rows that move with a batch of parents: their foreign-key trees, children first.

One read per parent column and level (every child of `instances` hangs off
its uuid: one read, not one per child table), and children whose table holds
no row at all are not visited: one EXISTS query per batch says which, inside
the batch's own transaction, so it sees what the moves see.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nova_audit_ops.nova.shadow import ShadowPlan


def count_new(
    conn: Connection, statements: list[tuple[sa.Table, Any]], seen: dict[str, set[Any]]
) -> dict[str, int]:
    """Audit mode: rows that would move, each counted once however it is reached."""
    counts: dict[str, int] = defaultdict(int)
    for tbl, clause in statements:
        key = list(tbl.primary_key.columns) or list(tbl.columns)
        rows = {tuple(r) for r in conn.execute(sa.select(*key).where(clause))}
        fresh = rows - seen[tbl.name]
        seen[tbl.name] |= fresh
        counts[tbl.name] += len(fresh)
    return counts


def key_of(table: sa.Table) -> sa.Column | None:
    """The single-column key batches are cut by (Nova uses `id`)."""
    if "id" in table.c:
        return table.c.id
    pk = list(table.primary_key.columns)
    return pk[0] if len(pk) == 1 else None


def descendants(plan: ShadowPlan, name: str) -> dict[str, sa.Table]:
    """Every table below `name` in the foreign-key tree, by name."""
    found: dict[str, sa.Table] = {}
    for edge in plan.children.get(name, []):
        if edge.child.name not in found:
            found[edge.child.name] = edge.child
            found.update(descendants(plan, edge.child.name))
    return found


def occupied(conn: Connection, plan: ShadowPlan, table: sa.Table) -> set[str] | None:
    """Names of the tables below `table` that hold any row now (one query; None: no children)."""
    below = sorted(descendants(plan, table.name).items())
    if not below:
        return None
    query = sa.select(
        *(sa.exists().select_from(t).label(f"t{n}") for n, (_, t) in enumerate(below))
    )
    flags = conn.execute(query).one()
    return {name for (name, _), flag in zip(below, flags, strict=True) if flag}


def tree(
    conn: Connection,
    plan: ShadowPlan,
    table: sa.Table,
    where: Any,
    present: set[str] | None = None,
    read: dict[str, list[Any]] | None = None,
) -> list[tuple[sa.Table, Any]]:
    """(table, where) of every row that moves with the selected rows, children first.

    `present` (from occupied()) skips children whose table is empty; `read`
    collects the selected rows' values per parent column, for the caller.
    """
    statements: list[tuple[sa.Table, Any]] = []
    read = {} if read is None else read
    for edge in plan.children.get(table.name, []):
        if present is not None and edge.child.name not in present:
            continue
        column = edge.parent_column.name
        if column not in read:
            rows = conn.execute(sa.select(edge.parent_column).where(where)).scalars()
            read[column] = [v for v in rows if v is not None]
        if not read[column]:
            continue
        child_where = edge.child_column.in_(read[column])
        statements.extend(tree(conn, plan, edge.child, child_where, present))
        statements.append((edge.child, child_where))
    return statements
