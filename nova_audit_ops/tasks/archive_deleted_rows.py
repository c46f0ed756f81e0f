"""archive_deleted_rows: move soft-deleted rows of a cell database into its shadow tables.

Tables and order come from the live schema (nova/shadow.py). Rows with
`deleted != 0` and `deleted_at` before the cut-off move with their foreign-key
children (whatever the children's own `deleted`), children first, in bounded
transactions: each batch moves at most `batch_size` rows (one parent's tree is
never split), insert-into-shadow and delete-from-main together, child rows read
for the whole batch at once, once per parent column, empty child tables skipped
(archive_steps/tree.py). A delete that removes other rows than the insert
copied (a concurrent writer) rolls the batch back, so main + shadow always hold
the same rows. A primary-key collision in a shadow table is a finding naming
the table and ids; that parent is left and the run goes on.

The API rows of archived instances (API_TABLES) are removed after each batch; their
uuids are written ahead to the state store so a run killed in between finishes the job.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from nova_audit_ops.clients.db_retry import retry_transaction
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.engine.state import MarkerKind
from nova_audit_ops.engine.timing import cutoff
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.shadow import SHADOW_ASSET_ALIAS, ShadowPlan, reflect_plan
from nova_audit_ops.settings.access import ARCHIVE, DELETE, DbAccess
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import TaskSpec, before_knob, retention_knob
from nova_audit_ops.settings.throttles import REPLICA_PACED
from nova_audit_ops.tasks.archive_steps.findings import report_collision, table_failed
from nova_audit_ops.tasks.archive_steps.tree import count_new, key_of, occupied, tree

API_TABLES = ("request_specs", "instance_group_member", "instance_mappings")
SPEC = TaskSpec(
    name="archive_deleted_rows",
    family="database",
    summary="Move soft-deleted rows older than the retention into the shadow tables.",
    knobs=(
        retention_knob(30, "Archive"),
        before_knob("Archive"),
        Knob("task_log", "bool", False, "Also archive task_log rows (by updated_at)."),
        *REPLICA_PACED,
    ),
    defaults={"window": "01:00-05:00", "batch_size": 5000},
    asset_alias=SHADOW_ASSET_ALIAS,
    api_tables=DbAccess(writes=dict.fromkeys(API_TABLES, (DELETE,))),  # of archived instances
    cell_tables=DbAccess(reflected=ARCHIVE),
)
MAX_PARENTS = 5000


class _TooBig(Exception):
    """The batch grew past batch_size rows: retry it with fewer parents."""


class _Changed(Exception):
    """A delete removed other rows than the insert copied: someone wrote meanwhile."""


@dataclass
class Tally:
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    api_rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seen: dict[str, set[Any]] = field(default_factory=lambda: defaultdict(set))  # audit mode
    longest_transaction: float = 0.0


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    cut = cutoff(ctx.reference_time, int(ctx.options["retention_days"]), ctx.options["before"])
    report.details["cutoff"] = cut.isoformat(sep=" ")
    engine = ctx.engines.cell(cell)
    plan = reflect_plan(engine)
    for name, why in sorted(plan.problems.items()):
        report.add(
            Finding(
                "table",
                name,
                why,
                "table not archived",
                Status.MUST_NOT_FIX,
                cell.label,
                fix="bring the schema up to date, then rerun archive_deleted_rows",
            )
        )
    tally = Tally()
    if ctx.heal:
        _finish_api_cleanup(ctx, cell, engine, tally)
    batches = 0
    for table in plan.tables:
        selection = _selection(table, cut, bool(ctx.options["task_log"]))
        if selection is None:
            continue
        batches, stopped = _archive_table(
            ctx, cell, engine, plan, table, selection, tally, report, batches
        )
        if stopped:
            report.more_work = True
            break
    _summarise(ctx, cell, report, tally, cut)
    return report


def _selection(table: sa.Table, cut: Any, task_log: bool) -> sa.ColumnElement[bool] | None:
    """Which rows of `table` are archived as parents (None: only as someone's children)."""
    if table.name == "task_log":
        return table.c.updated_at < cut if task_log and "updated_at" in table.c else None
    if "deleted" not in table.c or "deleted_at" not in table.c or key_of(table) is None:
        return None
    return sa.and_(table.c.deleted != 0, table.c.deleted_at < cut)


def _archive_table(
    ctx: RunContext,
    cell: Cell,
    engine: Engine,
    plan: ShadowPlan,
    table: sa.Table,
    selection: sa.ColumnElement[bool],
    tally: Tally,
    report: Report,
    batches: int,
) -> tuple[int, bool]:
    """Walk one parent table in keyset batches; (batches so far, stopped early)."""
    key = key_of(table)
    assert key is not None
    limit = int(ctx.options["batch_size"])
    parents = max(1, limit // 20)
    last: Any = None
    changed = 0
    while True:
        if ctx.must_stop(batches):
            return batches, True
        ids = _parent_keys(engine, key, selection, last, parents)
        if not ids or not ctx.pacer.before_batch(report, cell.uuid, cell.label):
            return batches, bool(ids)  # rows left: the pacer stopped the run (deadline)
        started = time.monotonic()
        try:
            moved = _move(ctx, cell, engine, plan, table, key, ids, limit, tally.seen)
        except _TooBig:  # rare: the estimate below keeps a margin
            parents = max(1, len(ids) * 2 // 3)
            continue
        except _Changed as exc:
            changed += 1  # the rows changed under us: read the batch again
            if changed < 3:
                continue
            report.add(table_failed(table, cell, f"rows of {exc} kept changing while moved"))
            return batches, False
        except IntegrityError as exc:
            if len(ids) > 1:
                parents = max(1, len(ids) // 2)
                continue
            if not report_collision(engine, plan, table, key, ids[0], cell, report):
                # Like Nova on a foreign-key error: leave this table for a later run.
                report.add(table_failed(table, cell, f"integrity error: {exc.orig}"))
                return batches, False
            last = ids[0]
            continue
        changed = 0
        tally.longest_transaction = max(tally.longest_transaction, time.monotonic() - started)
        batches += 1
        last = ids[-1]
        for name, count in moved.items():
            tally.rows[name] += count
        if table.name == "instances" and ctx.heal:
            _finish_api_cleanup(ctx, cell, engine, tally)
        ctx.pacer.batch_done(rows := sum(moved.values()))  # throttles count the rows
        # Aim at 80 % of the limit: trees vary, and an overfull batch is rolled back.
        parents = min(MAX_PARENTS, max(1, int(0.8 * limit * len(ids) / max(rows, 1))))


def _parent_keys(
    engine: Engine, key: sa.Column, selection: sa.ColumnElement[bool], last: Any, count: int
) -> list[Any]:
    """The keys of the next `count` rows to archive as parents, after `last` (None: first)."""
    query = sa.select(key).where(selection).order_by(key).limit(count)
    if last is not None:
        query = query.where(key > last)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def _move(
    ctx: RunContext,
    cell: Cell,
    engine: Engine,
    plan: ShadowPlan,
    table: sa.Table,
    key: sa.Column,
    ids: Sequence[Any],
    limit: int,
    seen: dict[str, set[Any]],
) -> dict[str, int]:
    """Move the rows `ids` of `table` and their children in one transaction (or count them)."""
    where = key.in_(list(ids))
    if not ctx.heal:
        with engine.begin() as conn:
            return count_new(conn, [*tree(conn, plan, table, where), (table, where)], seen)
    return retry_transaction(
        engine,
        lambda conn: _move_in(ctx, cell, conn, plan, table, where, len(ids) > 1 and limit),
        ctx.db_retry_policy(),
    )


def _move_in(
    ctx: RunContext,
    cell: Cell,
    conn: Connection,
    plan: ShadowPlan,
    table: sa.Table,
    where: sa.ColumnElement[bool],
    limit: int | bool,
) -> dict[str, int]:
    """Move the rows and their children to the shadow tables (_TooBig past `limit`)."""
    moved: dict[str, int] = defaultdict(int)
    read: dict[str, list[Any]] = {}
    present = occupied(conn, plan, table)
    statements = [*tree(conn, plan, table, where, present, read), (table, where)]
    uuids: list[str] = []
    if table.name == "instances":
        uuids = read.get("uuid") or list(
            conn.execute(sa.select(table.c.uuid).where(where)).scalars()
        )
    for tbl, clause in statements:
        columns = [c.name for c in tbl.columns]
        copied = conn.execute(
            plan.shadow_of(tbl).insert().from_select(columns, sa.select(*tbl.columns).where(clause))
        ).rowcount
        removed = conn.execute(tbl.delete().where(clause)).rowcount
        if copied != removed:
            raise _Changed(tbl.name)
        moved[tbl.name] += removed
        if limit is not False and sum(moved.values()) > limit:
            raise _TooBig()
    if uuids:  # written ahead: the API cleanup survives a kill after this commit
        ctx.save_marker(cell.uuid, {"uuids": uuids}, MarkerKind.API_CLEANUP)
    return moved


def _finish_api_cleanup(ctx: RunContext, cell: Cell, engine: Engine, tally: Tally) -> None:
    """Remove the API rows of archived instances (idempotent; only truly archived ones)."""
    pending = (ctx.load_marker(cell.uuid, MarkerKind.API_CLEANUP) or {}).get("uuids") or []
    if not pending:
        return
    with engine.connect() as conn:
        instances = sa.table("instances", sa.column("uuid"))
        still_there = set(
            conn.execute(sa.select(instances.c.uuid).where(instances.c.uuid.in_(pending))).scalars()
        )
    archived = [u for u in pending if u not in still_there]
    if archived:
        counts = retry_transaction(
            ctx.engines.api,
            lambda api: _delete_api_rows(api, archived),
            ctx.db_retry_policy(),
        )
        for name, count in counts.items():
            tally.api_rows[name] += count
    ctx.save_marker(cell.uuid, None, MarkerKind.API_CLEANUP)


def _delete_api_rows(api: Connection, archived: Sequence[str]) -> dict[str, int]:
    """Delete the API rows of the archived instances; the rows deleted per table."""
    counts: dict[str, int] = {}
    for name in API_TABLES:
        api_table = sa.table(name, sa.column("instance_uuid"))
        result = api.execute(api_table.delete().where(api_table.c.instance_uuid.in_(archived)))
        counts[name] = result.rowcount
    return counts


def _summarise(ctx: RunContext, cell: Cell, report: Report, tally: Tally, cut: Any) -> None:
    verb = "moved" if ctx.heal else "would move"
    for name, count in sorted(tally.rows.items()):
        if not count:
            continue
        report.counts.examined += count
        report.add(
            Finding(
                "table",
                name,
                f"{count} row(s) of {name} soft-deleted before {cut:%Y-%m-%d %H:%M:%S} "
                "(or children of such rows)",
                f"{verb} to shadow_{name}",
                Status.FIXED if ctx.heal else Status.WOULD_FIX,
                cell.label,
                fix=None if ctx.heal else "nova-audit run archive_deleted_rows --mode heal",
            )
        )
    report.details["rows"] = {cell.label: {k: v for k, v in sorted(tally.rows.items()) if v}}
    report.details["longest_transaction_s"] = {cell.label: round(tally.longest_transaction, 3)}
    if tally.api_rows:
        report.details["api_rows"] = {cell.label: dict(tally.api_rows)}
