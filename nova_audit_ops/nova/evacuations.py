"""Evacuations away from a compute host, and the instances that still claim it.

Nova records an evacuation as a `migrations` row (`migration_type`
'evacuation', `source_compute` the failed host) that goes accepted →
pre-migrating → done while the instance is rebuilt elsewhere. The guest left
on the source is destroyed by nova-compute itself, at its next start-up
(`ComputeManager._destroy_evacuated_instances`, which reads deleted rows too),
and only then does the migration become 'completed'. Until then the old guest
may still run on the source: Nova's API refuses to un-force a host with such
'done' evacuations (`_check_for_evacuations`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nova_audit_ops.nova.schema import table

EVACUATION = "evacuation"
# The statuses nova-compute's start-up cleanup looks for: the source was not cleaned up.
SOURCE_NOT_CLEANED = ("accepted", "pre-migrating", "done")


@dataclass(frozen=True)
class Evacuation:
    """One evacuation migration of an instance away from the host."""

    instance_uuid: str
    status: str
    dest_compute: str | None
    instance_host: str | None  # where the instance is now; None when it is gone
    instance_deleted: bool

    @property
    def source_not_cleaned(self) -> bool:
        """The evacuated guest may still exist (and run) on the source host."""
        return self.status in SOURCE_NOT_CLEANED

    def where(self) -> str:
        """ "<uuid> (done, now on <host>)", as a finding lists it."""
        now = "deleted" if self.instance_deleted else f"on {self.instance_host or 'no host'}"
        return f"{self.instance_uuid} ({self.status}, now {now})"


def evacuations_from(engine: Engine, host: str) -> list[Evacuation]:
    """Evacuations whose source is `host` that were not failed, oldest first.

    Deleted migration rows count (nova-compute's cleanup reads them too); an
    instance evacuated twice appears once per migration.
    """
    migrations = table(engine, "migrations")
    instances = table(engine, "instances")
    joined = migrations.outerjoin(instances, instances.c.uuid == migrations.c.instance_uuid)
    query = (
        sa.select(
            migrations.c.instance_uuid,
            migrations.c.status,
            migrations.c.dest_compute,
            instances.c.host,
            instances.c.deleted,
        )
        .select_from(joined)
        .where(
            migrations.c.source_compute == host,
            migrations.c.migration_type == EVACUATION,
            migrations.c.status.notin_(("failed", "error")),
        )
        .order_by(migrations.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Evacuation(
            instance_uuid=str(row.instance_uuid),
            status=str(row.status),
            dest_compute=row.dest_compute,
            instance_host=row.host,
            instance_deleted=row.deleted is None or bool(row.deleted),
        )
        for row in rows
    ]


def instances_claiming(engine: Engine, host: str) -> list[str]:
    """Uuids of the undeleted instances whose `host` is `host`, oldest first."""
    instances = table(engine, "instances")
    query = (
        sa.select(instances.c.uuid)
        .where(instances.c.host == host, instances.c.deleted == 0)
        .order_by(instances.c.id)
    )
    with engine.connect() as conn:
        return [str(uuid) for uuid in conn.execute(query).scalars()]
