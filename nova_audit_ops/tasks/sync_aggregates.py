"""sync_aggregates: Nova host aggregates mirrored as resource provider aggregates.

Like `nova-manage placement sync_aggregates`, missing memberships are added
(with provider generations, re-read and retried on conflict). Beyond it:
memberships Placement has for a Nova aggregate's uuid but Nova does not are
reported, and removed only when `remove_extra` is on; one bad host never stops
the run (Nova returns at the first host with several compute nodes); and
Placement is asked once per aggregate (`member_of`) instead of once per host.

Per cell: the hosts mapped to the cell and its compute nodes. The global step
reports aggregate hosts that have no host mapping (run discover_hosts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from nova_audit_ops.clients.placement import PlacementError
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.schema import table
from nova_audit_ops.settings.access import DbAccess, placement_role
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import TaskSpec

SPEC = TaskSpec(
    name="sync_aggregates",
    family="placement",
    summary="Mirror Nova host aggregates into Placement provider aggregates.",
    knobs=(
        Knob(
            "remove_extra",
            "bool",
            False,
            "Also remove providers from Nova aggregates their host is not in (heal mode).",
        ),
    ),
    api_tables=DbAccess(reads=("aggregates", "aggregate_hosts", "host_mappings")),
    cell_tables=DbAccess(reads=("compute_nodes",)),
    roles=(placement_role(),),
    defaults={"schedule": "@hourly"},
    skips_cell0=True,
    global_step=True,
)
GLOBAL_MARKER = "unmapped hosts"


@dataclass(frozen=True)
class Aggregate:
    uuid: str
    name: str


def _aggregates(ctx: RunContext) -> dict[str, Aggregate]:
    """Every Nova aggregate by uuid."""
    agg = table(ctx.engines.api, "aggregates")
    with ctx.engines.api.connect() as conn:
        rows = conn.execute(sa.select(agg.c.uuid, agg.c.name).order_by(agg.c.id)).all()
    return {r.uuid: Aggregate(r.uuid, r.name or "") for r in rows if r.uuid}


def _aggregate_hosts(ctx: RunContext, cell: Cell | None) -> dict[str, set[str]]:
    """host -> aggregate uuids, for hosts mapped to `cell` (None: hosts with no mapping)."""
    api = ctx.engines.api
    agg, ah, hm = (
        table(api, "aggregates"),
        table(api, "aggregate_hosts"),
        table(api, "host_mappings"),
    )
    query = sa.select(ah.c.host, agg.c.uuid).join(agg, agg.c.id == ah.c.aggregate_id)
    query = query.join(hm, hm.c.host == ah.c.host, isouter=cell is None)
    query = query.where(hm.c.cell_id == cell.id) if cell else query.where(hm.c.id.is_(None))
    hosts: dict[str, set[str]] = defaultdict(set)
    with api.connect() as conn:
        for row in conn.execute(query):
            hosts[row.host].add(row.uuid)
    return hosts


def _compute_nodes(
    ctx: RunContext, cell: Cell
) -> tuple[dict[str, list[str]], list[tuple[int, str]]]:
    """host -> uuids of its undeleted compute nodes (= resource provider uuids).

    Also the (id, host) of nodes with a NULL uuid, which have no provider to compare.
    """
    engine = ctx.engines.cell(cell)
    cn = table(engine, "compute_nodes")
    nodes: dict[str, list[str]] = defaultdict(list)
    nameless: list[tuple[int, str]] = []
    with engine.connect() as conn:
        query = sa.select(cn.c.id, cn.c.host, cn.c.uuid).where(cn.c.deleted == 0)
        for row in conn.execute(query.order_by(cn.c.id)):
            if row.uuid is None:
                nameless.append((row.id, row.host))
            else:
                nodes[row.host].append(row.uuid)
    return nodes, nameless


def _report_nameless(report: Report, cell: Cell, nameless: list[tuple[int, str]]) -> set[str]:
    """One skipped finding per compute node with a NULL uuid; returns their hosts."""
    for node_id, host in nameless:
        report.add(
            Finding(
                "host",
                str(host),
                f"compute node id {node_id} of host {host} in cell {cell.label} has no uuid, "
                "so its resource provider is unknown: its aggregates were not compared",
                "skipped",
                Status.LEFT,
                cell=cell.label,
                fix="restart nova-compute on the host so it sets the node's uuid, then rerun "
                "sync_aggregates",
            )
        )
    return {str(host) for _, host in nameless}


def run_global(ctx: RunContext, cells: Sequence[Cell]) -> Report:
    """Aggregate members with no host mapping: Nova cannot find their cell either."""
    report = ctx.new_report()
    report.cells_checked.append(GLOBAL_MARKER)
    aggregates = _aggregates(ctx)
    for host, uuids in sorted(_aggregate_hosts(ctx, None).items()):
        report.counts.examined += 1
        names = ", ".join(sorted(aggregates[u].name or u for u in uuids if u in aggregates))
        report.add(
            Finding(
                kind="host",
                object_id=host,
                problem=f"host {host} is in aggregate(s) {names} but has no host mapping",
                action="nothing: its compute node cannot be found without a cell",
                status=Status.LEFT,
                fix="run `nova-audit run discover_hosts --mode heal`, then rerun sync_aggregates",
            )
        )
    return report


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    """Compare this cell's hosts' aggregates with their providers' in Placement."""
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    requests_before = ctx.placement.requests
    aggregates = _aggregates(ctx)
    wanted_by_host = _aggregate_hosts(ctx, cell)
    nodes, nameless = _compute_nodes(ctx, cell)
    reported = _report_nameless(report, cell, nameless)
    node_host = {uuid: host for host, uuids in nodes.items() for uuid in uuids}
    actual: dict[str, set[str]] = defaultdict(set)
    for agg_uuid in aggregates:
        for rp in ctx.placement.providers_in_aggregate(agg_uuid) & node_host.keys():
            actual[rp].add(agg_uuid)
    wanted: dict[str, set[str]] = defaultdict(set)
    for host, uuids in sorted(wanted_by_host.items()):
        report.counts.examined += 1
        found = nodes.get(host, [])
        if host in reported and not found:
            continue
        if len(found) == 1:
            wanted[found[0]] |= uuids
        else:
            _report_bad_host(report, cell, host, len(found))
    for rp in sorted(set(wanted) | set(actual)):
        if ctx.deadline.expired():
            report.more_work = True
            break
        _sync_provider(ctx, report, cell, aggregates, node_host[rp], rp, wanted[rp], actual[rp])
    report.details["placement_requests"] = ctx.placement.requests - requests_before
    return report


def _report_bad_host(report: Report, cell: Cell, host: str, count: int) -> None:
    if count == 0:
        problem = f"host {host} is in a Nova aggregate but has no compute node in cell {cell.label}"
        fix = "restart nova-compute on the host, or remove the host from the aggregate"
    else:
        problem = (
            f"host {host} has {count} compute nodes (Ironic?): which provider belongs in its "
            "aggregates is ambiguous"
        )
        fix = (
            "add the node providers to the aggregate with "
            "`openstack resource provider aggregate set`"
        )
    report.add(Finding("host", host, problem, "nothing", Status.LEFT, cell=cell.label, fix=fix))


@dataclass(frozen=True)
class Drift:
    """How one provider's aggregates differ from its host's Nova aggregates."""

    rp: str
    host: str
    missing: set[str]
    extra: set[str]
    remove: set[str]  # the extras to remove: all of them with remove_extra, else none

    def problem(self, aggregates: dict[str, Aggregate], uuid: str) -> str:
        """What is wrong with the provider's membership of aggregate `uuid`."""
        name = aggregates[uuid].name or uuid
        where = "is missing from aggregate" if uuid in self.missing else "is in aggregate"
        return f"provider {self.rp} of host {self.host} {where} {name}"


def _sync_provider(
    ctx: RunContext,
    report: Report,
    cell: Cell,
    aggregates: dict[str, Aggregate],
    host: str,
    rp: str,
    wanted: set[str],
    actual: set[str],
) -> None:
    """Add the missing memberships of one provider (and remove extras if asked)."""
    extra = actual - wanted
    drift = Drift(rp, host, wanted - actual, extra, extra if ctx.options["remove_extra"] else set())
    if not drift.missing and not drift.extra:
        return
    try:
        if ctx.heal and (drift.missing or drift.remove):
            ctx.placement.change_provider_aggregates(
                rp, lambda now: (now | drift.missing) - drift.remove
            )
            done = True
        else:
            ctx.placement.provider_aggregates(rp)  # a read: does the provider exist?
            done = False
    except PlacementError as exc:
        _report_unwritable(report, cell, aggregates, drift, exc)
        return
    _report_memberships(report, cell, aggregates, drift, done)


def _report_unwritable(
    report: Report,
    cell: Cell,
    aggregates: dict[str, Aggregate],
    drift: Drift,
    exc: PlacementError,
) -> None:
    """Every drifted membership of a provider Placement lacks (404) or refused to change."""
    status, action = (
        (Status.LEFT, "nothing: no such resource provider")
        if exc.status == 404
        else (Status.FAILED, f"failed: {exc}")
    )
    for uuid in sorted(drift.missing | drift.extra):
        report.add(
            Finding(
                "aggregate",
                uuid,
                drift.problem(aggregates, uuid),
                action,
                status,
                cell=cell.label,
                fix="restart nova-compute on the host so it creates its provider, then rerun",
            )
        )


def _report_memberships(
    report: Report, cell: Cell, aggregates: dict[str, Aggregate], drift: Drift, done: bool
) -> None:
    """Missing memberships (added or would be) and extra ones (removed, would be, or left)."""
    for uuid in sorted(drift.missing):
        report.add(
            Finding(
                "aggregate",
                uuid,
                drift.problem(aggregates, uuid),
                "added the provider to the aggregate" if done else "would add the provider",
                Status.FIXED if done else Status.WOULD_FIX,
                cell=cell.label,
                fix=None if done else "nova-audit run sync_aggregates --mode heal",
            )
        )
    for uuid in sorted(drift.extra):
        removed = done and uuid in drift.remove
        report.add(
            Finding(
                "aggregate",
                uuid,
                f"{drift.problem(aggregates, uuid)} but Nova does not list the host there",
                "removed the provider from the aggregate"
                if removed
                else (
                    "would remove the provider" if drift.remove else "nothing: removal is opt-in"
                ),
                Status.FIXED if removed else (Status.WOULD_FIX if drift.remove else Status.LEFT),
                cell=cell.label,
                fix=None
                if removed
                else (
                    "nova-audit run sync_aggregates --mode heal --remove-extra, or add the "
                    "host to the Nova aggregate"
                ),
            )
        )
