"""host_fault: force a failed compute host down and mark its instances, through Nova's API.

Every run reports the compute services of the cell that stopped reporting
(no heartbeat for `down_after` seconds) and are not forced down yet, with
what they hold. Heal mode acts only on hosts the operator names in `hosts`,
because only the operator can know the host is fenced (powered off): a
nova-compute that merely lost its database connection still runs its guests,
and evacuating them would start a second copy on shared storage. For a named
host that is silent, heal mode

1. forces its nova-compute service down and disables it with a reason
   (`PUT /os-services/{uuid}`, microversion 2.53), so the scheduler stops
   choosing it and evacuation can start at once;
2. marks the instances that were running there, so users and tools see they
   are down and `nova evacuate` accepts them. `instance_state = error` (the
   default) resets them (and any stuck in a task) to `error` with
   `os-resetState`; `instance_state = stopped` shows active and paused ones
   stopped/shutdown, written in the cell database as Nova's own power sync
   would (nova/instance_stop.py; no API can). Stopped, shelved and error
   instances with no task are left as they are.

Both steps are idempotent: a rerun after an interruption skips what is done.
Instances are read from the cell database (one query per host); the changes
go through Nova's API, which records the instance actions, except the stopped
states (one transaction per host, with the instance actions).

A host held out of service that reports again is reported by every run and,
when named in `recovered_hosts`, returned to service
(host_fault_steps/returning.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from nova_audit_ops.clients.compute import ComputeAPIError
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.instance_stop import STOPPABLE_STATES, stop_instances
from nova_audit_ops.nova.schema import table
from nova_audit_ops.nova.services import ComputeService, compute_services
from nova_audit_ops.settings.access import INSERT, NOVA, UPDATE, DbAccess, ServiceRole
from nova_audit_ops.settings.errors import ConfigError, NovaAuditError
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import TaskSpec
from nova_audit_ops.tasks.host_fault_steps.returning import KNOBS as RETURNING_KNOBS
from nova_audit_ops.tasks.host_fault_steps.returning import ReturningHosts

SPEC = TaskSpec(
    name="host_fault",
    family="compute",
    summary="Force failed compute hosts down and mark their instances error or stopped.",
    knobs=(
        Knob(
            "hosts",
            "list",
            [],
            "Failed, fenced compute hosts to act on in heal mode; audit reports every silent host.",
            rerun=False,  # a fix names the host it is about; other names would assert too much
        ),
        Knob(
            "down_after",
            "int",
            300,
            "Seconds without a heartbeat before a compute service counts as failed.",
            minimum=1,
            maximum=30 * 24 * 3600,
        ),
        Knob(
            "reset_instances",
            "bool",
            True,
            "In heal mode, mark the host's running instances (see instance_state).",
        ),
        Knob(
            "instance_state",
            "choice",
            "error",
            "What a failed host's running instances become in heal mode: error "
            "(os-resetState, also busy ones) or stopped (vm_state stopped, power_state "
            "shutdown; active and paused ones, written in the cell database).",
            choices=("error", "stopped"),
        ),
        *RETURNING_KNOBS,
    ),
    api_tables=DbAccess(reads=("host_mappings",)),
    cell_tables=DbAccess(
        reads=("services", "instances", "migrations"),
        writes={  # instance_state = stopped only (nova/instance_stop.py)
            "instances": (UPDATE,),
            "instance_actions": (INSERT,),
            "instance_actions_events": (INSERT,),
        },
    ),
    roles=(
        ServiceRole(
            NOVA,
            None,
            "admin",
            "audit reads the databases only; forcing a service down (os-services:update) "
            "and os-resetState (os-admin-actions:reset_state) are admin-only",
        ),
    ),
    defaults={"schedule": "*/5 * * * *"},
    skips_cell0=True,
    live_state=True,
)
# vm_states of instances that were running on the host when it failed.
RUNNING_STATES = ("active", "paused", "suspended", "rescued", "resized", "building")
DISABLED_REASON = "nova-audit host_fault: no heartbeat since {since}"


def run_cell(ctx: RunContext, cell: Cell) -> Report:
    """Report this cell's silent compute hosts; in heal mode, handle the named ones."""
    report = ctx.new_report()
    report.cells_checked.append(cell.label)
    named = set(ctx.options["hosts"])
    _check_named_hosts_exist(ctx, named | set(ctx.options["recovered_hosts"]))
    engine = ctx.engines.cell(cell)
    down_after = int(ctx.options["down_after"])
    returning_hosts = ReturningHosts(ctx, cell, engine)
    for service in compute_services(engine):
        report.counts.examined += 1
        # By heartbeat alone: a forced-down host that reports again is running again.
        silent = not service.reported_within(ctx.reference_time, down_after)
        if returning_hosts.handles(service, silent):
            report.add(returning_hosts.handle(service, silent))
        elif service.host in named:
            _handle_named(ctx, report, cell, engine, service, silent)
        elif silent and not service.forced_down:
            report.add(_unnamed_finding(ctx, cell, engine, service))
    returning_hosts.save()
    return report


def _check_named_hosts_exist(ctx: RunContext, named: set[str]) -> None:
    """A name no cell knows is a typo: refuse before anything is written.

    Known means a host mapping names it or some cell has its nova-compute
    service (a failed host may never have been mapped). When a cell cannot be
    read, a name not found elsewhere gets the benefit of the doubt.
    """
    if not named:
        return
    hm = table(ctx.engines.api, "host_mappings")
    with ctx.engines.api.connect() as conn:
        known = set(
            conn.execute(sa.select(hm.c.host).where(hm.c.host.in_(sorted(named)))).scalars()
        )
    unread = False
    for cell in ctx.all_cells():
        if named <= known:
            return
        if cell.is_cell0:
            continue
        try:
            hosts = [
                s.host for s in compute_services(ctx.engines.cell(cell), sorted(named - known))
            ]
        except (SQLAlchemyError, NovaAuditError):
            unread = True
            continue
        known.update(hosts)
    unknown = sorted(named - known)
    if unknown and not unread:
        raise ConfigError(
            f"host_fault: unknown host(s) {', '.join(unknown)}: no cell has a nova-compute "
            "service by that name (check it with `openstack compute service list "
            "--service nova-compute`)"
        )


def _instances(engine: Engine, host: str) -> list[sa.Row]:
    """The host's undeleted instances: uuid, vm_state, task_state."""
    instances = table(engine, "instances")
    query = (
        sa.select(instances.c.uuid, instances.c.vm_state, instances.c.task_state)
        .where(instances.c.host == host, instances.c.deleted == 0)
        .order_by(instances.c.id)
    )
    with engine.connect() as conn:
        return list(conn.execute(query))


def _needs_reset(row: sa.Row) -> bool:
    return row.task_state is not None or row.vm_state in RUNNING_STATES


def _silence(ctx: RunContext, service: ComputeService) -> str:
    seconds = service.seconds_silent(ctx.reference_time)
    return "no heartbeat ever" if seconds is None else f"no heartbeat for {seconds:.0f} s"


def _unnamed_finding(
    ctx: RunContext, cell: Cell, engine: Engine, service: ComputeService
) -> Finding:
    busy = sum(1 for row in _instances(engine, service.host) if _needs_reset(row))
    return Finding(
        kind="host",
        object_id=service.host,
        cell=cell.label,
        problem=f"nova-compute on {service.host} has failed ({_silence(ctx, service)}); "
        f"{busy} instance(s) were running or busy there",
        action="nothing: a host is forced down only when named in `hosts`",
        status=Status.LEFT,
        fix=f"make sure {service.host} is powered off (fenced), then run "
        f"`nova-audit run host_fault --hosts {service.host} --mode heal`, then evacuate",
    )


def _handle_named(
    ctx: RunContext,
    report: Report,
    cell: Cell,
    engine: Engine,
    service: ComputeService,
    silent: bool,
) -> None:
    if not silent:
        report.add(
            Finding(
                kind="host",
                object_id=service.host,
                cell=cell.label,
                problem=f"{service.host} was named as failed, but its nova-compute reported "
                f"{service.seconds_silent(ctx.reference_time):.0f} s ago",
                action="nothing: a host that still reports is never forced down",
                status=Status.MUST_NOT_FIX,
                fix=f"check {service.host}; if it is really down, wait `down_after` seconds "
                f"and rerun `nova-audit run host_fault --hosts {service.host} --mode heal`",
            )
        )
        return
    _force_down(ctx, report, cell, service)
    if ctx.options["reset_instances"] and ctx.options["instance_state"] == "stopped":
        _stop_host(ctx, report, cell, engine, service.host)
    elif ctx.options["reset_instances"]:
        for row in _instances(engine, service.host):
            report.counts.examined += 1
            if _needs_reset(row):
                _reset(ctx, report, cell, service.host, row)


def _force_down(ctx: RunContext, report: Report, cell: Cell, service: ComputeService) -> None:
    if service.forced_down:
        return  # done by an earlier run or by the operator
    since = service.last_heartbeat.isoformat() if service.last_heartbeat else "never"
    reason = None if service.disabled else DISABLED_REASON.format(since=since)
    problem = f"nova-compute on {service.host} has failed ({_silence(ctx, service)})"
    action = "force the service down" + ("" if service.disabled else " and disable it")
    if not ctx.heal:
        report.add(_host_finding(cell, service.host, problem, f"would {action}", Status.WOULD_FIX))
        return
    if not service.uuid:
        raise NovaAuditError(f"service of {service.host} has no uuid: Nova cannot address it")
    try:
        ctx.compute.force_down(service.uuid, reason)
    except ComputeAPIError as exc:
        report.add(
            _host_finding(cell, service.host, problem, f"{action} failed: {exc}", Status.FAILED)
        )
        return
    report.add(_host_finding(cell, service.host, problem, f"{action}: done", Status.FIXED))


def _host_finding(cell: Cell, host: str, problem: str, action: str, status: Status) -> Finding:
    return Finding(
        kind="host",
        object_id=host,
        cell=cell.label,
        problem=problem,
        action=action,
        status=status,
        fix=None if status is not Status.FAILED else "check Nova's API log, then rerun",
    )


def _reset(ctx: RunContext, report: Report, cell: Cell, host: str, row: sa.Row) -> None:
    task = f", task {row.task_state}" if row.task_state else ""
    problem = f"instance on failed host {host} is {row.vm_state}{task}"
    if not ctx.heal:
        status, action = Status.WOULD_FIX, "would reset it to error"
    else:
        try:
            ctx.compute.reset_state(row.uuid, "error")
            status, action = Status.FIXED, "reset to error (os-resetState)"
        except ComputeAPIError as exc:
            status, action = Status.FAILED, f"reset to error failed: {exc}"
    report.add(
        Finding(
            kind="instance",
            object_id=row.uuid,
            cell=cell.label,
            problem=problem,
            action=action,
            status=status,
            fix=f"evacuate it: `openstack server evacuate {row.uuid}`"
            if status is Status.FIXED
            else None,
        )
    )


def _stop_host(ctx: RunContext, report: Report, cell: Cell, engine: Engine, host: str) -> None:
    """`instance_state = stopped`: report (audit) or stop (heal) the running instances."""
    rows = _instances(engine, host)
    report.counts.examined += len(rows)
    running = [r for r in rows if r.vm_state in STOPPABLE_STATES]
    for row in rows:
        if row.vm_state not in STOPPABLE_STATES and row.task_state is not None:
            fix = f"reset it: `openstack server set --state error {row.uuid}`, then evacuate it"
            action = "nothing: instance_state stopped stops only active and paused instances"
            report.add(_stop_finding(cell, host, row, action, Status.LEFT, fix))
    if not ctx.heal:
        for row in running:
            report.add(_stop_finding(cell, host, row, "would stop it", Status.WOULD_FIX))
        return
    if not running:
        return
    request_id, stopped = stop_instances(engine, host, ctx.db_retry_policy())
    action = f"stopped (vm_state stopped, power_state shutdown; instance action stop {request_id})"
    for row in stopped:  # as the transaction locked them, which may differ from `running`
        fix = f"evacuate it: `openstack server evacuate {row.uuid}` (it stays stopped there)"
        report.add(_stop_finding(cell, host, row, action, Status.FIXED, fix))


def _stop_finding(
    cell: Cell, host: str, row: sa.Row, action: str, status: Status, fix: str | None = None
) -> Finding:
    task = f", task {row.task_state}" if row.task_state else ""
    return Finding(
        kind="instance",
        object_id=row.uuid,
        cell=cell.label,
        problem=f"instance on failed host {host} is {row.vm_state}{task}",
        action=action,
        status=status,
        fix=fix,
    )
