"""preflight: nova-status-style checks that every other task is safe to run.

Read-only by construction (its only mode is audit). Like `nova-status upgrade
check` it checks the cells v2 set-up, the Placement and Cinder API versions and
compute services older than Nova supports; beyond it, it checks what the other
nova-audit tasks would need to repair, cheaply (counts, no walk over rows):
compute services that stopped reporting, unmapped compute nodes, compute
nodes without a resource provider, instance/mapping count mismatches and cells
on different schema revisions. Each problem is a finding that names the
command to run; a warning is code 1, a failure code 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from keystoneauth1 import exceptions as ksa_exceptions
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.cinder import CinderDiscoveryError
from nova_audit_ops.clients.keystone import version_tuple
from nova_audit_ops.clients.placement import PlacementError
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.host_mappings import host_cells
from nova_audit_ops.nova.schema import schema_revision, table
from nova_audit_ops.nova.services import (
    ComputeService,
    compute_nodes,
    compute_services,
    conductor_version,
)
from nova_audit_ops.settings.access import CINDER_VERSIONS_ONLY, DbAccess, placement_role
from nova_audit_ops.settings.errors import NovaAuditError
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import TaskSpec

SPEC = TaskSpec(
    name="preflight",
    family="status",
    summary="nova-status-style checks: cells, APIs, services, what the other tasks would fix.",
    knobs=(
        Knob(
            "min_compute_service_version",
            "int",
            0,
            "Oldest nova-compute service version your Nova supports (72 = Gazpacho, the oldest "
            "Nova 2026.2 accepts); older computes are a failure. 0: no fixed minimum, computes "
            "older than the cell's nova-conductor are a warning (an upgrade in progress).",
            minimum=0,
            maximum=1000,
        ),
        Knob(
            "service_down_time",
            "int",
            60,
            "Seconds without a heartbeat after which a compute service is down "
            "(Nova's [DEFAULT] service_down_time).",
            minimum=1,
            maximum=7 * 24 * 3600,
        ),
    ),
    defaults={"schedule": "@hourly"},
    api_tables=DbAccess(reads=("host_mappings", "instance_mappings")),
    cell_tables=DbAccess(reads=("alembic_version", "compute_nodes", "services", "instances")),
    roles=(placement_role(heal=None), CINDER_VERSIONS_ONLY),
    global_step=True,
    read_only=True,
    live_state=True,
)
GLOBAL_LABEL = "deployment"
# nova-status's minimums: Placement 1.36 (the scheduler's same_subtree) and Cinder 3.44
# (volume attachment records).
MIN_PLACEMENT_MICROVERSION = "1.36"
MIN_CINDER_MICROVERSION = "3.44"


def _check(report: Report, name: str, problems: Sequence[Finding], skipped: str = "") -> None:
    """Record one check's verdict in details and its problems as findings."""
    report.counts.examined += 1
    if skipped:
        verdict = f"skipped: {skipped}"
    elif any(f.status is Status.FAILED for f in problems):
        verdict = "failure"
    elif problems:
        verdict = "warning"
    else:
        verdict = "success"
    report.details.setdefault("checks", {})[name] = verdict
    for finding in problems:
        report.add(finding)


def check_problem(
    name: str, problem: str, fix: str, *, failure: bool = False, cell: str | None = None
) -> Finding:
    """A preflight finding: the check's name, what is wrong, and the command that fixes it."""
    return Finding(
        kind="check",
        object_id=name,
        cell=cell,
        problem=secrets.scrub(problem),
        action="nothing: preflight only reports",
        status=Status.FAILED if failure else Status.LEFT,
        fix=fix,
    )


def _placement_check(ctx: RunContext) -> list[Finding]:
    """Placement reachable with our credentials and new enough for Nova."""
    name = "Placement API"
    fix = "check the [placement] section (auth, endpoint, region_name, valid_interfaces)"
    try:
        max_version = ctx.placement.max_microversion()
    except PlacementError as exc:  # before NovaAuditError, which it derives from
        return [check_problem(name, f"Placement refused the request: {exc}", fix, failure=True)]
    except NovaAuditError as exc:  # no [placement] section, or unreachable
        return [check_problem(name, str(exc), fix, failure=True)]
    except ksa_exceptions.ClientException as exc:
        problem = f"Placement cannot be used ({type(exc).__name__}: {exc})"
        return [check_problem(name, problem, fix, failure=True)]
    except (KeyError, IndexError, TypeError):
        problem = "Placement's version document has no max_version"
        return [check_problem(name, problem, fix, failure=True)]
    if version_tuple(max_version) < version_tuple(MIN_PLACEMENT_MICROVERSION):
        problem = (
            f"Placement API {MIN_PLACEMENT_MICROVERSION} needed, this Placement offers "
            f"{max_version}"
        )
        return [check_problem(name, problem, "upgrade Placement", failure=True)]
    return []


def _cinder_check(ctx: RunContext) -> tuple[list[Finding], str]:
    """Cinder's volume API v3 at 3.44 or newer; skipped where Cinder is not configured.

    As in nova-status, an error reaching Cinder is a warning (the check could
    not decide) and a Cinder that is too old is a failure.
    """
    name = "Cinder API"
    if not ctx.config.cinder.get("auth_type") and not ctx.config.cinder.get("auth_plugin"):
        return [], "no [cinder] auth_type in the config"
    fix = "check the [cinder] section (auth, catalog_info or endpoint_override, region)"
    try:
        _, max_version = ctx.cinder.server_versions()
    except (ksa_exceptions.ClientException, CinderDiscoveryError) as exc:
        problem = f"unable to determine the Cinder API version ({type(exc).__name__}: {exc})"
        return [check_problem(name, problem, fix)], ""
    except NovaAuditError as exc:  # after CinderDiscoveryError, which derives from it
        return [check_problem(name, str(exc), fix, failure=True)], ""
    if version_tuple(max_version) < version_tuple(MIN_CINDER_MICROVERSION):
        problem = (
            f"Cinder API {MIN_CINDER_MICROVERSION} or newer is required, this Cinder offers "
            f"{max_version}"
        )
        return [check_problem(name, problem, "upgrade Cinder", failure=True)], ""
    return [], ""


# --------------------------------------------------------------------------- global


def run_global(ctx: RunContext, cells: Sequence[Cell]) -> Report:
    """Checks of the deployment as a whole: cells v2, schema revisions, APIs."""
    report = ctx.new_report()
    report.cells_checked.append(GLOBAL_LABEL)
    _check(report, "Cells v2", _cells_v2(ctx, cells))
    _check(report, "Cell schema revisions", _schema_revisions(ctx, cells))
    _check(report, "Placement API", _placement_check(ctx))
    problems, skipped = _cinder_check(ctx)
    _check(report, "Cinder API", problems, skipped)
    return report


def _cells_v2(ctx: RunContext, cells: Sequence[Cell]) -> list[Finding]:
    """cell0 and one more cell; host mappings once compute nodes exist (as nova-status)."""
    name = "Cells v2"
    setup = "run `nova-manage cell_v2 simple_cell_setup`, then rerun preflight"
    if len(cells) < 2:
        return [
            check_problem(
                name, "fewer than two cell mappings (cell0 and a first cell)", setup, failure=True
            )
        ]
    if not any(c.is_cell0 for c in cells):
        return [check_problem(name, "no cell0 mapping", setup, failure=True)]
    hm = table(ctx.engines.api, "host_mappings")
    with ctx.engines.api.connect() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(hm)).scalar_one():
            return []
    nodes = sum(_count_compute_nodes(ctx, c) for c in cells if not c.is_cell0)
    if nodes:
        return [
            check_problem(
                name,
                f"no host mappings, but {nodes} compute node(s) exist",
                "run `nova-audit run discover_hosts --mode heal`",
                failure=True,
            )
        ]
    return []


def _count_compute_nodes(ctx: RunContext, cell: Cell) -> int:
    try:
        engine = ctx.engines.cell(cell)
        cn = table(engine, "compute_nodes")
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(cn).where(cn.c.deleted == 0)
            return int(conn.execute(query).scalar_one())
    except (SQLAlchemyError, NovaAuditError):
        return 0  # the cell's own checks report an unreachable database


def _schema_revisions(ctx: RunContext, cells: Sequence[Cell]) -> list[Finding]:
    """Every reachable cell database on the same Nova schema revision."""
    revisions: dict[str, list[str]] = {}
    for cell in cells:
        try:
            revision = schema_revision(ctx.engines.cell(cell)) or "none"
        except (SQLAlchemyError, NovaAuditError):
            continue
        revisions.setdefault(revision, []).append(cell.label)
    if len(revisions) <= 1:
        return []
    spread = "; ".join(f"{rev}: {', '.join(labels)}" for rev, labels in sorted(revisions.items()))
    return [
        check_problem(
            "Cell schema revisions",
            f"cell databases are on different schema revisions ({spread})",
            "run `nova-manage db sync` (it migrates every cell) with this release's Nova",
        )
    ]


# --------------------------------------------------------------------------- per cell


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    """Checks of one cell database (and its compute nodes' providers)."""
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    engine = ctx.engines.cell(cell)
    prefix = f"{cell.label}: "
    if not cell.is_cell0:
        services = compute_services(engine)
        nodes = compute_nodes(engine)
        _check(
            report, prefix + "Compute service versions", _old_computes(ctx, cell, engine, services)
        )
        _check(report, prefix + "Compute services up", _down_computes(ctx, cell, services))
        _check(report, prefix + "Unmapped compute nodes", _unmapped_nodes(ctx, cell, nodes))
        problems, skipped = _nodes_without_providers(ctx, cell, nodes)
        _check(report, prefix + "Compute node providers", problems, skipped)
    _check(report, prefix + "Instance mappings", _mapping_counts(ctx, cell, engine))
    return report


def _old_computes(
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


def _down_computes(ctx: RunContext, cell: Cell, services: list[ComputeService]) -> list[Finding]:
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


def _unmapped_nodes(ctx: RunContext, cell: Cell, nodes: list[sa.Row]) -> list[Finding]:
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


def _provider_uuids(ctx: RunContext) -> set[str]:
    """Every resource provider's uuid, read once per process."""
    if ctx.memos.provider_uuids is None:
        ctx.memos.provider_uuids = {rp["uuid"] for rp in ctx.placement.resource_providers()}
    return ctx.memos.provider_uuids


def _nodes_without_providers(
    ctx: RunContext, cell: Cell, nodes: list[sa.Row]
) -> tuple[list[Finding], str]:
    """Compute nodes Placement has no provider for: nothing can be scheduled there."""
    if not ctx.config.placement:
        return [], "no [placement] section in the config"
    try:
        providers = _provider_uuids(ctx)
    except NovaAuditError as exc:  # Placement errors included
        return [], f"Placement not readable ({exc})"
    return [
        check_problem("Compute node providers", *_provider_problem(row), cell=cell.label)
        for row in nodes
        if row.uuid not in providers
    ], ""


def _provider_problem(row: sa.Row) -> tuple[str, str]:
    """The problem and fix of a compute node with no provider (or with no uuid at all)."""
    fix = (
        f"check that nova-compute on {row.host} reaches Placement ([placement] in its "
        "nova.conf) and restart it"
    )
    if row.uuid is None:  # a malformed row: no provider can match it
        return f"a compute node of {row.host} has a NULL uuid", f"restart nova-compute: {fix}"
    return f"compute node {row.uuid} of {row.host} has no resource provider in Placement", fix


def _mapping_counts(ctx: RunContext, cell: Cell, engine: Engine) -> list[Finding]:
    """Instances in the cell against instance mappings naming it (counts only)."""
    instances = table(engine, "instances")
    im = table(ctx.engines.api, "instance_mappings")
    with engine.connect() as conn:
        in_cell = conn.execute(sa.select(sa.func.count()).select_from(instances)).scalar_one()
    with ctx.engines.api.connect() as conn:
        mapped = conn.execute(
            sa.select(sa.func.count()).select_from(im).where(im.c.cell_id == cell.id)
        ).scalar_one()
    if in_cell == mapped:
        return []
    if in_cell > mapped:
        what = f"{in_cell} instances but only {mapped} instance mappings name this cell"
        fix = "run `nova-audit run map_instances` (audit lists them, heal maps them)"
    else:
        what = f"{mapped} instance mappings name this cell but it holds {in_cell} instances"
        fix = "run `nova-audit run heal_instance_mappings` (audit lists them)"
    return [check_problem("Instance mappings", what, fix, cell=cell.label)]
