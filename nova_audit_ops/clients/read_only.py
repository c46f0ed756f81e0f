"""Audit mode enforced by the database: every session of an audit run is read-only.

"Audit writes nothing" is proven by tests; this makes the server refuse a write
by mistake instead of letting it land. MySQL/MariaDB: `SET SESSION TRANSACTION
READ ONLY` on every new connection (GET_LOCK and session variables still work;
any INSERT/UPDATE/DELETE fails with error 1792). SQLite: `PRAGMA query_only`.
A refused write is a bug of nova-audit, never a fault of the cloud.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

READ_ONLY_TRANSACTION = 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
SQLITE_READ_ONLY = "attempt to write a readonly database"


def make_read_only(engine: Engine) -> None:
    """Make every connection `engine` opens refuse writes (pooled ones are dropped first)."""
    hook = _HOOKS.get(engine.dialect.name)
    if hook is None or sa.event.contains(engine, "connect", hook):
        return
    sa.event.listen(engine, "connect", hook)
    engine.dispose()  # a pre-built engine may hold connections opened without the hook


def is_refused_write(exc: BaseException) -> bool:
    """Whether a database error is the server refusing a write of a read-only session."""
    orig = getattr(exc, "orig", exc)
    args = getattr(orig, "args", ())
    if args and args[0] == READ_ONLY_TRANSACTION:
        return True
    return SQLITE_READ_ONLY in str(orig)


def _execute(dbapi_connection: Any, statement: str) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _mysql(dbapi_connection: Any, record: Any) -> None:
    _execute(dbapi_connection, "SET SESSION TRANSACTION READ ONLY")


def _sqlite(dbapi_connection: Any, record: Any) -> None:
    _execute(dbapi_connection, "PRAGMA query_only = ON")


_HOOKS = {"mysql": _mysql, "mariadb": _mysql, "sqlite": _sqlite}
