"""heal_allocations: instances whose allocations Placement lacks, or holds for someone else.

Eligibility is Nova's (`nova-manage placement heal_allocations`): undeleted
instances of a cell (cell0 skipped) that are on a node and in no task state.
Unlike Nova, which asks Placement once per instance, a batch reads the
allocations of each compute node provider once (`GET
/resource_providers/{uuid}/allocations`, cached for the run) and creates the
missing ones from the flavor against the node's provider, with the
instance's project and user, in one `POST /allocations` per batch
(heal_allocations_steps/writes.py); only when Placement rejects that write
(a conflict) is each consumer written alone, re-reading on a generation
conflict. An audit asks about single consumers only when one is missing.
Instances Nova would not heal either (VGPU, Cyborg device profiles, port
resource requests, mixed CPU policy) are findings with the command to run,
never silent skips; so is an idle instance with no node (skipped, as Nova's
"is not on a host"), unless shelved-offloaded.

Wrong owners (allocations under another project or user) cannot be seen in a
provider's allocation list, so the global step compares Placement's usage per
project and user with what the instances' allocations add up to, one request
per pair, and reads single consumers only for the pairs that do not add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from nova_audit_ops.clients.placement import PlacementError
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
from nova_audit_ops.tasks.heal_allocations_steps.owners import check_owners, resources_by_consumer
from nova_audit_ops.tasks.heal_allocations_steps.writes import (
    NOVA_FIX,
    Creation,
    Instance,
    failed,
    instance_finding,
    report_would_create,
    write_batch,
)

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
# States in which an instance rightly has no host: offloaded, nothing to allocate.
HOSTLESS_STATES = ("shelved_offloaded",)


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
                providers[rp] = resources_by_consumer(ctx.placement.provider_allocations(rp))
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
    """Plan each missing instance's allocations, then write the batch's in one request."""
    facts = read_facts(engine, ctx.engines.api, {i.uuid: i.image_ref for i, _ in missing})
    creations: list[Creation] = []
    for inst, rp in missing:
        try:
            creation = _plan(inst, rp, facts, cell, report)
        except flavors.FlavorError as exc:
            report.add(failed(inst, cell, exc))
            continue
        if creation is None:
            continue
        if ctx.heal:
            creations.append(creation)
        else:
            report_would_create(ctx, cell, creation, report)
    if creations:
        write_batch(ctx, cell, creations, providers, report)


def _plan(inst: Instance, rp: str, facts: Facts, cell: Cell, report: Report) -> Creation | None:
    """One instance's flavor on its node's provider, or None (and a finding) if Nova would not."""
    flavor = flavors.parse_flavor(facts.flavor.get(inst.uuid))
    policy = facts.image_cpu_policy.get(inst.uuid)
    reason = _unhealable(inst, flavor, policy, facts)
    if reason:
        report.add(
            instance_finding(
                inst,
                cell,
                f"instance has no allocations and {reason}",
                "not healed",
                Status.MUST_NOT_FIX,
                NOVA_FIX.format(uuid=inst.uuid),
            )
        )
        return None
    return Creation(inst, rp, flavors.resources(flavor, facts.volume_backed[inst.uuid], policy))


def _unhealable(
    inst: Instance, flavor: flavors.Flavor, policy: str | None, facts: Facts
) -> str | None:
    """Why Nova would not heal this instance's allocations either; None when it would."""
    reason = flavors.unhealable(flavor, policy)
    if reason is None and inst.uuid in facts.port_requests:
        reason = "it has ports with resource requests (Neutron must be updated as well)"
    return reason


def run_global(ctx: RunContext, cells: Sequence[Cell]) -> Report:
    """Owners: Placement's usage per project and user against the instances' allocations."""
    return check_owners(ctx, cells)
