"""Run a task once, per cell or over all cells: the code the CLI and operators share.

Unknown cells and bad options are refused before anything is written; one cell
that fails (unreachable database, unexpected error) becomes a failed-cell
finding and the other cells go on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.db import Engines, check_reachable, unreachable
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Report, merge
from nova_audit_ops.engine.state import FileStateStore, StateStore
from nova_audit_ops.engine.timing import Deadline
from nova_audit_ops.nova.cells import Cell, select_cells
from nova_audit_ops.registry import MODULES, spec
from nova_audit_ops.settings.config import AuditConfig
from nova_audit_ops.settings.errors import NovaAuditError

LOG = logging.getLogger("nova_audit")


def options_for(task: str, config: AuditConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """Config values overlaid with validated run-time params (None = not given)."""
    task_spec = spec(task)
    given = {k: v for k, v in params.items() if v is not None}
    unknown = sorted(set(given) - {k.name for k in task_spec.param_knobs()})
    if unknown:
        raise NovaAuditError(f"{task}: unknown option(s) {', '.join(unknown)}")
    options = config.settings(task_spec)
    options.update(task_spec.validate_params(given, f"{task} params"))
    return options


def open_context(
    task: str,
    config: AuditConfig,
    params: Mapping[str, Any],
    *,
    reference_time: dt.datetime | None = None,
    window_end: dt.datetime | None = None,
    cell_overrides: Mapping[str, str] | None = None,
    state: StateStore | None = None,
    api_engine: Engine | None = None,
) -> RunContext:
    """Validate everything and build the run's collaborators; connects to nothing.

    `api_engine`, when given (built from an Airflow connection), replaces the
    config file's [api_database] connection.
    """
    options = options_for(task, config, params)
    overrides = {**config.cell_connections, **(cell_overrides or {})}
    api_url = config.require_api_connection() if api_engine is None else None
    engines = Engines(api_url, overrides, config.database_connection, api_engine=api_engine)
    return RunContext(
        spec=spec(task),
        config=config,
        options=options,
        engines=engines,
        deadline=Deadline.from_settings(int(options["time_budget"]), window_end),
        reference_time=reference_time or dt.datetime.now(dt.timezone.utc),
        state=state if state is not None else FileStateStore(config.state_dir),
    )


def chosen_cells(ctx: RunContext) -> list[Cell]:
    """The cells this run covers; an unknown cell is an error raised before any write."""
    check_reachable(ctx.engines.api, "API")
    cells = select_cells(ctx.all_cells(), ctx.options["cells"])
    if ctx.spec.skips_cell0:
        cells = [c for c in cells if not c.is_cell0]
    return cells


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    """Run the task for one cell; a failure of the cell becomes its report."""
    module = MODULES[ctx.spec.name]
    try:
        report: Report = module.run_cell(ctx, cell)
    except NovaAuditError as exc:
        report = _failed(ctx, cell, secrets.scrub(str(exc)))
    except SQLAlchemyError as exc:
        url = ctx.engines.cell_url(cell)
        report = _failed(ctx, cell, str(unreachable(f"cell {cell.label}", url, exc)))
    for line in (f.problem for f in report.findings if f.kind == "cell"):
        LOG.error("%s", line)
    return report


def _failed(ctx: RunContext, cell: Cell, problem: str) -> Report:
    report = ctx.new_report()
    report.cell_failed(cell.label, problem, fix=f"fix the cause, then rerun {ctx.spec.name}")
    return report


def runs_global_step(ctx: RunContext) -> bool:
    """The global step runs when the task has one and no cells were singled out."""
    return ctx.spec.global_step and not ctx.options["cells"]


def run_global(ctx: RunContext) -> Report:
    """Run the task's work that belongs to no cell (needs every cell for lookups)."""
    module = MODULES[ctx.spec.name]
    try:
        report: Report = module.run_global(ctx, ctx.all_cells())
    except NovaAuditError as exc:
        report = _failed_global(ctx, secrets.scrub(str(exc)))
    except SQLAlchemyError as exc:
        report = _failed_global(ctx, str(unreachable("API", ctx.engines.api_url, exc)))
    return report


def _failed_global(ctx: RunContext, problem: str) -> Report:
    LOG.error("%s", problem)
    report = ctx.new_report()
    report.cell_failed("global", problem, fix=f"fix the cause, then rerun {ctx.spec.name}")
    return report


def run_all(ctx: RunContext) -> Report:
    """Run the task over the chosen cells, one after another, then its global step."""
    reports = [run_cell(ctx, cell) for cell in chosen_cells(ctx)]
    if runs_global_step(ctx):
        reports.append(run_global(ctx))
    return merge(ctx.spec.name, ctx.mode, reports)
