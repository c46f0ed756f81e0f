"""preflight: nova-status-style checks that every other task is safe to run.

Read-only by construction (its only mode is audit). Like `nova-status upgrade
check` it checks the cells v2 set-up, the Placement and Cinder API versions and
compute services older than Nova supports; beyond it, it checks what the other
nova-audit tasks would need to repair, cheaply (counts, no walk over rows):
compute services that stopped reporting, forced-down services that report
again (with the instances evacuated from them), unmapped compute nodes, compute
nodes without a resource provider, instance/mapping count mismatches and cells
on different schema revisions. Each problem is a finding that names the
command to run; a warning is code 1, a failure code 2.
"""

from __future__ import annotations

from collections.abc import Sequence

from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Report
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.services import compute_nodes, compute_services
from nova_audit_ops.settings.access import CINDER_VERSIONS_ONLY, DbAccess, placement_role
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import TaskSpec
from nova_audit_ops.tasks.preflight_checks.apis import cinder_check, placement_check
from nova_audit_ops.tasks.preflight_checks.cells import cells_v2, mapping_counts, schema_revisions
from nova_audit_ops.tasks.preflight_checks.common import record
from nova_audit_ops.tasks.preflight_checks.computes import (
    down_computes,
    nodes_without_providers,
    old_computes,
    returned_computes,
    unmapped_nodes,
)

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
    cell_tables=DbAccess(
        reads=("alembic_version", "compute_nodes", "services", "instances", "migrations")
    ),
    roles=(placement_role(heal=None), CINDER_VERSIONS_ONLY),
    global_step=True,
    read_only=True,
    live_state=True,
)
GLOBAL_LABEL = "deployment"


# --------------------------------------------------------------------------- global


def run_global(ctx: RunContext, cells: Sequence[Cell]) -> Report:
    """Checks of the deployment as a whole: cells v2, schema revisions, APIs."""
    report = ctx.new_report()
    report.cells_checked.append(GLOBAL_LABEL)
    record(report, "Cells v2", cells_v2(ctx, cells))
    record(report, "Cell schema revisions", schema_revisions(ctx, cells))
    record(report, "Placement API", placement_check(ctx))
    problems, skipped = cinder_check(ctx)
    record(report, "Cinder API", problems, skipped)
    return report


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
        record(
            report, prefix + "Compute service versions", old_computes(ctx, cell, engine, services)
        )
        record(report, prefix + "Compute services up", down_computes(ctx, cell, services))
        returned = returned_computes(ctx, cell, engine, services)
        record(report, prefix + "Returned compute hosts", returned)
        record(report, prefix + "Unmapped compute nodes", unmapped_nodes(ctx, cell, nodes))
        problems, skipped = nodes_without_providers(ctx, cell, nodes)
        record(report, prefix + "Compute node providers", problems, skipped)
    record(report, prefix + "Instance mappings", mapping_counts(ctx, cell, engine))
    return report
