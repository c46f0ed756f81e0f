"""How far behind a database replica is: MariaDB/MySQL replication or a Galera node.

What pt-archiver's --check-slave-lag reads: `SHOW SLAVE STATUS`
(`SHOW REPLICA STATUS` where the old words are gone) and its
`Seconds_Behind_Master`; NULL there means replication is not running, which
is reported as such, never as "no lag". A server with no replication but
Galera on reports `wsrep_local_recv_queue`: write-sets received and not yet
applied, the queue that triggers flow control. The monitoring account needs
SLAVE MONITOR (MariaDB 10.5+) or REPLICATION CLIENT; nothing else.

URLs hold passwords: each is registered with the secrets module when a
Replica is made, and only the masked URL is ever shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.db import CONNECT_TIMEOUT, mask_url

# MariaDB lists every multi-source channel; MySQL knows only the last two.
STATUS_QUERIES = ("SHOW ALL SLAVES STATUS", "SHOW SLAVE STATUS", "SHOW REPLICA STATUS")
PRIVILEGE_FIX = (
    "grant the monitoring account SLAVE MONITOR (MariaDB) or REPLICATION CLIENT (MySQL) "
    "on the replica"
)


@dataclass(frozen=True)
class ReplicaState:
    """One reading of one replica: its lag, or why it has none to give."""

    replica: str  # the masked URL
    lag: float | None = None  # seconds behind its primary
    recv_queue: int | None = None  # Galera: write-sets waiting to be applied
    problem: str | None = None  # stopped, unreachable, not a replica: no lag to trust
    fix: str | None = None

    def behind(self, max_lag: float, max_recv_queue: int) -> str | None:
        """Why this replica is too far behind (or cannot tell), or None when it is not."""
        if self.problem:
            return self.problem
        if self.lag is not None and self.lag > max_lag:
            return f"is {self.lag:g} s behind its primary (max_replica_lag = {max_lag:g})"
        if self.recv_queue is not None and self.recv_queue > max_recv_queue:
            return (
                f"has {self.recv_queue} write-sets waiting in wsrep_local_recv_queue "
                f"(max_galera_recv_queue = {max_recv_queue})"
            )
        return None


class Replica:
    """A watched replica, connected on first reading; the URL is never shown unmasked."""

    def __init__(self, url: str) -> None:
        secrets.register(sa.engine.make_url(url).password)
        self.label = mask_url(url)
        self._url = url
        self._engine: Engine | None = None

    def read(self) -> ReplicaState:
        """Its state now; a failure to read it is a state with a problem, never raised."""
        try:
            if self._engine is None:
                # No pool: a run's guard holds no connection between two readings, and
                # nothing is left open for a worker to leak when the run ends.
                url = sa.engine.make_url(self._url)
                mysql = url.get_backend_name() == "mysql"
                self._engine = sa.create_engine(
                    url,
                    poolclass=sa.pool.NullPool,
                    connect_args={"connect_timeout": CONNECT_TIMEOUT} if mysql else {},
                )
            with self._engine.connect() as conn:
                return self._read(conn)
        except SQLAlchemyError as exc:
            reason = secrets.scrub(str(getattr(exc, "orig", None) or exc)).splitlines()[0]
            if _is_privilege_error(exc):
                return ReplicaState(
                    self.label, problem=f"cannot be read: {reason}", fix=PRIVILEGE_FIX
                )
            return ReplicaState(
                self.label,
                problem=f"cannot be reached: {reason}",
                fix="check that the replica is up and reachable from this worker, or correct "
                "its URL in [audit] replica_connections / [audit.replicas]",
            )

    def _read(self, conn: sa.Connection) -> ReplicaState:
        rows = _status_rows(conn)
        if rows:
            return self._from_status(rows)
        queue = conn.execute(sa.text("SHOW GLOBAL STATUS LIKE 'wsrep_local_recv_queue'")).first()
        if queue is not None:
            return ReplicaState(self.label, recv_queue=int(queue[1] or 0))
        return ReplicaState(
            self.label,
            problem="is not a replica (SHOW SLAVE STATUS is empty) nor a Galera node",
            fix="list only replicas in [audit] replica_connections / [audit.replicas]",
        )

    def _from_status(self, rows: list[dict[str, Any]]) -> ReplicaState:
        """The worst of its replication channels (MariaDB multi-source has several)."""
        worst = 0.0
        for row in rows:
            lag = row.get("Seconds_Behind_Master", row.get("Seconds_Behind_Source"))
            if lag is None:
                io = row.get("Slave_IO_Running", row.get("Replica_IO_Running"))
                sql = row.get("Slave_SQL_Running", row.get("Replica_SQL_Running"))
                error = row.get("Last_SQL_Error") or row.get("Last_IO_Error") or "none"
                return ReplicaState(
                    self.label,
                    problem=f"has replication stopped (Seconds_Behind_Master is NULL; IO thread "
                    f"{io}, SQL thread {sql}; last error: {secrets.scrub(str(error))})",
                    fix="fix replication on the replica (SHOW SLAVE STATUS, then START SLAVE), "
                    "or remove it from the watched replicas",
                )
            worst = max(worst, float(lag))
        return ReplicaState(self.label, lag=worst)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _status_rows(conn: sa.Connection) -> list[dict[str, Any]]:
    """The replication status rows, by whichever statement this server knows."""
    for position, query in enumerate(STATUS_QUERIES):
        try:
            return [dict(r) for r in conn.execute(sa.text(query)).mappings()]
        except SQLAlchemyError as exc:
            if position == len(STATUS_QUERIES) - 1 or _is_privilege_error(exc):
                raise
    return []


def _is_privilege_error(exc: BaseException) -> bool:
    code = getattr(getattr(exc, "orig", None), "args", [None])[0]
    return code in (1045, 1142, 1227)  # access denied, command denied, needs privilege
