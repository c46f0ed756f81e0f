"""purge: delete old rows from a cell's shadow tables, in bounded chunks.

Like `nova-manage db purge --before`, a row's age comes from `deleted_at`
(`created_at` for instance actions and their events, `updated_at` for
task_log, else `updated_at`/`created_at`). Unlike it, rows go in keyset chunks
of `batch_size`, one short transaction each, never one unbounded DELETE per
table, and the run stops between chunks at its deadline. Children's shadow
tables are purged before their parents'.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from nova_audit_ops.clients.db_retry import retry_transaction, statement
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.engine.timing import cutoff
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.shadow import SHADOW_ASSET_ALIAS, purgeable
from nova_audit_ops.settings.access import PURGE, DbAccess
from nova_audit_ops.settings.spec import (
    TaskSpec,
    before_knob,
    retention_knob,
)
from nova_audit_ops.settings.throttles import REPLICA_PACED

SPEC = TaskSpec(
    name="purge_shadow_tables",
    family="database",
    summary="Delete shadow-table rows older than the purge retention, in bounded chunks.",
    knobs=(
        retention_knob(90, "Purge shadow"),
        before_knob("Purge shadow"),
        *REPLICA_PACED,
    ),
    defaults={"batch_size": 5000},
    cell_tables=DbAccess(reflected=PURGE),
    triggered_by=SHADOW_ASSET_ALIAS,
    aliases=("purge",),
)


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    cut = cutoff(ctx.reference_time, int(ctx.options["retention_days"]), ctx.options["before"])
    report.details["cutoff"] = cut.isoformat(sep=" ")
    engine = ctx.engines.cell(cell)
    purged: dict[str, int] = defaultdict(int)
    longest = [0.0]  # seconds of the longest delete transaction
    batches = 0
    for table, column in reversed(purgeable(engine)):  # children before parents
        if column is None:  # e.g. shadow_alembic_version: nothing to judge age by
            report.details.setdefault("not_purged", {}).setdefault(cell.label, []).append(
                table.name
            )
            continue
        batches, stopped = _purge_table(
            ctx, cell, report, engine, table, column, cut, purged, batches, longest
        )
        if stopped:
            report.more_work = True
            break
    verb = "deleted" if ctx.heal else "would delete"
    for name, count in sorted(purged.items()):
        if count:
            report.counts.examined += count
            report.add(
                Finding(
                    "table",
                    name,
                    f"{count} row(s) of {name} older than {cut:%Y-%m-%d %H:%M:%S}",
                    f"{verb} them",
                    Status.FIXED if ctx.heal else Status.WOULD_FIX,
                    cell.label,
                    fix=None if ctx.heal else "nova-audit run purge --mode heal",
                )
            )
    report.details["rows"] = {cell.label: {k: v for k, v in sorted(purged.items()) if v}}
    report.details["longest_transaction_s"] = {cell.label: round(longest[0], 3)}
    return report


def _purge_table(
    ctx: RunContext,
    cell: Cell,
    report: Report,
    engine: sa.Engine,
    table: sa.Table,
    column: sa.Column,
    cut: Any,
    purged: dict[str, int],
    batches: int,
    longest: list[float],
) -> tuple[int, bool]:
    key = [table.c.id] if "id" in table.c else list(table.primary_key.columns)
    key = key or list(table.columns)
    size = int(ctx.options["batch_size"])
    last: tuple[Any, ...] | None = None
    while True:
        if ctx.must_stop(batches):
            return batches, True
        query = sa.select(*key).where(column < cut).order_by(*key).limit(size)
        if last is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*last))
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query)]
        if not rows or not ctx.pacer.before_batch(report, cell.uuid, cell.label):
            return batches, bool(rows)  # rows left: the pacer stopped the run (deadline)
        last = rows[-1]
        if ctx.heal:
            match = key[0].in_([r[0] for r in rows]) if len(key) == 1 else sa.tuple_(*key).in_(rows)
            started = time.monotonic()
            delete = table.delete().where(match)
            result = retry_transaction(
                engine,
                statement(delete),
                ctx.db_retry_policy(),
            )
            purged[table.name] += result.rowcount
            longest[0] = max(longest[0], time.monotonic() - started)
        else:
            purged[table.name] += len(rows)
        ctx.pacer.batch_done(len(rows))
        batches += 1
        if len(rows) < size:
            return batches, False
