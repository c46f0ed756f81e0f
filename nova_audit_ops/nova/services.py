"""nova-compute service rows of a cell, and whether Nova would call them up.

Nova's database servicegroup driver calls a service up while its last
heartbeat (`last_seen_up`, else `created_at`) is at most `service_down_time`
seconds old; `forced_down` makes it down whatever the heartbeat says. Callers
weigh `forced_down` themselves: host_fault must see a forced-down host that
reports again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nova_audit_ops.nova.schema import table

COMPUTE_BINARY = "nova-compute"


@dataclass(frozen=True)
class ComputeService:
    """One undeleted nova-compute service row."""

    id: int
    uuid: str | None
    host: str
    version: int
    disabled: bool
    forced_down: bool
    last_heartbeat: dt.datetime | None
    disabled_reason: str | None = None
    report_count: int = 0  # heartbeats ever (Nova's DB servicegroup driver counts them)

    def seconds_silent(self, now: dt.datetime) -> float | None:
        """Seconds since the last heartbeat, as Nova measures it (naive UTC)."""
        if self.last_heartbeat is None:
            return None
        return abs((_naive_utc(now) - self.last_heartbeat).total_seconds())

    def reported_within(self, now: dt.datetime, seconds: int) -> bool:
        """Heard from within `seconds` of `now` (Nova's heartbeat test, forced_down aside)."""
        silent = self.seconds_silent(now)
        return silent is not None and silent <= seconds


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def compute_services(engine: Engine, hosts: list[str] | None = None) -> list[ComputeService]:
    """Undeleted nova-compute services of the cell (optionally only these hosts)."""
    services = table(engine, "services")
    columns = services.c
    heartbeat = columns.last_seen_up if "last_seen_up" in columns else columns.updated_at
    query = (
        sa.select(
            columns.id,
            columns.uuid,
            columns.host,
            columns.version,
            columns.disabled,
            columns.forced_down,
            columns.disabled_reason,
            columns.report_count,
            sa.func.coalesce(heartbeat, columns.created_at).label("heartbeat"),
        )
        .where(columns.deleted == 0, columns.binary == COMPUTE_BINARY)
        .order_by(columns.id)
    )
    if hosts is not None:
        query = query.where(columns.host.in_(hosts))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        ComputeService(
            id=row.id,
            uuid=row.uuid,
            host=row.host or "",
            version=int(row.version or 0),
            disabled=bool(row.disabled),
            forced_down=bool(row.forced_down),
            last_heartbeat=row.heartbeat,
            disabled_reason=row.disabled_reason,
            report_count=int(row.report_count or 0),
        )
        for row in rows
    ]


def compute_nodes(engine: Engine) -> list[sa.Row]:
    """The cell's undeleted compute nodes: uuid, host, mapped."""
    cn = table(engine, "compute_nodes")
    with engine.connect() as conn:
        query = sa.select(cn.c.uuid, cn.c.host, cn.c.mapped).where(cn.c.deleted == 0)
        return list(conn.execute(query.order_by(cn.c.id)))


def conductor_version(engine: Engine) -> int:
    """The newest service version of the cell's running nova-conductor services."""
    services = table(engine, "services")
    with engine.connect() as conn:
        version = conn.execute(
            sa.select(sa.func.max(services.c.version)).where(
                services.c.deleted == 0, services.c.binary == "nova-conductor"
            )
        ).scalar()
    return int(version or 0)
