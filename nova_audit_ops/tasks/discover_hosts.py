"""discover_hosts: map compute hosts that have no host mapping to their cell.

Same result as `nova-manage cell_v2 discover_hosts`, but set-based: one query
per batch of compute nodes in the cell, one query for their existing host
mappings, one multi-row insert, one update of `compute_nodes.mapped`. Nova reads
only nodes flagged `mapped = 0`; by default (`recheck_mapped`) this reads the
flagged ones too, so a host whose mapping was lost is found again. Writers
are serialized by a named lock on the API database, so two runs (or two cells
of one run) never collide on the unique `host_mappings.host`.

Crash safety: the host mapping is committed before `mapped` is set; a run that
dies in between leaves a node with `mapped = 0` and a mapping, which the next
run sees as "already mapped" and only sets the flag.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from nova_audit_ops.clients.db_retry import retry_transaction, statement
from nova_audit_ops.clients.locks import named_lock
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.paging import Page, keyset_pages, resume_point, walk
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.host_mappings import host_cells
from nova_audit_ops.nova.schema import table
from nova_audit_ops.settings.access import INSERT, UPDATE, DbAccess
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import TaskSpec

SPEC = TaskSpec(
    name="discover_hosts",
    family="cells",
    summary="Map compute hosts that have no host mapping to their cell.",
    knobs=(
        Knob(
            "by_service",
            "bool",
            False,
            "Discover by nova-compute service rows instead of compute nodes (Ironic).",
        ),
        Knob(
            "recheck_mapped",
            "bool",
            True,
            "Also check compute nodes already flagged mapped, so a host whose host mapping "
            "was lost (an API database restored from an older backup, a mapping deleted by "
            "hand) is found again; nova-manage never looks at them. Off: Nova's selection.",
        ),
        Knob(
            "lock_timeout",
            "int",
            60,
            "Seconds to wait for another run's lock on the API database.",
            minimum=0,
            maximum=3600,
            rerun=False,
        ),
    ),
    api_tables=DbAccess(
        reads=("cell_mappings", "host_mappings"), writes={"host_mappings": (INSERT,)}
    ),
    cell_tables=DbAccess(reads=("compute_nodes", "services"), writes={"compute_nodes": (UPDATE,)}),
    defaults={"schedule": "*/10 * * * *", "batch_size": 500},
    skips_cell0=True,  # cell0 holds no compute hosts (nova-manage skips it too)
)

FIX_OTHER_CELL = (
    "check which cell this host's nova-compute reports to; if the mapping is stale run "
    "`nova-manage cell_v2 delete_host --cell_uuid {cell_uuid} --host {host}`, then rerun "
    "discover_hosts"
)


@dataclass(frozen=True)
class Candidate:
    """A compute host in this cell that may need mapping, with its node ids."""

    host: str
    node_ids: tuple[int, ...]  # empty when discovering by service
    unflagged: tuple[int, ...] = ()  # the node ids still at compute_nodes.mapped = 0

    @property
    def flagged(self) -> bool:
        """Every node says mapped: only a lost host mapping brings it here."""
        return bool(self.node_ids) and not self.unflagged


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    """Find (and in heal mode map) this cell's compute hosts that have no mapping."""
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    cell_engine = ctx.engines.cell(cell)
    if ctx.heal:
        lock = named_lock(ctx.engines.api, "discover_hosts", ctx.options["lock_timeout"])
        with lock:
            _walk(ctx, cell, cell_engine, report)
    else:
        _walk(ctx, cell, cell_engine, report)
    return report


def _walk(ctx: RunContext, cell: Cell, cell_engine: Engine, report: Report) -> None:
    """Page through the cell from the saved marker; save it when stopping early."""
    if ctx.options["by_service"]:
        query = _services_after
    elif ctx.options["recheck_mapped"]:
        query = _nodes_after
    else:
        query = _unmapped_nodes_after
    pages = keyset_pages(
        cell_engine,
        lambda last: query(cell_engine, last),
        ctx.options["batch_size"],
        resume_point(ctx, cell.uuid),
    )
    walk(
        ctx,
        report,
        cell.uuid,
        cell.label,
        pages,
        lambda page: _handle_batch(ctx, cell, cell_engine, _candidates(page), report),
    )


def _nodes_after(engine: Engine, last: int) -> sa.Select:
    """Undeleted compute nodes after id `last`, flagged mapped or not."""
    cn = table(engine, "compute_nodes")
    return (
        sa.select(cn.c.id, cn.c.host, cn.c.mapped)
        .where(cn.c.deleted == 0, cn.c.id > last)
        .order_by(cn.c.id)
    )


def _unmapped_nodes_after(engine: Engine, last: int) -> sa.Select:
    """Unmapped, undeleted compute nodes after id `last` (Nova's own selection)."""
    cn = table(engine, "compute_nodes")
    return (
        sa.select(cn.c.id, cn.c.host, cn.c.mapped)
        .where(cn.c.deleted == 0, cn.c.mapped < 1, cn.c.id > last)
        .order_by(cn.c.id)
    )


def _services_after(engine: Engine, last: int) -> sa.Select:
    """Undeleted nova-compute services after id `last` (Nova's --by-service)."""
    services = table(engine, "services")
    return (
        sa.select(services.c.id, services.c.host, sa.literal(True).label("is_service"))
        .where(
            services.c.deleted == 0,
            services.c.binary == "nova-compute",
            services.c.id > last,
        )
        .order_by(services.c.id)
    )


def _candidates(page: Page) -> list[Candidate]:
    """Group a page's rows by host; service rows carry no node ids."""
    nodes: dict[str, list[int]] = defaultdict(list)
    unflagged: dict[str, list[int]] = defaultdict(list)
    for row in page.rows:
        ids = nodes[row.host or ""]
        if "is_service" not in row._fields:
            ids.append(row.id)
            if (row.mapped or 0) < 1:
                unflagged[row.host or ""].append(row.id)
    return [
        Candidate(host, tuple(ids), tuple(unflagged.get(host, ()))) for host, ids in nodes.items()
    ]


def _handle_batch(
    ctx: RunContext, cell: Cell, cell_engine: Engine, batch: Sequence[Candidate], report: Report
) -> None:
    bad = [c for c in batch if not c.host]
    for candidate in bad:
        report.add(_no_host_finding(cell, candidate))
    batch = [c for c in batch if c.host]
    existing = host_cells(ctx.engines.api, [c.host for c in batch])
    to_create = [c for c in batch if c.host not in existing]
    mapped_here = [c for c in batch if existing.get(c.host) == cell.id]
    # A flagged node of a host mapped elsewhere is a stale row, not a host to discover.
    elsewhere = [
        c for c in batch if c.host in existing and existing[c.host] != cell.id and not c.flagged
    ]
    for candidate in elsewhere:
        report.add(_other_cell_finding(ctx, cell, candidate, existing[candidate.host]))
    created = _create_mappings(ctx, cell, to_create, report) if ctx.heal else set()
    if not ctx.heal:
        for candidate in to_create:
            report.add(_mapping_finding(cell, candidate, Status.WOULD_FIX))
    flag_only = [c for c in mapped_here if c.unflagged]
    if ctx.heal:
        done = [c for c in to_create if c.host in created] + flag_only
        _set_mapped(ctx, cell_engine, [i for c in done for i in c.unflagged])
        for candidate in flag_only:
            report.add(_flag_finding(cell, candidate, Status.FIXED))
    else:
        for candidate in flag_only:
            report.add(_flag_finding(cell, candidate, Status.WOULD_FIX))


def _create_mappings(
    ctx: RunContext, cell: Cell, candidates: Sequence[Candidate], report: Report
) -> set[str]:
    """Insert the host mappings in one statement; on a race, fall back host by host."""
    if not candidates:
        return set()
    hm = table(ctx.engines.api, "host_mappings")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    rows = [{"host": c.host, "cell_id": cell.id, "created_at": now} for c in candidates]
    try:
        retry_transaction(
            ctx.engines.api,
            statement(sa.insert(hm), rows),
            ctx.db_retry_policy(),
        )
    except IntegrityError:
        return _create_one_by_one(ctx, cell, candidates, report)
    for candidate in candidates:
        report.add(_mapping_finding(cell, candidate, Status.FIXED))
    return {c.host for c in candidates}


def _create_one_by_one(
    ctx: RunContext, cell: Cell, candidates: Sequence[Candidate], report: Report
) -> set[str]:
    """Someone else (nova-scheduler's periodic discovery?) mapped hosts meanwhile."""
    hm = table(ctx.engines.api, "host_mappings")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    created: set[str] = set()
    for candidate in candidates:
        try:
            one = [{"host": candidate.host, "cell_id": cell.id, "created_at": now}]
            retry_transaction(
                ctx.engines.api,
                statement(sa.insert(hm), one),
                ctx.db_retry_policy(),
            )
        except IntegrityError:
            owner = host_cells(ctx.engines.api, [candidate.host]).get(candidate.host)
            if owner == cell.id:
                created.add(candidate.host)
                if candidate.unflagged:
                    report.add(_flag_finding(cell, candidate, Status.FIXED))
            else:
                report.add(_other_cell_finding(ctx, cell, candidate, owner))
            continue
        created.add(candidate.host)
        report.add(_mapping_finding(cell, candidate, Status.FIXED))
    return created


def _set_mapped(ctx: RunContext, cell_engine: Engine, node_ids: Sequence[int]) -> None:
    """Flag the compute nodes mapped (one transaction, retried after a transient fault)."""
    if not node_ids:
        return
    cn = table(cell_engine, "compute_nodes")
    update = sa.update(cn).where(cn.c.id.in_(node_ids)).values(mapped=1)
    retry_transaction(
        cell_engine,
        lambda conn: conn.execute(update),
        ctx.db_retry_policy(),
    )


def _mapping_finding(cell: Cell, candidate: Candidate, status: Status) -> Finding:
    verb = "created" if status is Status.FIXED else "would create"
    flag = " and set compute_nodes.mapped = 1" if candidate.unflagged else ""
    problem = f"compute host {candidate.host} has no host mapping"
    if candidate.flagged:
        problem += (
            " although its compute nodes are flagged mapped (a lost mapping: "
            "`nova-manage cell_v2 discover_hosts` skips such nodes)"
        )
    return Finding(
        kind="host",
        object_id=candidate.host,
        cell=cell.label,
        problem=problem,
        action=f"{verb} host mapping to cell {cell.label}{flag}",
        status=status,
        fix=None if status is Status.FIXED else "nova-audit run discover_hosts --mode heal",
    )


def _flag_finding(cell: Cell, candidate: Candidate, status: Status) -> Finding:
    verb = "set" if status is Status.FIXED else "would set"
    return Finding(
        kind="host",
        object_id=candidate.host,
        cell=cell.label,
        problem=(
            f"host {candidate.host} is mapped to cell {cell.label} but compute_nodes.mapped = 0"
        ),
        action=f"{verb} compute_nodes.mapped = 1",
        status=status,
        fix=None if status is Status.FIXED else "nova-audit run discover_hosts --mode heal",
    )


def _other_cell_finding(
    ctx: RunContext, cell: Cell, candidate: Candidate, other_cell_id: int | None
) -> Finding:
    other = _cell_uuid(ctx, other_cell_id)
    return Finding(
        kind="host",
        object_id=candidate.host,
        cell=cell.label,
        problem=(
            f"host {candidate.host} has a compute node in cell {cell.label} but is mapped "
            f"to cell {other}"
        ),
        action="left unchanged: a host belongs to one cell",
        status=Status.MUST_NOT_FIX,
        fix=FIX_OTHER_CELL.format(cell_uuid=other, host=candidate.host),
    )


def _no_host_finding(cell: Cell, candidate: Candidate) -> Finding:
    ids = ", ".join(map(str, candidate.node_ids)) or "?"
    return Finding(
        kind="host",
        object_id=f"compute_nodes.id={ids}",
        cell=cell.label,
        problem="compute node row has no host name",
        action="left unchanged: cannot map a host without a name",
        status=Status.FAILED,
        fix="repair or delete the compute node row in the cell database",
    )


def _cell_uuid(ctx: RunContext, cell_id: int | None) -> str:
    cm = table(ctx.engines.api, "cell_mappings")
    with ctx.engines.api.connect() as conn:
        uuid = conn.execute(sa.select(cm.c.uuid).where(cm.c.id == cell_id)).scalar()
    return str(uuid or f"id {cell_id}")
