"""volume_attachments: Cinder attachments and Nova's volume BDMs that no longer agree.

Cinder keeps one attachment per (volume, server); Nova's block_device_mapping
names the attachment it uses. They drift when a server is deleted while Cinder
is unreachable, when a build or attach fails half-way, or when a migration is
interrupted. Found here, per cell, for the servers of that cell:

- an attachment whose server is deleted (or already archived): dangling. Heal
  mode deletes it through Cinder (`DELETE /attachments/{id}`, which also
  detaches on the backend), once two runs at least `grace_period` apart saw it.
- an attachment of a live server that Nova's BDMs do not use (none for the
  volume, or one with another attachment id): stale. Reported with Nova's own
  fix, a reboot: Nova's `_delete_dangling_bdms` removes such attachments then,
  while no guest uses the connection.
- a live server's BDM whose attachment Cinder does not have: reported, fixed
  by a reboot too (Nova then drops the BDM).

Servers in a task (building, migrating, attaching, ...) are skipped: their
attachments are in flight. The global step judges attachments whose server is
in no cell and has no instance mapping (a build request means a build in flight).
Attachments with no server (other Cinder users, such as Glance) are not Nova's.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from nova_audit_ops.clients.cinder import Attachment, CinderError
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.paging import chunks, keyset_pages
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.engine.state import MarkerKind
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.schema import table
from nova_audit_ops.nova.unknown_cells import LostMapping
from nova_audit_ops.settings.access import CINDER, DbAccess, ServiceRole
from nova_audit_ops.settings.errors import NovaAuditError
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import RangeSupport, TaskSpec
from nova_audit_ops.settings.throttles import API_THROTTLES

SPEC = TaskSpec(
    name="volume_attachments",
    family="cinder",
    summary="Dangling Cinder attachments and Nova volume BDMs whose attachment is gone.",
    knobs=(
        Knob(
            "grace_period",
            "int",
            600,
            "Seconds between the first and a later sighting before a dangling attachment "
            "of a deleted server is deleted (heal mode).",
            minimum=0,
            maximum=30 * 24 * 3600,
        ),
        *API_THROTTLES,
    ),
    api_tables=DbAccess(reads=("instance_mappings", "build_requests")),
    cell_tables=DbAccess(reads=("instances", "block_device_mapping")),
    roles=(
        ServiceRole(
            CINDER,
            "admin",
            "admin",
            "listing every project's attachments (all_tenants) needs an admin context, a "
            "reader sees its own project's only; deleting them is admin or project member",
        ),
    ),
    defaults={"schedule": "@hourly", "batch_size": 1000},
    global_step=True,
    # a batch judges the servers in its instances.id range; the last (open) one also
    # the archived servers mapped to the cell, which have no id any more
    ranges=RangeSupport("instances"),
)
GLOBAL_LABEL = "servers in no cell"
REBOOT_FIX = (
    "check `openstack server volume list {server}`; a reboot of the server "
    "(`openstack server reboot {server}`) makes Nova drop the attachments it does not use"
)


@dataclass(frozen=True)
class Server:
    uuid: str
    deleted: bool
    busy: bool  # building, or in a task: its attachments may be in flight


def _attachments(ctx: RunContext) -> list[Attachment]:
    """Cinder's attachments that belong to a server, read once per process."""
    if ctx.memos.attachments is None:
        found = ctx.cinder.list_attachments()
        ctx.memos.attachments = [a for a in found if a.instance_uuid]
    return ctx.memos.attachments


def _servers(
    ctx: RunContext, cell: Cell, uuids: Sequence[str], in_range: bool = False
) -> dict[str, Server]:
    """The servers among `uuids` that this cell has, deleted ones included
    (`in_range`: only those in this run's id range)."""
    engine = ctx.engines.cell(cell)
    inst = table(engine, "instances")
    found: dict[str, Server] = {}
    with engine.connect() as conn:
        for chunk in chunks(uuids, int(ctx.options["batch_size"])):
            query = sa.select(inst.c.uuid, inst.c.deleted, inst.c.vm_state, inst.c.task_state)
            if in_range:
                query = query.where(*ctx.range_bounds(inst.c.id))
            for row in conn.execute(query.where(inst.c.uuid.in_(chunk))):
                found[row.uuid] = Server(
                    row.uuid,
                    deleted=bool(row.deleted),
                    busy=row.task_state is not None or row.vm_state == "building",
                )
    return found


def _mapped_cells(ctx: RunContext, uuids: Sequence[str]) -> dict[str, int | None]:
    """instance uuid -> cell id (None: mapping without a cell) for mapped servers."""
    im = table(ctx.engines.api, "instance_mappings")
    mapped: dict[str, int | None] = {}
    with ctx.engines.api.connect() as conn:
        for chunk in chunks(uuids, int(ctx.options["batch_size"])):
            query = sa.select(im.c.instance_uuid, im.c.cell_id).where(im.c.instance_uuid.in_(chunk))
            mapped.update({r.instance_uuid: r.cell_id for r in conn.execute(query)})
    return mapped


def _archived(ctx: RunContext, cell: Cell, uuids: Sequence[str]) -> set[str]:
    """Servers mapped to `cell` that no cell has (archived), or none if a cell cannot say.

    A mapping can point at the wrong cell; a server found in another cell is that
    cell's to judge, and an unreadable cell leaves every such server unjudged.
    """
    missing = set(uuids)
    for other in ctx.all_cells():
        if not missing or other.id == cell.id:
            continue
        try:
            missing -= set(_servers(ctx, other, sorted(missing)))
        except (SQLAlchemyError, NovaAuditError):
            ctx.log.warning("cell %s cannot be read: archived servers not judged", other.label)
            return set()
    return missing


def _volume_bdms(ctx: RunContext, cell: Cell, uuids: Sequence[str]) -> dict[tuple[str, str], set]:
    """(server, volume) -> attachment ids of the live volume BDMs of these servers."""
    engine = ctx.engines.cell(cell)
    bdm = table(engine, "block_device_mapping")
    found: dict[tuple[str, str], set] = defaultdict(set)
    with engine.connect() as conn:
        for chunk in chunks(uuids, int(ctx.options["batch_size"])):
            query = sa.select(bdm.c.instance_uuid, bdm.c.volume_id, bdm.c.attachment_id).where(
                bdm.c.deleted == 0,
                bdm.c.destination_type == "volume",
                bdm.c.volume_id.is_not(None),
                bdm.c.instance_uuid.in_(chunk),
            )
            for row in conn.execute(query):
                found[(row.instance_uuid, row.volume_id)].add(row.attachment_id)
    return found


# --------------------------------------------------------------------------- per cell


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    """Judge the attachments of this cell's servers, and its live servers' volume BDMs."""
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    attachments = _attachments(ctx)
    uuids = sorted({a.instance_uuid for a in attachments if a.instance_uuid})
    servers = _servers(ctx, cell, uuids, in_range=True)
    archived: set[str] = set()
    if ctx.range_hi is None:  # archived servers belong to the open (last) range
        known = set(_servers(ctx, cell, uuids)) if ctx.batched else set(servers)
        mapped = _mapped_cells(ctx, [u for u in uuids if u not in known])
        archived = _archived(ctx, cell, [u for u, c in mapped.items() if c == cell.id])
    ours = [a for a in attachments if a.instance_uuid in servers or a.instance_uuid in archived]
    live = sorted(u for u, s in servers.items() if not s.deleted)
    bdms = _volume_bdms(ctx, cell, live)
    dangling: list[tuple[Attachment, str]] = []
    for attachment in ours:
        report.counts.examined += 1
        server = servers.get(attachment.instance_uuid or "")
        if server is None:
            dangling.append((attachment, "its server was deleted and archived"))
        elif server.deleted:
            dangling.append((attachment, "its server is deleted"))
        elif server.busy:
            report.counts.skipped += 1
        else:
            _judge_live(report, cell, attachment, bdms)
    _judge_dangling(ctx, report, cell.uuid, cell.label, dangling)
    _missing_in_cinder(ctx, report, cell, attachments)
    return report


def _judge_live(
    report: Report, cell: Cell, attachment: Attachment, bdms: dict[tuple[str, str], set]
) -> None:
    server = attachment.instance_uuid or ""
    used = bdms.get((server, attachment.volume_id))
    if used and (attachment.id in used or None in used):
        return  # in use; a BDM without attachment id was attached the legacy way (os-attach)
    if used:
        problem = (
            f"attachment {attachment.id} of volume {attachment.volume_id} to server {server} "
            f"is stale: Nova uses attachment {', '.join(sorted(str(u) for u in used))}"
        )
    else:
        problem = (
            f"attachment {attachment.id} attaches volume {attachment.volume_id} to server "
            f"{server}, but Nova has no block device mapping for that volume"
        )
    report.add(
        Finding(
            kind="attachment",
            object_id=attachment.id,
            cell=cell.label,
            problem=problem,
            action="nothing: the server is live, Nova removes it on reboot",
            status=Status.LEFT,
            fix=REBOOT_FIX.format(server=server),
        )
    )


def _missing_in_cinder(
    ctx: RunContext, report: Report, cell: Cell, attachments: list[Attachment]
) -> None:
    """Live, idle servers' volume BDMs naming an attachment Cinder does not have."""
    known = {a.id for a in attachments}
    engine = ctx.engines.cell(cell)
    bdm, inst = table(engine, "block_device_mapping"), table(engine, "instances")
    query = (
        sa.select(bdm.c.id, bdm.c.instance_uuid, bdm.c.volume_id, bdm.c.attachment_id)
        .join(inst, inst.c.uuid == bdm.c.instance_uuid)
        .where(
            bdm.c.deleted == 0,
            bdm.c.destination_type == "volume",
            bdm.c.attachment_id.is_not(None),
            inst.c.deleted == 0,
            inst.c.task_state.is_(None),
            inst.c.vm_state != "building",
            *ctx.range_bounds(inst.c.id),
        )
        .order_by(bdm.c.id)
    )
    size = int(ctx.options["batch_size"])
    for page in keyset_pages(engine, lambda last: query.where(bdm.c.id > last), size, 0):
        report.counts.examined += len(page.rows)
        for row in page.rows:
            if row.attachment_id in known:
                continue
            report.add(
                Finding(
                    kind="bdm",
                    object_id=row.instance_uuid,
                    cell=cell.label,
                    problem=f"server {row.instance_uuid} has volume {row.volume_id} on "
                    f"attachment {row.attachment_id}, which Cinder does not have",
                    action="nothing: Nova drops the mapping on the server's next reboot",
                    status=Status.LEFT,
                    fix=f"if the volume is gone, `openstack server reboot "
                    f"{row.instance_uuid}`; if it exists, `nova-manage volume_attachment "
                    f"refresh {row.instance_uuid} {row.volume_id} <connector file>`",
                )
            )


# --------------------------------------------------------------------------- dangling


def _judge_dangling(
    ctx: RunContext,
    report: Report,
    key: str,
    label: str,
    dangling: list[tuple[Attachment, str]],
) -> None:
    """Delete (heal, second sighting) or report attachments of servers that are gone."""
    previously: dict[str, str] = dict(ctx.load_marker(key, MarkerKind.SIGHTINGS) or {})
    fresh: dict[str, str] = {}
    for attachment, why in dangling:
        first = previously.get(attachment.id, ctx.reference_time.isoformat())
        fresh[attachment.id] = first
        status, action = _act(ctx, report, key, label, attachment, first)
        if status is Status.FIXED:
            fresh.pop(attachment.id)
        report.add(
            Finding(
                kind="attachment",
                object_id=attachment.id,
                cell=label,
                problem=f"attachment {attachment.id} ({attachment.status}) of volume "
                f"{attachment.volume_id} is dangling: {why} (server {attachment.instance_uuid}, "
                f"first seen {first})",
                action=action,
                status=status,
                fix=None
                if status is Status.FIXED
                else "nova-audit run volume_attachments --mode heal (after the grace period)",
            )
        )
    ctx.save_marker(key, fresh or None, MarkerKind.SIGHTINGS)


def _act(
    ctx: RunContext, report: Report, key: str, label: str, attachment: Attachment, first_seen: str
) -> tuple[Status, str]:
    grace = int(ctx.options["grace_period"])
    age = ctx.reference_time - dt.datetime.fromisoformat(first_seen)
    if age.total_seconds() < grace:
        return Status.LEFT, f"not yet deleted: waiting for a sighting {grace} s after the first"
    if not ctx.heal:
        return Status.WOULD_FIX, "would delete it through Cinder"
    if not ctx.pacer.before_batch(report, key, label):  # the throttles reach the deadline
        report.more_work = True
        return Status.LEFT, "not deleted: the run's deadline came before its turn"
    try:
        gone = not ctx.cinder.delete_attachment(attachment.id)
    except CinderError as exc:
        return Status.FAILED, f"Cinder refused the delete: {exc}"
    finally:
        ctx.pacer.batch_done(1)
    return Status.FIXED, "already gone" if gone else "deleted through Cinder"


# --------------------------------------------------------------------------- global


def run_global(ctx: RunContext, cells: Sequence[Cell]) -> Report:
    """Attachments whose server no cell has and no instance mapping names."""
    report = ctx.new_report()
    report.cells_checked.append(GLOBAL_LABEL)
    attachments = _attachments(ctx)
    uuids = sorted({a.instance_uuid for a in attachments if a.instance_uuid})
    mapped = _mapped_cells(ctx, uuids)
    unmapped = [u for u in uuids if mapped.get(u) is None]
    building = _build_requests(ctx, unmapped)
    candidates = [u for u in unmapped if u not in building]
    known = {c.id for c in cells}
    lost = [LostMapping(u, c) for u, c in mapped.items() if c is not None and c not in known]
    for cell in cells:
        if candidates or lost:
            found = _servers(ctx, cell, candidates + [m.instance_uuid for m in lost])
            candidates = [u for u in candidates if u not in found]
            lost = [m for m in lost if m.instance_uuid not in found]  # judged by that cell
    _report_lost(report, lost, attachments)
    orphaned = set(candidates)
    dangling = []
    for attachment in attachments:
        if attachment.instance_uuid in orphaned:
            report.counts.examined += 1
            dangling.append((attachment, "no cell has its server and no instance mapping names it"))
    _judge_dangling(ctx, report, "global", GLOBAL_LABEL, dangling)
    return report


def _report_lost(
    report: Report, lost: Sequence[LostMapping], attachments: Sequence[Attachment]
) -> None:
    """Servers in no cell whose mapping names a cell that is gone: left, said once each."""
    for mapping in lost:
        ids = sorted(a.id for a in attachments if a.instance_uuid == mapping.instance_uuid)
        report.counts.examined += 1
        report.add(
            Finding(
                kind="instance",
                object_id=mapping.instance_uuid,
                cell=GLOBAL_LABEL,
                problem=f"{mapping.problem}, and no cell has the server: its attachment(s) "
                f"{', '.join(ids)} are not judged",
                action="skipped: the server may live in the missing cell",
                status=Status.LEFT,
                fix=mapping.fix,
            )
        )


def _build_requests(ctx: RunContext, uuids: Sequence[str]) -> set[str]:
    br = table(ctx.engines.api, "build_requests")
    found: set[str] = set()
    with ctx.engines.api.connect() as conn:
        for chunk in chunks(uuids, int(ctx.options["batch_size"])):
            query = sa.select(br.c.instance_uuid).where(br.c.instance_uuid.in_(chunk))
            found.update(conn.execute(query).scalars())
    return found
