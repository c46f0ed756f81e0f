"""Preflight's checks of a cell's compute services and compute nodes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.host_mappings import host_cells
from nova_audit_ops.nova.returning_hosts import is_returning, returning_host
from nova_audit_ops.nova.services import ComputeService, conductor_version
from nova_audit_ops.settings.errors import NovaAuditError
from nova_audit_ops.tasks.preflight_checks.common import check_problem


def old_computes(
    ctx: RunContext, cell: Cell, engine: Engine, services: list[ComputeService]
) -> list[Finding]:
    """nova-compute services (not forced down) older than Nova supports, as nova-status.

    Without a configured minimum, nova-audit cannot know which release the
    deployment runs (it never imports Nova); computes behind the cell's
    conductor then show an upgrade in progress, a warning.
    """
    minimum = int(ctx.options["min_compute_service_version"])
    computes = [s for s in services if not s.forced_down]
    if minimum:
        old, failure = [s for s in computes if s.version < minimum], True
        why = f"older than {minimum}, the oldest this Nova supports"
    else:
        conductor = conductor_version(engine)
        old, failure = [s for s in computes if conductor and s.version < conductor], False
        why = f"older than the cell's nova-conductor ({conductor}): an upgrade in progress"
    return [
        check_problem(
            "Compute service versions",
            f"nova-compute on {s.host} has service version {s.version}, {why}",
            f"upgrade nova-compute on {s.host}; if the host is gone, delete its service with "
            "`openstack compute service delete`",
            failure=failure,
            cell=cell.label,
        )
        for s in old
    ]


def down_computes(ctx: RunContext, cell: Cell, services: list[ComputeService]) -> list[Finding]:
    """Enabled compute services silent for longer than service_down_time."""
    down_time = int(ctx.options["service_down_time"])
    now = ctx.reference_time
    problems = []
    for service in services:
        if service.forced_down or service.disabled or service.reported_within(now, down_time):
            continue
        silent = service.seconds_silent(now)
        since = f"for {silent:.0f} s" if silent is not None else "ever"
        problems.append(
            check_problem(
                "Compute services up",
                f"nova-compute on {service.host} is enabled but has not reported {since} "
                f"(service_down_time {down_time} s)",
                f"restart nova-compute on {service.host}; if the host has failed, run "
                f"`nova-audit run host_fault --hosts {service.host} --mode heal`",
                cell=cell.label,
            )
        )
    return problems


def returned_computes(
    ctx: RunContext, cell: Cell, engine: Engine, services: list[ComputeService]
) -> list[Finding]:
    """Compute services held out of service (forced down, or disabled by nova-audit) that
    report again within service_down_time: Nova never returns them by itself.

    A failure while evacuations from the host wait for nova-compute's cleanup
    (their old guests may run twice); a warning otherwise.
    """
    down_time = int(ctx.options["service_down_time"])
    now = ctx.reference_time
    problems = []
    for service in services:
        if not is_returning(service, now, down_time):
            continue
        facts = returning_host(engine, service)
        problems.append(
            check_problem(
                "Returned compute hosts",
                facts.describe(now),
                facts.fix(),
                failure=bool(facts.not_cleaned),
                cell=cell.label,
            )
        )
    return problems


def unmapped_nodes(ctx: RunContext, cell: Cell, nodes: list[sa.Row]) -> list[Finding]:
    """Nodes flagged unmapped, and nodes flagged mapped whose host mapping is gone."""
    unflagged = sum(1 for node in nodes if (node.mapped or 0) < 1)
    flagged = {n.host for n in nodes if n.host and (n.mapped or 0) >= 1}
    lost = len(flagged - set(host_cells(ctx.engines.api, flagged)))
    problems = []
    if unflagged:
        problems.append(
            f"{unflagged} compute node(s) have no host mapping; the scheduler cannot use them"
        )
    if lost:
        problems.append(
            f"{lost} host(s) have compute nodes flagged mapped but no host mapping (lost, "
            "e.g. an API database restored from an older backup)"
        )
    return [
        check_problem(
            "Unmapped compute nodes",
            problem,
            "run `nova-audit run discover_hosts --mode heal`",
            cell=cell.label,
        )
        for problem in problems
    ]


def provider_uuids(ctx: RunContext) -> set[str]:
    """Every resource provider's uuid, read once per process."""
    if ctx.memos.provider_uuids is None:
        ctx.memos.provider_uuids = {rp["uuid"] for rp in ctx.placement.resource_providers()}
    return ctx.memos.provider_uuids


def nodes_without_providers(
    ctx: RunContext, cell: Cell, nodes: list[sa.Row]
) -> tuple[list[Finding], str]:
    """Compute nodes Placement has no provider for: nothing can be scheduled there."""
    if not ctx.config.placement:
        return [], "no [placement] section in the config"
    try:
        providers = provider_uuids(ctx)
    except NovaAuditError as exc:  # Placement errors included
        return [], f"Placement not readable ({exc})"
    return [
        check_problem("Compute node providers", *provider_problem(row), cell=cell.label)
        for row in nodes
        if row.uuid not in providers
    ], ""


def provider_problem(row: sa.Row) -> tuple[str, str]:
    """The problem and fix of a compute node with no provider (or with no uuid at all)."""
    fix = (
        f"check that nova-compute on {row.host} reaches Placement ([placement] in its "
        "nova.conf) and restart it"
    )
    if row.uuid is None:  # a malformed row: no provider can match it
        return f"a compute node of {row.host} has a NULL uuid", f"restart nova-compute: {fix}"
    return f"compute node {row.uuid} of {row.host} has no resource provider in Placement", fix
