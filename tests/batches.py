"""Run a task the way a fanned-out DAG run does, in-process: plan, then one run per unit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nova_audit_ops import fanout, registry, runner
from nova_audit_ops.engine.ranges import IdRange
from nova_audit_ops.engine.report import Report, merge
from nova_audit_ops.engine.state import StateStore


def plan(
    bed: Any, task: str, state: StateStore, config_path: str | None = None, **params: Any
) -> list[dict[str, Any]]:
    """The units plan_batches would hand to run_cell."""
    config = registry.load_config(config_path or bed.config_path)
    ctx = runner.open_context(task, config, params, state=state)
    try:
        return fanout.plan_units(ctx, runner.chosen_cells(ctx, with_skipped=True))
    finally:
        ctx.engines.dispose()


def run_unit(
    bed: Any,
    task: str,
    unit: dict[str, Any],
    state: StateStore,
    config_path: str | None = None,
    reference_time: dt.datetime | None = None,
    **params: Any,
) -> Report:
    """One mapped run_cell task: a fresh context for one cell or one range of it."""
    config = registry.load_config(config_path or bed.config_path)
    ctx = runner.open_context(task, config, params, state=state, reference_time=reference_time)
    try:
        cell = next(c for c in ctx.all_cells() if c.uuid == unit["cell"]["uuid"])
        ctx.id_range = IdRange.from_dict(unit["range"]) if unit["range"] else None
        ctx.batch_slot = int(unit["slot"])
        return runner.run_cell(ctx, cell)
    finally:
        ctx.engines.dispose()


def run_batched(
    bed: Any,
    task: str,
    state: StateStore,
    units: list[dict[str, Any]] | None = None,
    config_path: str | None = None,
    reference_time: dt.datetime | None = None,
    **params: Any,
) -> Report:
    """Every unit the task works on, then its global step; merged as the summary does."""
    units = units if units is not None else plan(bed, task, state, config_path, **params)
    spec = registry.spec(task)
    reports = [
        run_unit(bed, task, u, state, config_path, reference_time, **params)
        for u in units
        if not runner.skip_reason(spec, u["cell"]["uuid"])
    ]
    config = registry.load_config(config_path or bed.config_path)
    ctx = runner.open_context(task, config, params, state=state, reference_time=reference_time)
    try:
        if runner.runs_global_step(ctx):
            reports.append(runner.run_global(ctx))
    finally:
        ctx.engines.dispose()
    return merge(task, str(params.get("mode", "audit")), reports)


def split(units: list[dict[str, Any]], cell: str) -> list[dict[str, Any]]:
    """The units of one cell (by name)."""
    return [u for u in units if u["cell"]["name"] == cell]
