"""Preflight's checks of the deployment's cells: cells v2 set-up, schema revisions, mappings."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.schema import schema_revision, table
from nova_audit_ops.settings.errors import NovaAuditError
from nova_audit_ops.tasks.preflight_checks.common import check_problem


def cells_v2(ctx: RunContext, cells: Sequence[Cell]) -> list[Finding]:
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
    nodes = sum(count_compute_nodes(ctx, c) for c in cells if not c.is_cell0)
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


def count_compute_nodes(ctx: RunContext, cell: Cell) -> int:
    try:
        engine = ctx.engines.cell(cell)
        cn = table(engine, "compute_nodes")
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(cn).where(cn.c.deleted == 0)
            return int(conn.execute(query).scalar_one())
    except (SQLAlchemyError, NovaAuditError):
        return 0  # the cell's own checks report an unreachable database


def schema_revisions(ctx: RunContext, cells: Sequence[Cell]) -> list[Finding]:
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


def mapping_counts(ctx: RunContext, cell: Cell, engine: Engine) -> list[Finding]:
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
