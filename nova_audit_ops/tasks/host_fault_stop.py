"""host_fault with `instance_state = stopped`: a failed host's running instances shown stopped.

No API can give an instance on a dead host the state its guest really has:
`os-resetState` accepts only `active` and `error`, and `stop` casts to the
host's nova-compute, which never answers (the instance would stay in
`powering-off`). So this writes, in the cell database, the rows Nova's own
code writes when a compute finds a guest shut down
(`_sync_instance_power_state` → `compute_api.force_stop` →
`ComputeManager.stop_instance`): per instance, `vm_state = stopped`,
`power_state = 4` (shutdown), `task_state = NULL`, `progress = 0`,
`updated_at`; a `stop` instance action with one `compute_stop_instance` event,
result `Success`. See docs/decisions/0011-instance-state-after-host-fault.md.

All of one host is one transaction (retried whole after a transient fault),
so a killed run leaves a host's instances either all as they were or all
stopped, each with its action. The update is guarded by the vm_state filter:
a rerun finds nothing left to stop on a host already done.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from nova_audit_ops.clients.db_retry import retry_transaction
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.schema import table

# The vm_states Nova's own power-state sync stops when it finds the guest shut
# down (ACTIVE and PAUSED); it leaves building, rescued, resized, suspended and
# error instances alone, and so does this. Soft-deleted (`soft-delete`),
# deleted, stopped and shelved instances are not running.
STOPPABLE_STATES = ("active", "paused")
SHUTDOWN = 4  # nova.compute.power_state.SHUTDOWN
ACTION = "stop"  # nova.compute.instance_actions.STOP
EVENT = "compute_stop_instance"  # wrap_instance_event(prefix="compute") on stop_instance


def _candidates(engine: Engine, host: str) -> list[sa.Row]:
    """The host's undeleted instances: uuid, vm_state, task_state."""
    instances = table(engine, "instances")
    query = (
        sa.select(instances.c.uuid, instances.c.vm_state, instances.c.task_state)
        .where(instances.c.host == host, instances.c.deleted == 0)
        .order_by(instances.c.id)
    )
    with engine.connect() as conn:
        return list(conn.execute(query))


def stop_instances(ctx: RunContext, engine: Engine, host: str) -> tuple[str, list[sa.Row]]:
    """Stop the host's running instances in one transaction: (request id, their rows
    as they were: uuid, vm_state, task_state)."""
    request_id = f"req-{uuid.uuid4()}"  # oslo.context's format; one per host's transaction

    def work(conn: Connection) -> list[sa.Row]:
        return _stop_in(conn, engine, host, request_id)

    return request_id, retry_transaction(engine, work, ctx.db_retry_policy())


def _stop_in(conn: Connection, engine: Engine, host: str, request_id: str) -> list[sa.Row]:
    instances = table(engine, "instances")
    actions = table(engine, "instance_actions")
    events = table(engine, "instance_actions_events")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    rows = conn.execute(
        sa.select(instances.c.id, instances.c.uuid, instances.c.vm_state, instances.c.task_state)
        .where(
            instances.c.host == host,
            instances.c.deleted == 0,
            instances.c.vm_state.in_(STOPPABLE_STATES),
        )
        .order_by(instances.c.id)
        .with_for_update()
    ).all()
    if not rows:
        return []
    conn.execute(
        sa.update(instances)
        .where(instances.c.id.in_([r.id for r in rows]))
        .values(
            vm_state="stopped",
            power_state=SHUTDOWN,
            task_state=None,
            progress=0,
            updated_at=now,
        )
    )
    # As InstanceAction.action_start with an admin context (no user, no project,
    # like Nova's periodic power sync and nova-manage); a stop action is never
    # finished (finish_time stays NULL), its event carries the outcome.
    conn.execute(
        sa.insert(actions),
        [
            {
                "action": ACTION,
                "instance_uuid": r.uuid,
                "request_id": request_id,
                "user_id": None,
                "project_id": None,
                "start_time": now,
                "finish_time": None,
                "message": None,
                "created_at": now,
                "updated_at": now,
                "deleted": 0,
            }
            for r in rows
        ],
    )
    action_ids = conn.execute(
        sa.select(actions.c.id).where(actions.c.request_id == request_id)
    ).scalars()
    conn.execute(
        sa.insert(events),
        [
            {
                "event": EVENT,
                "action_id": action_id,
                "start_time": now,
                "finish_time": now,
                "result": "Success",
                "traceback": None,
                "host": host,
                "details": None,
                "created_at": now,
                "updated_at": now,
                "deleted": 0,
            }
            for action_id in action_ids
        ],
    )
    return list(rows)


def stop_host(ctx: RunContext, report: Report, cell: Cell, engine: Engine, host: str) -> None:
    """Report (audit) or stop (heal) the failed host's running instances."""
    candidates = _candidates(engine, host)
    report.counts.examined += len(candidates)
    running = [r for r in candidates if r.vm_state in STOPPABLE_STATES]
    for row in candidates:
        if row.vm_state not in STOPPABLE_STATES and row.task_state is not None:
            report.add(_stuck(cell, host, row))
    if not running:
        return
    if not ctx.heal:
        for row in running:
            report.add(_finding(cell, host, row, "would stop it", Status.WOULD_FIX))
        return
    request_id, stopped = stop_instances(ctx, engine, host)
    action = f"stopped (vm_state stopped, power_state shutdown; instance action stop {request_id})"
    for row in stopped:  # as locked by the transaction, which may differ from `running`
        report.add(_finding(cell, host, row, action, Status.FIXED))


def _finding(cell: Cell, host: str, row: sa.Row, action: str, status: Status) -> Finding:
    task = f", task {row.task_state}" if row.task_state else ""
    return Finding(
        kind="instance",
        object_id=row.uuid,
        cell=cell.label,
        problem=f"instance on failed host {host} is {row.vm_state}{task}",
        action=action,
        status=status,
        fix=f"evacuate it: `openstack server evacuate {row.uuid}`, then start it "
        f"(`openstack server start {row.uuid}`) if it should run"
        if status is Status.FIXED
        else None,
    )


def _stuck(cell: Cell, host: str, row: sa.Row) -> Finding:
    """A busy instance that was not running (building, resizing...): its task never ends."""
    return Finding(
        kind="instance",
        object_id=row.uuid,
        cell=cell.label,
        problem=f"instance on failed host {host} is {row.vm_state}, task {row.task_state}, "
        "which will never finish",
        action="nothing: instance_state = stopped stops only active and paused instances",
        status=Status.LEFT,
        fix=f"reset it: `openstack server set --state error {row.uuid}`, then evacuate or "
        "delete it",
    )
