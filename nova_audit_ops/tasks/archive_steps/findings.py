"""archive_deleted_rows' findings about tables: shadow-key collisions, failed tables."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nova_audit_ops.clients import secrets
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.shadow import ShadowPlan
from nova_audit_ops.tasks.archive_steps.tree import key_of, tree


def report_collision(
    engine: Engine,
    plan: ShadowPlan,
    table: sa.Table,
    key: sa.Column,
    parent: Any,
    cell: Cell,
    report: Report,
) -> bool:
    """Name the shadow table and the ids that already exist there; False if none do."""
    with engine.connect() as conn:
        for tbl, clause in [
            *tree(conn, plan, table, key.in_([parent])),
            (table, key.in_([parent])),
        ]:
            tkey = key_of(tbl)
            if tkey is None:
                continue
            ids = list(conn.execute(sa.select(tkey).where(clause)).scalars())
            shadow = plan.shadow_of(tbl)
            skey = shadow.c[tkey.name]
            taken = (
                sorted(conn.execute(sa.select(skey).where(skey.in_(ids))).scalars()) if ids else []
            )
            if taken:
                if any(
                    f.object_id == shadow.name
                    and f.problem.startswith(
                        f"{shadow.name} already holds rows with {tkey.name} "
                        f"{', '.join(map(str, taken[:20]))} "
                    )
                    for f in report.findings
                ):
                    return True  # the same stale rows, met again through another table
                report.add(
                    Finding(
                        "table",
                        shadow.name,
                        f"{shadow.name} already holds rows with {tkey.name} "
                        f"{', '.join(map(str, taken[:20]))} "
                        "(ids reused, e.g. after a MySQL restart)",
                        f"left {table.name} {key.name}={parent} and its children in place",
                        Status.MUST_NOT_FIX,
                        cell.label,
                        fix=f"compare those rows of {tbl.name} and {shadow.name}; delete the stale "
                        "shadow copies (or purge them), then rerun archive_deleted_rows",
                    )
                )
                return True
    return False


def table_failed(table: sa.Table, cell: Cell, why: str) -> Finding:
    return Finding(
        "table",
        table.name,
        f"{table.name} could not be archived: {secrets.scrub(why)}",
        "the rest of this table was left for a later run",
        Status.FAILED,
        cell.label,
        fix="read the task log, fix the cause, then rerun archive_deleted_rows",
    )
