"""Named locks on the API database: one nova-audit writer per task at a time.

MySQL/MariaDB use GET_LOCK, PostgreSQL an advisory lock, SQLite (test beds and
single-host set-ups) an flock on a file beside the database. The lock lives as
long as its connection, so a killed run releases it at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nova_audit_ops.settings.errors import LockBusyError

LOCK_PREFIX = "nova_audit."
MYSQL_NAME_MAX = 64  # MySQL refuses longer GET_LOCK names; longer ones are hashed


@contextlib.contextmanager
def named_lock(engine: Engine, name: str, timeout: float) -> Iterator[None]:
    """Hold the lock `name` on the engine's database or raise LockBusyError."""
    backend = engine.url.get_backend_name()
    full = LOCK_PREFIX + name
    if backend == "sqlite":
        with _file_lock(engine, full, timeout):
            yield
        return
    key = server_lock_name(engine, full)
    with engine.connect() as conn:
        if backend == "mysql":
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"), {"n": key, "t": timeout})
            acquired = got.scalar() == 1
        elif backend == "postgresql":
            acquired = _pg_try_lock(conn, full, timeout)
        else:
            raise LockBusyError(f"named locks are not supported on {backend} databases")
        conn.commit()
        if not acquired:
            holder = _mysql_holder(conn, key) if backend == "mysql" else ""
            raise _busy(full, timeout, holder)
        try:
            yield
        finally:
            if backend == "mysql":
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": key})
            else:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _pg_key(full)})
            conn.commit()


@contextlib.contextmanager
def named_locks(engine: Engine, names: Sequence[str], timeout: float) -> Iterator[None]:
    """Hold every lock of `names` (taken in order, within `timeout` in all) or none.

    On MySQL/MariaDB one connection holds them all (GET_LOCK allows several per
    session), so a writer that excludes many slots costs one pooled connection.
    """
    if engine.url.get_backend_name() != "mysql":
        with contextlib.ExitStack() as stack:
            end = time.monotonic() + timeout
            for name in names:
                stack.enter_context(named_lock(engine, name, max(0.0, end - time.monotonic())))
            yield
        return
    keys = [server_lock_name(engine, LOCK_PREFIX + name) for name in names]
    end = time.monotonic() + timeout
    with engine.connect() as conn:
        held: list[str] = []
        try:
            for name, key in zip(names, keys, strict=True):
                wait = max(0.0, end - time.monotonic())
                got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"), {"n": key, "t": wait})
                if got.scalar() != 1:
                    raise _busy(LOCK_PREFIX + name, timeout, _mysql_holder(conn, key))
                held.append(key)
            conn.commit()
            yield
        finally:
            for key in reversed(held):
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": key})
            conn.commit()


def server_lock_name(engine: Engine, full: str) -> str:
    """The GET_LOCK name of `full` for this API database.

    MySQL's named locks are server-wide: two clouds whose API databases share a
    server (or two test beds) must not exclude each other, so the name carries the
    database's.
    """
    return mysql_lock_name(f"{full}@{engine.url.database or ''}")


def mysql_lock_name(full: str) -> str:
    """The GET_LOCK name of `full`: itself, or a hashed form when it exceeds 64 characters."""
    if len(full) <= MYSQL_NAME_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:16]
    return f"{full[: MYSQL_NAME_MAX - len(digest) - 1]}~{digest}"


def _mysql_holder(conn: sa.Connection, key: str) -> str:
    """Who holds the GET_LOCK `key`: connection id, user@host, its state; '' if unknown."""
    try:
        holder = conn.execute(sa.text("SELECT IS_USED_LOCK(:n)"), {"n": key}).scalar()
        if holder is None:
            return ""
        row = conn.execute(
            sa.text(
                "SELECT USER, HOST, COMMAND, TIME FROM information_schema.PROCESSLIST WHERE ID = :i"
            ),
            {"i": int(holder)},
        ).first()
    except sa.exc.SQLAlchemyError:
        return ""  # no PROCESS privilege or a server without IS_USED_LOCK: say less
    if row is None:
        return f"connection {int(holder)}"
    user, host, command, seconds = row
    return f"connection {int(holder)} ({user}@{host}, {command} for {seconds} s)"


def _busy(name: str, timeout: float, holder: str = "") -> LockBusyError:
    by = f" ({holder})" if holder else ""
    return LockBusyError(
        f"lock {name} on the API database is held by another run{by} "
        f"(waited {timeout:g} s): another nova-audit run of this task is in progress; "
        "let it finish, then rerun."
    )


def _pg_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _pg_try_lock(conn: sa.Connection, name: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while True:
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _pg_key(name)})
        if got.scalar():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.2)


@contextlib.contextmanager
def _file_lock(engine: Engine, name: str, timeout: float) -> Iterator[None]:
    database = engine.url.database or ""
    if not database or database == ":memory:":
        raise LockBusyError("named locks need a file-backed SQLite database, not :memory:")
    directory = os.path.dirname(os.path.abspath(database))
    path = os.path.join(directory, f".{name}.lock")
    end = time.monotonic() + timeout
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= end:
                    raise _busy(name, timeout) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
