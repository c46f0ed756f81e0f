"""heal_allocations: instances whose allocations Placement lacks, or holds for someone else.

Eligibility is Nova's (`nova-manage placement heal_allocations`): undeleted
instances of a cell (cell0 skipped) that are on a node and in no task state.
Unlike Nova, which asks Placement once per instance, a batch reads the
allocations of each compute node provider once (`GET
/resource_providers/{uuid}/allocations`) and asks about single consumers only
when one is missing there. Missing allocations are created from the flavor
against the node's provider, with the instance's project and user; a consumer
generation conflict re-reads and retries. Instances Nova would not heal either
(VGPU, Cyborg device profiles, port resource requests, mixed CPU policy) are
findings with the command to run, never silent skips; so is an idle instance
with no node (skipped, as Nova's "is not on a host"), unless shelved-offloaded.

Wrong owners (allocations under another project or user) cannot be seen in a
provider's allocation list, so the global step compares Placement's usage per
project and user with what the instances' allocations add up to, one request
per pair, and reads single consumers only for the pairs that do not add up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from nova_audit_ops.clients.placement import AllocationsChange, PlacementError
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.paging import Page, keyset_pages, resume_point, walk
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova import flavors
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.instance_facts import Facts, read_facts
from nova_audit_ops.nova.schema import table
from nova_audit_ops.settings.access import DbAccess, placement_role
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import RangeSupport, TaskSpec
from nova_audit_ops.settings.throttles import API_THROTTLES

SPEC = TaskSpec(
    name="heal_allocations",
    family="placement",
    summary="Create missing instance allocations in Placement and fix their owners.",
    knobs=(
        Knob(
            "check_owners",
            "bool",
            True,
            "Also find allocations held under the wrong project or user (global step).",
        ),
        *API_THROTTLES,
    ),
    api_tables=DbAccess(reads=("request_specs",)),
    cell_tables=DbAccess(
        reads=(
            "instances",
            "compute_nodes",
            "instance_extra",
            "block_device_mapping",
            "instance_system_metadata",
        )
    ),
    roles=(placement_role(),),
    defaults={"schedule": "@hourly", "batch_size": 500},
    skips_cell0=True,
    global_step=True,
    ranges=RangeSupport("instances", live_only=True),
)
NOVA_FIX = "nova-manage placement heal_allocations --instance {uuid}"
# States in which an instance rightly has no host: offloaded, nothing to allocate.
HOSTLESS_STATES = ("shelved_offloaded",)


@dataclass(frozen=True)
class Instance:
    id: int
    uuid: str
    host: str | None
    node: str | None
    project_id: str
    user_id: str
    image_ref: str | None


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    engine = ctx.engines.cell(cell)
    before = ctx.placement.requests
    providers = ctx.memos.provider_allocations
    pages = keyset_pages(
        engine,
        lambda last: _instances_after(engine, last),
        ctx.options["batch_size"],
        resume_point(ctx, cell.uuid),
        ctx.range_hi,
    )
    walk(
        ctx,
        report,
        cell.uuid,
        cell.label,
        pages,
        lambda page: _heal_batch(ctx, cell, engine, page, providers, report),
    )
    report.details["placement_requests"] = ctx.placement.requests - before
    return report


def _instances_after(engine: Engine, last: int) -> sa.Select:
    i = table(engine, "instances")
    return (
        sa.select(
            i.c.id,
            i.c.uuid,
            i.c.host,
            i.c.node,
            i.c.project_id,
            i.c.user_id,
            i.c.image_ref,
            i.c.task_state,
            i.c.vm_state,
        )
        .where(i.c.deleted == 0, i.c.id > last)
        .order_by(i.c.id)
    )


def _heal_batch(
    ctx: RunContext,
    cell: Cell,
    engine: Engine,
    page: Page,
    providers: dict[str, dict[str, Any]],
    report: Report,
) -> None:
    idle = [r for r in page.rows if r.task_state is None]
    eligible = [_instance(r) for r in idle if r.node is not None]
    hostless = [r for r in idle if r.node is None and r.vm_state not in HOSTLESS_STATES]
    report.counts.skipped += len(page.rows) - len(eligible) - len(hostless)
    for row in hostless:
        report.add(_not_on_a_host(cell, row))
    nodes = _node_uuids(engine, {i.host for i in eligible if i.host})
    missing: list[tuple[Instance, str]] = []
    for inst in eligible:
        rp = nodes.get((inst.host or "", inst.node or ""))
        if rp is None:
            report.add(
                Finding(
                    "instance",
                    inst.uuid,
                    f"instance is on {inst.host}/{inst.node}, which has no compute node",
                    "nothing",
                    Status.FAILED,
                    cell.label,
                    fix="check the instance's host; run discover_hosts or "
                    "`nova-manage placement heal_allocations` after fixing it",
                )
            )
            continue
        if rp not in providers:
            try:
                providers[rp] = ctx.placement.provider_allocations(rp)
            except PlacementError as exc:
                providers[rp] = {}
                if exc.status != 404:
                    raise
        if inst.uuid not in providers[rp]:
            missing.append((inst, rp))
    if missing:
        _heal_missing(ctx, cell, engine, missing, providers, report)


def _not_on_a_host(cell: Cell, row: Row) -> Finding:
    """An idle instance with no node: skipped, as Nova's heal_allocations skips it."""
    return Finding(
        "instance",
        row.uuid,
        f"instance {row.uuid} ({row.vm_state}) is not on a host: its node is NULL "
        f"(host {row.host or 'NULL'}), so no provider can hold its allocations",
        "skipped (as `nova-manage placement heal_allocations`: 'is not on a host')",
        Status.LEFT,
        cell.label,
        fix=f"find where it runs (`openstack server show {row.uuid}`, the compute hosts' "
        "`virsh list`); set its host and node, or rebuild or delete it; then rerun "
        "heal_allocations",
    )


def _instance(row: Row) -> Instance:
    return Instance(
        row.id, row.uuid, row.host, row.node, row.project_id, row.user_id, row.image_ref
    )


def _node_uuids(engine: Engine, hosts: set[str]) -> dict[tuple[str, str], str]:
    """(host, hypervisor_hostname) -> compute node uuid, one query for the batch."""
    if not hosts:
        return {}
    cn = table(engine, "compute_nodes")
    query = sa.select(cn.c.host, cn.c.hypervisor_hostname, cn.c.uuid).where(
        cn.c.deleted == 0, cn.c.host.in_(sorted(hosts))
    )
    with engine.connect() as conn:
        return {(r.host, r.hypervisor_hostname): r.uuid for r in conn.execute(query)}


def _heal_missing(
    ctx: RunContext,
    cell: Cell,
    engine: Engine,
    missing: list[tuple[Instance, str]],
    providers: dict[str, dict[str, Any]],
    report: Report,
) -> None:
    facts = read_facts(engine, ctx.engines.api, {i.uuid: i.image_ref for i, _ in missing})
    for inst, rp in missing:
        try:
            _heal_one(ctx, cell, inst, rp, facts, providers, report)
        except (PlacementError, flavors.FlavorError) as exc:
            report.add(
                Finding(
                    "instance",
                    inst.uuid,
                    f"allocations could not be healed: {exc}",
                    "nothing",
                    Status.FAILED,
                    cell.label,
                    fix=NOVA_FIX.format(uuid=inst.uuid),
                )
            )


def _heal_one(
    ctx: RunContext,
    cell: Cell,
    inst: Instance,
    rp: str,
    facts: Facts,
    providers: dict[str, dict[str, Any]],
    report: Report,
) -> None:
    """Allocate one instance's flavor on its node's provider (or say why not, or would)."""
    flavor = flavors.parse_flavor(facts.flavor.get(inst.uuid))
    policy = facts.image_cpu_policy.get(inst.uuid)
    reason = _unhealable(inst, flavor, policy, facts)
    if reason:
        report.add(
            _instance_finding(
                inst,
                cell,
                f"instance has no allocations and {reason}",
                "not healed",
                Status.MUST_NOT_FIX,
                NOVA_FIX.format(uuid=inst.uuid),
            )
        )
        return
    wanted = flavors.resources(flavor, facts.volume_backed[inst.uuid], policy)
    problem = f"instance on {inst.host} has no allocations in Placement"
    create = _creation(inst, rp, wanted)
    if not ctx.heal:
        if create(ctx.placement.consumer_allocations(inst.uuid)) is not None:
            action = f"would allocate {flavors.describe(wanted)} on {rp}"
            fix = "nova-audit run heal_allocations --mode heal"
            report.add(_instance_finding(inst, cell, problem, action, Status.WOULD_FIX, fix))
        return
    if ctx.placement.create_consumer(inst.uuid, create) is not None:
        providers.setdefault(rp, {})[inst.uuid] = {"resources": wanted}
        action = f"allocated {flavors.describe(wanted)} on {rp}"
        report.add(_instance_finding(inst, cell, problem, action, Status.FIXED))


def _unhealable(
    inst: Instance, flavor: flavors.Flavor, policy: str | None, facts: Facts
) -> str | None:
    """Why Nova would not heal this instance's allocations either; None when it would."""
    reason = flavors.unhealable(flavor, policy)
    if reason is None and inst.uuid in facts.port_requests:
        reason = "it has ports with resource requests (Neutron must be updated as well)"
    return reason


def _creation(inst: Instance, rp: str, wanted: dict[str, Any]) -> AllocationsChange:
    """The change that gives a consumer with no allocations anywhere `wanted` on `rp`."""

    def create(current: dict[str, Any]) -> dict[str, Any] | None:
        if current.get("allocations"):
            return None  # it has allocations elsewhere: Nova's command leaves them too
        return {
            "allocations": {rp: {"resources": wanted}},
            "project_id": inst.project_id,
            "user_id": inst.user_id,
        }

    return create


def _instance_finding(
    inst: Instance, cell: Cell, problem: str, action: str, status: Status, fix: str | None = None
) -> Finding:
    """A finding about one instance of this cell."""
    return Finding("instance", inst.uuid, problem, action, status, cell.label, fix=fix)


def run_global(ctx: RunContext, cells: Sequence[Cell]) -> Report:
    """Owners: Placement's usage per project and user against the instances' allocations."""
    report = ctx.new_report()
    report.cells_checked.append("owners")
    if not ctx.options["check_owners"]:
        return report
    before = ctx.placement.requests
    owners = _owners(ctx, cells)
    held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cache = ctx.memos.provider_allocations
    for rp in ctx.placement.resource_providers():
        if rp["uuid"] not in cache:
            cache[rp["uuid"]] = ctx.placement.provider_allocations(rp["uuid"])
        for consumer, part in cache[rp["uuid"]].items():
            if consumer in owners:
                for rc, amount in part["resources"].items():
                    held[consumer][rc] += int(amount)
    expected: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for consumer, resources in held.items():
        for rc, amount in resources.items():
            expected[owners[consumer]][rc] += amount
    for pair in sorted(expected):
        report.counts.examined += 1
        actual = ctx.placement.usages(*pair)
        if {k: v for k, v in actual.items() if v} != dict(expected[pair]):
            for consumer in sorted(c for c in held if owners[c] == pair):
                _check_owner(ctx, consumer, pair, report)
    report.details["placement_requests"] = ctx.placement.requests - before
    return report


def _owners(ctx: RunContext, cells: Sequence[Cell]) -> dict[str, tuple[str, str]]:
    """instance uuid -> (project, user) for every live instance of every cell but cell0."""
    owners: dict[str, tuple[str, str]] = {}
    for cell in cells:
        if cell.is_cell0:
            continue
        engine = ctx.engines.cell(cell)
        i = table(engine, "instances")
        query = sa.select(i.c.uuid, i.c.project_id, i.c.user_id).where(i.c.deleted == 0)
        with engine.connect() as conn:
            owners.update({r.uuid: (r.project_id, r.user_id) for r in conn.execute(query)})
    return owners


def _check_owner(ctx: RunContext, consumer: str, pair: tuple[str, str], report: Report) -> None:
    project, user = pair

    def reown(current: dict[str, Any]) -> dict[str, Any] | None:
        if (current.get("project_id"), current.get("user_id")) == pair:
            return None
        return {
            "allocations": {
                rp: {"resources": part["resources"]} for rp, part in current["allocations"].items()
            },
            "project_id": project,
            "user_id": user,
        }

    try:
        current = ctx.placement.consumer_allocations(consumer)
        if reown(current) is None:
            return
        problem = (
            f"allocations are held for project {current.get('project_id')} user "
            f"{current.get('user_id')}, the instance belongs to project {project} user {user}"
        )
        if not ctx.heal:
            report.add(
                Finding(
                    "instance",
                    consumer,
                    problem,
                    "would set the owner",
                    Status.WOULD_FIX,
                    fix="nova-audit run heal_allocations --mode heal",
                )
            )
        elif ctx.placement.rewrite_consumer(consumer, reown) is not None:
            report.add(Finding("instance", consumer, problem, "set the owner", Status.FIXED))
    except PlacementError as exc:
        report.add(
            Finding(
                "instance",
                consumer,
                f"owner could not be fixed: {exc}",
                "nothing",
                Status.FAILED,
                fix=NOVA_FIX.format(uuid=consumer),
            )
        )
