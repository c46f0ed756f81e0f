"""Run a task once, per cell or over all cells: the code the CLI and operators share.

Unknown cells and bad options are refused before anything is written. This is
the one failure boundary: whatever a cell (or the global step) raises becomes a
failed-cell finding and the other cells go on. Expected failures (a service's
error, an unreachable database) say what broke; anything else is a bug of
nova-audit, counted in `details["crashes"]` so that the CLI exits 255.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from keystoneauth1 import exceptions as ksa_exceptions
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from nova_audit_ops import grants
from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.db import Engines, check_reachable, unreachable
from nova_audit_ops.clients.db_retry import (
    CONNECTION_CODES,
    describe_fault,
    error_code,
    is_transient,
)
from nova_audit_ops.clients.locks import named_lock, named_locks
from nova_audit_ops.clients.privileges import is_denied
from nova_audit_ops.clients.read_only import is_refused_write
from nova_audit_ops.engine.batches import MAX_RANGES_PER_CELL
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.fixes import with_rerun_params
from nova_audit_ops.engine.report import Finding, Report, merge
from nova_audit_ops.engine.state import FileStateStore, StateStore
from nova_audit_ops.engine.timing import Deadline
from nova_audit_ops.nova.cells import CELL0_UUID, Cell, select_cells
from nova_audit_ops.registry import MODULES, spec
from nova_audit_ops.settings.config import AuditConfig
from nova_audit_ops.settings.errors import LockBusyError, NovaAuditError
from nova_audit_ops.settings.spec import TASK_LOCK_WAIT, TaskSpec

LOG = logging.getLogger("nova_audit")
GLOBAL = "global"  # the label of the global step in reports
MAX_SHOWN = 6  # missing privileges named in a refusal; the grants command prints them all
CRASHES = "crashes"  # report.details key: cells that ended in a nova-audit bug (adds up)
# Failures of the world, not of nova-audit: a cell that raises one is reported as
# failed (code 2). requests' exceptions derive from OSError. Anything else is a bug.
EXPECTED_FAILURES: tuple[type[Exception], ...] = (
    NovaAuditError,
    SQLAlchemyError,
    ksa_exceptions.ClientException,
    OSError,
)


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
    read_only = spec(task).read_only or options["mode"] != "heal"
    engines = Engines(
        api_url,
        overrides,
        config.database_connection,
        api_engine=api_engine,
        read_only=read_only,
        account=config.database_account,
    )
    return RunContext(
        spec=spec(task),
        config=config,
        options=options,
        engines=engines,
        deadline=Deadline.from_settings(int(options["time_budget"]), window_end),
        reference_time=reference_time or dt.datetime.now(dt.timezone.utc),
        state=state if state is not None else FileStateStore(config.state_dir),
    )


def chosen_cells(ctx: RunContext, *, with_skipped: bool = False) -> list[Cell]:
    """The cells this run covers; an unknown cell is an error raised before any write.

    `with_skipped` keeps the cells the task does not work on (cell0 for most):
    a DAG shows them as skipped cell tasks rather than leaving them out.
    """
    check_reachable(ctx.engines.api, "API")
    cells = select_cells(ctx.all_cells(), ctx.options["cells"])
    if not with_skipped:
        cells = [c for c in cells if not skip_reason(ctx.spec, c.uuid)]
    return cells


def skip_reason(task_spec: TaskSpec, cell_uuid: str | None) -> str | None:
    """Why this task does not work on this cell, or None when it does."""
    if task_spec.skips_cell0 and cell_uuid == CELL0_UUID:
        return (
            f"{task_spec.name} skips cell0: it holds only instances that failed to "
            "schedule, no compute hosts or allocations"
        )
    return None


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    """Run the task for one cell (or the id range `ctx.id_range` of it); anything the
    cell raises becomes its report.

    A batch's failure names its range but fails its cell; its resume marker is
    reported under the batch's label, so the markers of a cell's batches are all kept.
    """
    module = MODULES[ctx.spec.name]
    where = batch_label(cell.label, ctx)
    try:
        report: Report | None = refused(ctx, cell, where)
        if report is None:
            with writer_lock(ctx, cell.uuid):
                report = module.run_cell(ctx, cell)
    except Exception as exc:
        report = _contained(ctx, where, exc, f"cell {where}", lambda: ctx.engines.cell_url(cell))
    if where != cell.label:
        report.cells_failed = [cell.label if c == where else c for c in report.cells_failed]
        report.findings = [_naming(f, where) for f in report.findings]
        if cell.label in report.markers:
            report.markers[where] = report.markers.pop(cell.label)
    for line in (f.problem for f in report.findings if f.kind == "cell"):
        LOG.error("%s", line)
    return with_rerun_params(ctx, report)


def _naming(finding: Finding, where: str) -> Finding:
    """A cell failure of a batch, its problem starting with the batch's range."""
    if finding.kind != "cell" or finding.problem.startswith(where):
        return finding
    return dataclasses.replace(finding, problem=f"{where}: {finding.problem}")


def batch_label(cell_label: str, ctx: RunContext) -> str:
    """The cell's label, with the id range when the run covers one batch of it."""
    if ctx.id_range is None or not ctx.batched:
        return cell_label
    return f"{cell_label} {ctx.id_range.label}"


def refused(ctx: RunContext, cell: Cell | None, where: str | None = None) -> Report | None:
    """A heal run whose account lacks a privilege it needs here: refused before any write.

    Checked for the API database and the cell's (the global step: the API's only)
    against the task's declared tables; where privileges cannot be read (SQLite),
    nothing is refused and a write the server denies is still reported (_denied).
    """
    if not ctx.heal or ctx.spec.read_only:
        return None
    lacking, grantee = grants.missing(ctx.spec, ctx.engines, cell)
    if not lacking:
        return None
    label = where or (cell.label if cell else GLOBAL)
    shown = ", ".join(lacking[:MAX_SHOWN])
    if len(lacking) > MAX_SHOWN:
        shown += f" and {len(lacking) - MAX_SHOWN} more"
    problem = (
        f"{label}: heal refused before its first write, nothing written: the database "
        f"account {grantee} lacks {shown}"
    )
    return _failed(ctx, label, problem, fix=_grants_fix(ctx, grantee))


def _grants_fix(ctx: RunContext, grantee: str) -> str:
    command = grants.fix_command(ctx.config.path, ctx.spec.name, ctx.mode, grantee)
    return (
        f"run `{command}`, have a database administrator apply its GRANT statements, then "
        f"rerun {ctx.spec.name} (or run it in audit mode, which needs SELECT only)"
    )


def lock_name(task: str, scope: str) -> str:
    """The named lock of one task's writer on one cell (a uuid) or on its global step."""
    return f"{task}.{scope}"


def lock_wait(ctx: RunContext) -> float:
    """Seconds a heal run waits for another writer's lock: `[audit] task_lock_wait`."""
    return float(ctx.config.global_values.get(TASK_LOCK_WAIT.name, TASK_LOCK_WAIT.default))


def slot_lock_name(task: str, scope: str, slot: int) -> str:
    """One of the MAX_RANGES_PER_CELL lock slots of a splittable task's cell."""
    return f"{lock_name(task, scope)}.s{slot}"


def writer_locks(ctx: RunContext, scope: str) -> list[str]:
    """The named locks a writer of `scope` takes.

    Tasks whose cells can be split: a batch takes its range's slot only, so the
    batches of one run write in parallel while a second run of the same range
    waits; a whole-cell writer takes the cell's lock and every slot, so it
    excludes every batch and every other whole-cell writer. Other tasks (and
    global steps): the one lock of the task and scope.
    """
    name = ctx.spec.name
    if ctx.spec.ranges is None or scope == GLOBAL:
        return [lock_name(name, scope)]
    if ctx.batched:
        return [slot_lock_name(name, scope, ctx.batch_slot % MAX_RANGES_PER_CELL)]
    slots = [slot_lock_name(name, scope, slot) for slot in range(MAX_RANGES_PER_CELL)]
    return [lock_name(name, scope), *slots]


@contextlib.contextmanager
def writer_lock(ctx: RunContext, scope: str) -> Iterator[None]:
    """Hold the task's lock(s) for `scope` when this run may write; audit runs take none."""
    if not ctx.heal or ctx.spec.read_only:
        yield
        return
    names = writer_locks(ctx, scope)
    if len(names) == 1:
        with named_lock(ctx.engines.api, names[0], lock_wait(ctx)):
            yield
        return
    with named_locks(ctx.engines.api, names, lock_wait(ctx)):
        yield


def runs_global_step(ctx: RunContext) -> bool:
    """The global step runs when the task has one and no cells were singled out."""
    return ctx.spec.global_step and not ctx.options["cells"]


def run_global(ctx: RunContext) -> Report:
    """Run the task's work that belongs to no cell; anything it raises becomes its report."""
    module = MODULES[ctx.spec.name]
    try:
        report: Report | None = refused(ctx, None)
        if report is None:
            with writer_lock(ctx, GLOBAL):
                report = module.run_global(ctx, ctx.all_cells())
    except Exception as exc:
        report = _contained(ctx, GLOBAL, exc, "API", lambda: ctx.engines.api_url)
        for line in (f.problem for f in report.findings if f.kind == "cell"):
            LOG.error("%s", line)
    return with_rerun_params(ctx, report)


def failure_message(exc: BaseException) -> str:
    """A scrubbed one-line message for a failure: the error's own text, typed where useful."""
    if isinstance(exc, NovaAuditError):
        text = str(exc)  # written for the operator: the problem and the fix
    elif isinstance(exc, SQLAlchemyError):
        lines = str(getattr(exc, "orig", None) or exc).splitlines() or [""]
        text = f"database error ({type(exc).__name__}): {lines[0]}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(secrets.scrub(text).split())


def crashes(report: Report) -> int:
    """How many cells (or global steps) of this report ended in a nova-audit bug."""
    return int(report.details.get(CRASHES) or 0)


def _contained(
    ctx: RunContext,
    label: str,
    exc: Exception,
    db_label: str,
    db_url: Callable[[], str],
) -> Report:
    """The report of a cell (or the global step) that raised `exc`: failed, or crashed."""
    if isinstance(exc, LockBusyError):
        fix = f"another run holds the lock: let it finish, then rerun {ctx.spec.name}"
        return _failed(ctx, label, failure_message(exc), fix=fix)
    if isinstance(exc, SQLAlchemyError) and is_refused_write(exc):
        return _crashed(ctx, label, exc)  # a write in audit mode: ours, and refused
    if isinstance(exc, SQLAlchemyError) and is_denied(exc):
        problem = (
            f"{label}: the database refused a statement for want of a privilege "
            f"({failure_message(exc)}); its transaction was rolled back"
        )
        return _failed(ctx, label, problem, fix=_grants_fix(ctx, "NAME@HOST"))
    if is_transient(exc):
        return _transient_db_fault(ctx, label, exc)
    if isinstance(exc, SQLAlchemyError):
        problem = str(unreachable(db_label, db_url(), exc))
    elif isinstance(exc, EXPECTED_FAILURES):
        problem = failure_message(exc)
    else:
        return _crashed(ctx, label, exc)
    return _failed(ctx, label, problem, fix=f"fix the cause, then rerun {ctx.spec.name}")


def _transient_db_fault(ctx: RunContext, label: str, exc: Exception) -> Report:
    """A write batch whose retries ran out on a deadlock, lock wait or lost connection."""
    retries = ctx.db_retry_policy().retries
    if error_code(exc) in CONNECTION_CODES:
        written = "it may or may not have been written"
        fix = (
            "check the database server and any proxy in front of it (their idle and "
            f"query timeouts), then rerun {ctx.spec.name}: a repeated batch finds its work done"
        )
    else:
        written = "nothing of it was written"
        fix = (
            "find the transaction that holds the lock (information_schema.innodb_trx, "
            f"SHOW ENGINE INNODB STATUS) and let it finish, then rerun {ctx.spec.name}; "
            "raise [audit] db_lock_wait_timeout or db_retries if such waits are normal here"
        )
    problem = (
        f"{label}: a write batch was rolled back because {describe_fault(exc)}, "
        f"tried {retries + 1} time(s) within the run's deadline; {written}, the batches "
        "before it are kept and this cell's later batches were not started"
    )
    return _failed(ctx, label, problem, fix=fix)


def _crashed(ctx: RunContext, label: str, exc: Exception) -> Report:
    """A bug of nova-audit, contained: logged with its traceback, counted in the report."""
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    LOG.error("nova-audit bug in %s (%s):\n%s", ctx.spec.name, label, secrets.scrub(trace))
    problem = f"nova-audit bug, {label} not finished: {failure_message(exc)}"
    fix = (
        "report this bug of nova-audit with the traceback from the log; the other cells "
        f"were checked: rerun {ctx.spec.name} once it is fixed"
    )
    report = _failed(ctx, label, problem, fix=fix)
    report.details[CRASHES] = 1
    return report


def _failed(ctx: RunContext, label: str, problem: str, *, fix: str) -> Report:
    report = ctx.new_report()
    report.cell_failed(label, problem, fix=fix)
    return report


def run_all(ctx: RunContext) -> Report:
    """Run the task over the chosen cells, one after another, then its global step."""
    reports = [run_cell(ctx, cell) for cell in chosen_cells(ctx)]
    if runs_global_step(ctx):
        reports.append(run_global(ctx))
    return merge(ctx.spec.name, ctx.mode, reports)
