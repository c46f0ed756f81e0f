"""heal_instance_mappings: fix instance mappings that point nowhere or to the wrong cell.

Nova never shipped this. Two kinds of drift, both older than a grace period
(measured from the run's reference time, never now()):

- a mapping with no cell that is neither Nova's map_instances marker row nor
  an instance being built (it has no build request) — the global step;
- a mapping whose cell does not hold its instance — one step per cell.

Each instance is looked up in every cell, cell0 included, one query per cell
per batch. Found in one cell: the mapping gets that cell. Found nowhere: the
instance is gone (archived or never created), so the mapping and its
`request_specs` and `instance_group_member` rows are deleted, as Nova's
archive does. Found in several cells, or a cell did not answer: reported,
never guessed at.

Writes re-check their condition in the same statement or transaction, so an
instance whose build or move progresses meanwhile is left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nova_audit_ops.clients.db_retry import retry_transaction, statement
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.paging import Page, keyset_pages, resume_point, walk
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.instances import MIGRATION_MARKER_PROJECT
from nova_audit_ops.nova.locate import Whereabouts, locate
from nova_audit_ops.nova.schema import table
from nova_audit_ops.nova.unknown_cells import lost_mappings
from nova_audit_ops.settings.access import DELETE, UPDATE, DbAccess
from nova_audit_ops.settings.errors import DatabaseUnreachableError
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import RangeSupport, TaskSpec
from nova_audit_ops.settings.throttles import DB_THROTTLES

SPEC = TaskSpec(
    name="heal_instance_mappings",
    family="cells",
    summary="Fix instance mappings with no cell or the wrong cell; delete orphans.",
    knobs=(
        Knob(
            "grace_period",
            "int",
            600,
            "Seconds a mapping must be old before it is judged (in-flight builds are younger).",
            minimum=0,
            maximum=30 * 24 * 3600,
        ),
        *DB_THROTTLES,
    ),
    api_tables=DbAccess(
        reads=("instance_mappings", "build_requests"),
        writes={
            "instance_mappings": (UPDATE, DELETE),
            "instance_group_member": (DELETE,),  # an orphan's API rows go with it
            "request_specs": (DELETE,),
        },
    ),
    cell_tables=DbAccess(reads=("instances",)),
    defaults={"schedule": "*/10 * * * *", "batch_size": 500},
    global_step=True,
    # a cell's walk reads the mappings that point at it, in the API database
    ranges=RangeSupport("instance_mappings", database="api", cell_column="cell_id"),
)
GLOBAL_MARKER = "unassigned"
FIX = "nova-audit run heal_instance_mappings --mode heal"


@dataclass(frozen=True)
class Mapping:
    id: int
    instance_uuid: str
    cell_id: int | None


def run_global(ctx: RunContext, cells: Sequence[Cell]) -> Report:
    """Judge the mappings that have no cell and no build request."""
    report = ctx.new_report()
    report.cells_checked.append(GLOBAL_MARKER)
    report.details["within_grace_period"] = _young_unassigned(ctx)
    _report_lost(ctx, cells, report)
    return _walk(ctx, cells, None, report)


def _report_lost(ctx: RunContext, cells: Sequence[Cell], report: Report) -> None:
    """Mappings to a cell id cell_mappings lacks: no cell's walk sees them, so say so here."""
    for lost in lost_mappings(ctx.engines.api, {c.id for c in cells}):
        report.counts.examined += 1
        report.add(
            Finding(
                kind="instance",
                object_id=lost.instance_uuid,
                cell=None,
                problem=lost.problem,
                action="skipped: which cell was meant is for an operator to say",
                status=Status.LEFT,
                fix=lost.fix,
            )
        )


def _young_unassigned(ctx: RunContext) -> int:
    """Cell-less mappings too young to judge yet: said, so they are not silently skipped."""
    api = ctx.engines.api
    im, br = table(api, "instance_mappings"), table(api, "build_requests")
    changed = sa.func.coalesce(im.c.updated_at, im.c.created_at)
    building = sa.select(br.c.id).where(br.c.instance_uuid == im.c.instance_uuid).exists()
    query = sa.select(sa.func.count()).where(
        im.c.cell_id.is_(None),
        im.c.project_id != MIGRATION_MARKER_PROJECT,
        ~building,
        changed >= _cutoff(ctx),
    )
    with api.connect() as conn:
        return int(conn.execute(query).scalar_one())


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    """Judge the mappings that point at this cell against the cell's instances."""
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    return _walk(ctx, ctx.all_cells(), cell, report)


def _walk(ctx: RunContext, cells: Sequence[Cell], cell: Cell | None, report: Report) -> Report:
    key = cell.uuid if cell else GLOBAL_MARKER
    label = cell.label if cell else GLOBAL_MARKER
    im = table(ctx.engines.api, "instance_mappings")
    pages = keyset_pages(
        ctx.engines.api,
        lambda last: _candidates(ctx, cell).where(im.c.id > last).order_by(im.c.id),
        ctx.options["batch_size"],
        resume_point(ctx, key),
        ctx.range_hi if cell is not None else None,
    )
    walk(
        ctx,
        report,
        key,
        label,
        pages,
        lambda page: _judge(ctx, cells, cell, _mappings(page), report),
    )
    return report


def _mappings(page: Page) -> list[Mapping]:
    return [Mapping(r.id, r.instance_uuid, r.cell_id) for r in page.rows]


def _cutoff(ctx: RunContext) -> dt.datetime:
    reference = ctx.reference_time.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return reference - dt.timedelta(seconds=int(ctx.options["grace_period"]))


def _candidates(ctx: RunContext, cell: Cell | None) -> sa.Select:
    """Mappings old enough to judge: no cell (and no build request), or this cell."""
    api = ctx.engines.api
    im = table(api, "instance_mappings")
    br = table(api, "build_requests")
    changed = sa.func.coalesce(im.c.updated_at, im.c.created_at)
    query = sa.select(im.c.id, im.c.instance_uuid, im.c.cell_id).where(changed < _cutoff(ctx))
    if cell is not None:
        return query.where(im.c.cell_id == cell.id)
    building = sa.select(br.c.id).where(br.c.instance_uuid == im.c.instance_uuid).exists()
    return query.where(
        im.c.cell_id.is_(None), im.c.project_id != MIGRATION_MARKER_PROJECT, ~building
    )


def _judge(
    ctx: RunContext,
    cells: Sequence[Cell],
    cell: Cell | None,
    batch: Sequence[Mapping],
    report: Report,
) -> None:
    if cell is not None:
        here = locate(ctx.engines.cell, [cell], [m.instance_uuid for m in batch])
        if not here.complete:
            raise DatabaseUnreachableError(f"cell {cell.label} database cannot be queried")
        batch = [m for m in batch if m.instance_uuid not in here.cells_of]
    others = [c for c in cells if cell is None or c.uuid != cell.uuid]
    where = locate(ctx.engines.cell, others, [m.instance_uuid for m in batch])
    moves: dict[int, list[Mapping]] = {}
    orphans: list[Mapping] = []
    for mapping in batch:
        homes = where.cells_of.get(mapping.instance_uuid, [])
        if len(homes) == 1:
            moves.setdefault(homes[0].id, []).append(mapping)
            report.add(_move_finding(ctx, cell, mapping, homes[0]))
        elif len(homes) > 1:
            report.add(_ambiguous_finding(cell, mapping, homes))
        elif where.complete:
            orphans.append(mapping)
            report.add(_orphan_finding(ctx, cell, mapping))
        else:
            report.add(_undecided_finding(cell, mapping, where))
    if ctx.heal:
        for target_id, mappings in moves.items():
            _set_cell(ctx, mappings, target_id, cell)
        _delete_orphans(ctx, orphans, cell)


def _still_same_cell(im: sa.Table, cell: Cell | None) -> sa.ColumnElement[bool]:
    return im.c.cell_id.is_(None) if cell is None else im.c.cell_id == cell.id


def _set_cell(
    ctx: RunContext, mappings: Sequence[Mapping], target_id: int, cell: Cell | None
) -> None:
    """Point the mappings at their instance's cell, if nobody changed them meanwhile."""
    api = ctx.engines.api
    im = table(api, "instance_mappings")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    update = (
        sa.update(im)
        .where(im.c.id.in_([m.id for m in mappings]), _still_same_cell(im, cell))
        .values(cell_id=target_id, updated_at=now)
    )
    retry_transaction(
        api,
        statement(update),
        ctx.db_retry_policy(),
    )


def _delete_orphans(ctx: RunContext, mappings: Sequence[Mapping], cell: Cell | None) -> None:
    """Delete orphaned mappings with their request specs and group memberships."""
    if mappings:
        retry_transaction(
            ctx.engines.api,
            lambda conn: _delete_orphans_in(conn, mappings, cell),
            ctx.db_retry_policy(),
        )


def _delete_orphans_in(conn: Connection, mappings: Sequence[Mapping], cell: Cell | None) -> None:
    """Delete the orphans still orphaned, in the caller's transaction."""
    api = conn.engine
    im = table(api, "instance_mappings")
    br = table(api, "build_requests")
    building = sa.select(br.c.id).where(br.c.instance_uuid == im.c.instance_uuid).exists()
    still = sa.select(im.c.id, im.c.instance_uuid).where(
        im.c.id.in_([m.id for m in mappings]), _still_same_cell(im, cell), ~building
    )
    rows = list(conn.execute(still.with_for_update()))
    if not rows:
        return
    uuids = [r.instance_uuid for r in rows]
    for name in ("instance_group_member", "request_specs"):
        child = table(api, name)
        conn.execute(sa.delete(child).where(child.c.instance_uuid.in_(uuids)))
    conn.execute(sa.delete(im).where(im.c.id.in_([r.id for r in rows])))


def _where(cell: Cell | None) -> str:
    return f"cell {cell.label}" if cell else "no cell"


def _move_finding(ctx: RunContext, cell: Cell | None, m: Mapping, home: Cell) -> Finding:
    status = Status.FIXED if ctx.heal else Status.WOULD_FIX
    verb = "set" if ctx.heal else "would set"
    return Finding(
        kind="instance",
        object_id=m.instance_uuid,
        cell=home.label,
        problem=f"instance mapping points to {_where(cell)} but the instance is in {home.label}",
        action=f"{verb} the mapping's cell to {home.label}",
        status=status,
        fix=None if ctx.heal else FIX,
    )


def _orphan_finding(ctx: RunContext, cell: Cell | None, m: Mapping) -> Finding:
    status = Status.FIXED if ctx.heal else Status.WOULD_FIX
    verb = "deleted" if ctx.heal else "would delete"
    return Finding(
        kind="instance",
        object_id=m.instance_uuid,
        cell=cell.label if cell else None,
        problem=f"instance mapping ({_where(cell)}) has no instance in any cell",
        action=f"{verb} the mapping, its request spec and group memberships",
        status=status,
        fix=None if ctx.heal else FIX,
    )


def _ambiguous_finding(cell: Cell | None, m: Mapping, homes: Sequence[Cell]) -> Finding:
    names = ", ".join(c.label for c in homes)
    return Finding(
        kind="instance",
        object_id=m.instance_uuid,
        cell=cell.label if cell else None,
        problem=f"instance exists in several cells ({names}); mapping points to {_where(cell)}",
        action="left unchanged: only an operator can tell which copy is real",
        status=Status.MUST_NOT_FIX,
        fix=f"nova-manage cell_v2 verify_instance --uuid {m.instance_uuid}, then remove the "
        "stale copy",
    )


def _undecided_finding(cell: Cell | None, m: Mapping, where: Whereabouts) -> Finding:
    names = ", ".join(c.label for c in where.unreachable)
    return Finding(
        kind="instance",
        object_id=m.instance_uuid,
        cell=cell.label if cell else None,
        problem=f"instance not found in the cells that answered; {names} did not answer",
        action="left unchanged: cannot tell an orphan from an instance in an unreachable cell",
        status=Status.FAILED,
        fix=f"make {names} reachable, then rerun heal_instance_mappings",
    )
