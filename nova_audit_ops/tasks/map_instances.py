"""map_instances: create the missing instance mappings of a cell's instances.

What `nova-manage cell_v2 map_instances --cell_uuid` does, set-based: per
keyset batch of instances (by id, deleted ones included, as Nova does) one
query on the cell, one on the API database for the mappings that exist, and
one multi-row insert for the rest — instead of an INSERT per instance.

Differences from Nova, on purpose:
- `queued_for_delete` is true for deleted and soft-deleted instances (Nova
  always writes false, which makes quota counting treat them as live);
- the resume marker is kept per cell in nova-audit's state store, not as a
  fake `instance_mappings` row; Nova's marker row is never created, deleted
  or mistaken for an instance.

Crash safety: each batch inserts in one transaction and the marker is saved
after the commit, so a killed run repeats at most one batch, and a repeated
batch finds its mappings already there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError

from nova_audit_ops.clients.db_retry import retry_transaction, statement
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.paging import keyset_pages, resume_point, walk
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.instances import is_queued_for_delete
from nova_audit_ops.nova.schema import table
from nova_audit_ops.settings.access import INSERT, DbAccess
from nova_audit_ops.settings.spec import RangeSupport, TaskSpec
from nova_audit_ops.settings.throttles import REPLICA_PACED

SPEC = TaskSpec(
    name="map_instances",
    family="cells",
    summary="Create missing instance mappings for every instance of a cell.",
    knobs=(*REPLICA_PACED,),
    api_tables=DbAccess(reads=("instance_mappings",), writes={"instance_mappings": (INSERT,)}),
    cell_tables=DbAccess(reads=("instances",)),
    defaults={"schedule": "@daily", "batch_size": 1000},
    ranges=RangeSupport("instances"),  # deleted rows too, as the walk maps them
)


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    """Map this cell's unmapped instances (audit mode only lists them)."""
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    engine = ctx.engines.cell(cell)
    start = resume_point(ctx, cell.uuid)
    if start:
        report.details[f"resumed_after_{cell.label}"] = start
    pages = keyset_pages(
        engine,
        lambda last: _instances_after(engine, last),
        ctx.options["batch_size"],
        start,
        ctx.range_hi,
    )
    walk(ctx, report, cell.uuid, cell.label, pages, lambda p: _map_batch(ctx, cell, p.rows, report))
    return report


def _instances_after(engine: Engine, last: int) -> sa.Select:
    """Every instance row after id `last`, deleted ones too (as Nova maps them)."""
    instances = table(engine, "instances")
    columns = [
        instances.c.id,
        instances.c.uuid,
        instances.c.project_id,
        instances.c.user_id,
        instances.c.deleted,
        instances.c.vm_state,
    ]
    return sa.select(*columns).where(instances.c.id > last).order_by(instances.c.id)


def _map_batch(ctx: RunContext, cell: Cell, rows: Sequence[Row], report: Report) -> None:
    mapped = _mapped_uuids(ctx.engines.api, [r.uuid for r in rows if r.uuid])
    missing = [r for r in rows if r.uuid and r.uuid not in mapped]
    for row in (r for r in rows if not r.uuid or not r.project_id):
        report.add(_malformed(cell, row))
    missing = [r for r in missing if r.project_id]
    if not missing:
        return
    if not ctx.heal:
        for row in missing:
            report.add(_finding(cell, row, Status.WOULD_FIX))
        return
    values = [_mapping_values(cell, row) for row in missing]
    try:
        im = table(ctx.engines.api, "instance_mappings")
        retry_transaction(
            ctx.engines.api,
            statement(sa.insert(im), values),
            ctx.db_retry_policy(),
        )
    except IntegrityError:
        _insert_one_by_one(ctx, cell, missing, report)
        return
    for row in missing:
        report.add(_finding(cell, row, Status.FIXED))


def _insert_one_by_one(ctx: RunContext, cell: Cell, rows: Sequence[Row], report: Report) -> None:
    """A concurrent writer created some mappings: insert the rest one at a time."""
    im = table(ctx.engines.api, "instance_mappings")
    for row in rows:
        try:
            one = [_mapping_values(cell, row)]
            retry_transaction(
                ctx.engines.api,
                statement(sa.insert(im), one),
                ctx.db_retry_policy(),
            )
        except IntegrityError:
            continue  # mapped meanwhile: nothing left to do for it
        report.add(_finding(cell, row, Status.FIXED))


def _mapped_uuids(api: Engine, uuids: Sequence[str]) -> set[str]:
    if not uuids:
        return set()
    im = table(api, "instance_mappings")
    with api.connect() as conn:
        query = sa.select(im.c.instance_uuid).where(im.c.instance_uuid.in_(uuids))
        return set(conn.execute(query).scalars())


def _mapping_values(cell: Cell, row: Row) -> dict[str, Any]:
    return {
        "instance_uuid": row.uuid,
        "cell_id": cell.id,
        "project_id": row.project_id,
        "user_id": row.user_id,
        "queued_for_delete": is_queued_for_delete(row.deleted, row.vm_state),
        "created_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
    }


def _finding(cell: Cell, row: Row, status: Status) -> Finding:
    verb = "created" if status is Status.FIXED else "would create"
    state = "deleted " if row.deleted else ""
    return Finding(
        kind="instance",
        object_id=row.uuid,
        cell=cell.label,
        problem=f"{state}instance has no instance mapping",
        action=f"{verb} instance mapping to cell {cell.label}",
        status=status,
        fix=None if status is Status.FIXED else "nova-audit run map_instances --mode heal",
    )


def _malformed(cell: Cell, row: Row) -> Finding:
    return Finding(
        kind="instance",
        object_id=row.uuid or f"instances.id={row.id}",
        cell=cell.label,
        problem="instance row has no uuid or no project_id",
        action="left unmapped: a mapping needs both",
        status=Status.FAILED,
        fix="repair the instance row in the cell database",
    )
