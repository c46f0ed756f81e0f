"""orphaned_allocations: Placement consumers on compute nodes that Nova does not know.

A consumer holding Nova resource classes on a compute node's provider tree is
expected when it is a live instance on that node, an in-progress migration
touching the node, an instance whose in-progress migration touches the node
(a resize's destination), or a build in flight (a `build_requests` row). Anything
else is an orphan, reported with its resources.

Deleting orphans is opt-in (`delete`) and guarded as `nova-manage placement
audit --delete` is not: a consumer is deleted only when it was seen orphaned by
an earlier run at least `grace_period` before this one (sightings are kept in
nova-audit's state store, also by audit runs), and only its part on this
provider is removed. Per cell: the providers rooted at the cell's compute
nodes. The global step judges providers rooted at no compute node of any cell.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from nova_audit_ops.clients.placement import PlacementError
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.paging import Page, resume_key, sorted_pages, walk
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.engine.state import MarkerKind
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.schema import table
from nova_audit_ops.settings.access import DbAccess, placement_role
from nova_audit_ops.settings.errors import DatabaseUnreachableError
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import TaskSpec
from nova_audit_ops.settings.throttles import API_THROTTLES

SPEC = TaskSpec(
    name="orphaned_allocations",
    family="placement",
    summary="Report (and opt-in delete) Placement allocations no instance or migration owns.",
    knobs=(
        Knob(
            "delete",
            "bool",
            False,
            "Delete orphans seen in two runs at least grace_period apart (heal mode only).",
        ),
        Knob(
            "grace_period",
            "int",
            3600,
            "Seconds between the first and a later sighting before an orphan may be deleted.",
            minimum=60,
            maximum=30 * 24 * 3600,
        ),
        *API_THROTTLES,
    ),
    api_tables=DbAccess(reads=("build_requests",)),
    cell_tables=DbAccess(reads=("compute_nodes", "instances", "migrations")),
    roles=(placement_role(),),
    defaults={"schedule": "@hourly", "batch_size": 50},
    skips_cell0=True,
    global_step=True,
)
# The resource classes Nova allocates for instances (the set nova-manage audit checks).
NOVA_RESOURCE_CLASSES = frozenset(
    {
        "VCPU",
        "PCPU",
        "MEMORY_MB",
        "DISK_GB",
        "VGPU",
        "NET_BW_EGR_KILOBIT_PER_SEC",
        "NET_BW_IGR_KILOBIT_PER_SEC",
        "MEM_ENCRYPTION_CONTEXT",
    }
)
# Nova's "not in progress" migration statuses (migration_get_in_progress_by_host_and_node).
DONE_MIGRATION = ("confirmed", "reverted", "error", "failed", "completed", "cancelled", "done")
GLOBAL_MARKER = "providers without compute node"


@dataclass
class Node:
    """A compute node and the consumers Nova expects on its provider tree."""

    uuid: str
    host: str
    hypervisor_hostname: str
    expected: set[str] = field(default_factory=set)


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    nodes = _cell_nodes(ctx, cell)
    providers = [rp for rp in _providers(ctx) if rp["root_provider_uuid"] in nodes]
    _judge_all(
        ctx,
        report,
        cell.uuid,
        cell.label,
        providers,
        lambda batch: _expect_on_nodes(ctx, cell, nodes, batch),
    )
    return report


def run_global(ctx: RunContext, cells: Sequence[Cell]) -> Report:
    report = ctx.new_report()
    report.cells_checked.append(GLOBAL_MARKER)
    known_nodes: set[str] = set()
    for cell in cells:
        if not cell.is_cell0:
            known_nodes |= set(_cell_nodes(ctx, cell))
    providers = [rp for rp in _providers(ctx) if rp["root_provider_uuid"] not in known_nodes]
    _judge_all(
        ctx,
        report,
        "global",
        GLOBAL_MARKER,
        providers,
        lambda batch: _expect_anywhere(ctx, cells, batch),
    )
    return report


def _providers(ctx: RunContext) -> list[dict[str, Any]]:
    return ctx.placement.resource_providers()


def _cell_nodes(ctx: RunContext, cell: Cell) -> dict[str, Node]:
    engine = ctx.engines.cell(cell)
    cn = table(engine, "compute_nodes")
    query = sa.select(cn.c.uuid, cn.c.host, cn.c.hypervisor_hostname).where(cn.c.deleted == 0)
    with engine.connect() as conn:
        return {r.uuid: Node(r.uuid, r.host, r.hypervisor_hostname) for r in conn.execute(query)}


def _judge_all(
    ctx: RunContext,
    report: Report,
    key: str,
    label: str,
    providers: list[dict[str, Any]],
    expected_of: Callable[[list[dict[str, Any]]], dict[str, set[str]]],
) -> None:
    """Read allocations provider by provider; judge and act in batches of providers.

    Providers go in uuid order from the resume marker, so a run stopped by its
    budget is continued by the next one. Sightings of providers this run did not
    reach are kept; those of providers it did reach are replaced.
    """
    requests_before = ctx.placement.requests
    if providers and ctx.deadline.expired():  # nothing done: the old marker stays as it is
        report.more_work = True
        report.details["placement_requests"] = 0
        return
    previously: dict[str, str] = dict(ctx.load_marker(key, MarkerKind.SIGHTINGS) or {})
    fresh: dict[str, str] = {}
    reached: set[str] = set()

    def judge_batch(page: Page[dict[str, Any]]) -> None:
        batch = page.rows
        reached.update(rp["uuid"] for rp in batch)
        allocations = {rp["uuid"]: ctx.placement.provider_allocations(rp["uuid"]) for rp in batch}
        report.counts.examined += sum(len(a) for a in allocations.values())
        suspects = {
            (rp["uuid"], consumer): part
            for rp in batch
            for consumer, part in allocations[rp["uuid"]].items()
            if NOVA_RESOURCE_CLASSES & set(part.get("resources", {}))
        }
        expected = expected_of(batch) if suspects else {}
        for (rp_uuid, consumer), part in sorted(suspects.items()):
            if consumer in expected.get(rp_uuid, set()):
                continue
            sighting = f"{rp_uuid}/{consumer}"
            first = previously.get(sighting, ctx.reference_time.isoformat())
            fresh[sighting] = first
            _judge(ctx, report, label, rp_uuid, consumer, part, first)

    size = int(ctx.options["batch_size"])
    pages = sorted_pages(providers, lambda rp: str(rp["uuid"]), size, resume_key(ctx, key))
    walk(ctx, report, key, label, pages, judge_batch, count_rows=False)
    kept = {k: v for k, v in previously.items() if k.split("/", 1)[0] not in reached}
    ctx.save_marker(key, {**kept, **fresh} or None, MarkerKind.SIGHTINGS)
    report.details["placement_requests"] = ctx.placement.requests - requests_before


def _judge(
    ctx: RunContext,
    report: Report,
    label: str,
    rp_uuid: str,
    consumer: str,
    part: dict[str, Any],
    first_seen: str,
) -> None:
    resources = ", ".join(f"{k}={v}" for k, v in sorted(part.get("resources", {}).items()))
    problem = (
        f"consumer {consumer} holds {resources} on provider {rp_uuid} but is no instance "
        f"or in-progress migration there (first seen {first_seen})"
    )
    age = ctx.reference_time - dt.datetime.fromisoformat(first_seen)
    ripe = age.total_seconds() >= int(ctx.options["grace_period"])
    fix = f"nova-audit run orphaned_allocations --mode heal --delete (after {_grace(ctx)})"
    if not ctx.options["delete"]:
        status, action = Status.LEFT, "reported only: deletion is opt-in (delete)"
    elif not ripe:
        status, action = Status.LEFT, f"not yet deleted: waiting for a sighting {_grace(ctx)} later"
    elif not ctx.heal:
        status, action, fix = Status.WOULD_FIX, "would delete its allocations on this provider", fix
    else:
        try:
            removed = ctx.placement.remove_provider_part(consumer, rp_uuid)
            status = Status.FIXED
            action = "deleted its allocations on this provider" if removed else "already gone"
            fix = ""
        except PlacementError as exc:
            status, action = Status.FAILED, f"delete failed: {exc}"
    report.add(
        Finding("allocation", consumer, problem, action, status, cell=label, fix=fix or None)
    )


def _grace(ctx: RunContext) -> str:
    return f"{int(ctx.options['grace_period'])} s"


def _expect_on_nodes(
    ctx: RunContext, cell: Cell, nodes: dict[str, Node], batch: Iterable[dict[str, Any]]
) -> dict[str, set[str]]:
    """provider uuid -> consumers Nova expects there, for providers rooted at this cell's nodes."""
    roots = {rp["root_provider_uuid"] for rp in batch}
    pairs = {(nodes[r].host, nodes[r].hypervisor_hostname): r for r in roots}
    engine = ctx.engines.cell(cell)
    inst, mig = table(engine, "instances"), table(engine, "migrations")
    hosts = sorted({host for host, _ in pairs})
    by_node: dict[str, set[str]] = defaultdict(set)
    with engine.connect() as conn:
        query = sa.select(inst.c.uuid, inst.c.host, inst.c.node).where(
            inst.c.deleted == 0, inst.c.host.in_(hosts)
        )
        for row in conn.execute(query):
            root = pairs.get((row.host, row.node))
            if root:
                by_node[root].add(row.uuid)
        moves = sa.select(
            mig.c.uuid,
            mig.c.instance_uuid,
            mig.c.source_compute,
            mig.c.source_node,
            mig.c.dest_compute,
            mig.c.dest_node,
        ).where(
            mig.c.deleted == 0,
            ~mig.c.status.in_(DONE_MIGRATION),
            sa.or_(mig.c.source_compute.in_(hosts), mig.c.dest_compute.in_(hosts)),
        )
        for move in conn.execute(moves):
            ends = ((move.source_compute, move.source_node), (move.dest_compute, move.dest_node))
            for pair in ends:
                root = pairs.get(pair)
                if root:
                    by_node[root] |= {move.uuid, move.instance_uuid}
    building = _building(ctx)
    return {rp["uuid"]: by_node[rp["root_provider_uuid"]] | building for rp in batch}


def _expect_anywhere(
    ctx: RunContext, cells: Sequence[Cell], batch: Iterable[dict[str, Any]]
) -> dict[str, set[str]]:
    """For providers of no compute node: consumers that are live instances or migrations."""
    live: set[str] = set(_building(ctx))
    for cell in cells:
        try:
            engine = ctx.engines.cell(cell)
            inst, mig = table(engine, "instances"), table(engine, "migrations")
            with engine.connect() as conn:
                live |= set(
                    conn.execute(sa.select(inst.c.uuid).where(inst.c.deleted == 0)).scalars()
                )
                live |= set(
                    conn.execute(
                        sa.select(mig.c.uuid).where(
                            mig.c.deleted == 0, ~mig.c.status.in_(DONE_MIGRATION)
                        )
                    ).scalars()
                )
        except Exception as exc:  # any cell not answering makes "owned by nobody" unknowable
            raise DatabaseUnreachableError(
                f"cell {cell.label} cannot be queried ({type(exc).__name__}): orphans on "
                "providers without a compute node are not judged"
            ) from None
    return {rp["uuid"]: live for rp in batch}


def _building(ctx: RunContext) -> set[str]:
    """Instances being built: their allocations exist before their instance row does."""
    br = table(ctx.engines.api, "build_requests")
    with ctx.engines.api.connect() as conn:
        return set(conn.execute(sa.select(br.c.instance_uuid)).scalars())
