"""A failed host's running instances shown stopped, as Nova records it (host_fault's
`instance_state = stopped`).

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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from nova_audit_ops.clients.db_retry import DbRetryPolicy, retry_transaction
from nova_audit_ops.nova.schema import table

# The vm_states Nova's own power-state sync stops when it finds the guest shut
# down (ACTIVE and PAUSED); it leaves building, rescued, resized, suspended and
# error instances alone, and so does this. Soft-deleted (`soft-delete`),
# deleted, stopped and shelved instances are not running.
STOPPABLE_STATES = ("active", "paused")
SHUTDOWN = 4  # nova.compute.power_state.SHUTDOWN
ACTION = "stop"  # nova.compute.instance_actions.STOP
EVENT = "compute_stop_instance"  # wrap_instance_event(prefix="compute") on stop_instance


def stop_instances(engine: Engine, host: str, policy: DbRetryPolicy) -> tuple[str, list[sa.Row]]:
    """Stop the host's running instances in one transaction: (request id, their rows
    as they were: uuid, vm_state, task_state)."""
    request_id = f"req-{uuid.uuid4()}"  # oslo.context's format; one per host's transaction

    def work(conn: Connection) -> list[sa.Row]:
        return _stop_in(conn, engine, host, request_id)

    return request_id, retry_transaction(engine, work, policy)


def _stop_in(conn: Connection, engine: Engine, host: str, request_id: str) -> list[sa.Row]:
    instances = table(engine, "instances")
    actions = table(engine, "instance_actions")
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
    conn.execute(sa.insert(actions), [_action(r.uuid, request_id, now) for r in rows])
    action_ids = conn.execute(
        sa.select(actions.c.id).where(actions.c.request_id == request_id)
    ).scalars()
    events = table(engine, "instance_actions_events")
    conn.execute(sa.insert(events), [_event(i, host, now) for i in action_ids])
    return list(rows)


def _action(instance_uuid: str, request_id: str, now: dt.datetime) -> dict[str, Any]:
    """As InstanceAction.action_start with an admin context (no user, no project, like
    Nova's periodic power sync and nova-manage). Nova never finishes a stop action
    (finish_time stays NULL): its event carries the outcome."""
    return {
        "action": ACTION,
        "instance_uuid": instance_uuid,
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


def _event(action_id: int, host: str, now: dt.datetime) -> dict[str, Any]:
    """As EventReporter around ComputeManager.stop_instance on `host`, ended well."""
    return {
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
