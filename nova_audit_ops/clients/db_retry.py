"""Retry of one write transaction after a transient MariaDB/Galera fault.

Like oslo.db's wrap_db_retry: a batch that hit a deadlock, a lock wait
timeout, a lost connection or a Galera certification failure is redone as a
whole in a new transaction on a (possibly new) connection, a bounded number
of times with a short backoff. A transaction that committed is never redone:
only the attempt that raised before or at its commit is retried, and a lost
connection during the commit itself (outcome unknown) is not retried at all.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
LOG = logging.getLogger("nova_audit")

DEADLOCK = 1213  # also Galera's certification failure ("wsrep" in the message)
LOCK_WAIT_TIMEOUT = 1205
WSREP_NOT_READY = 1047  # "WSREP has not yet prepared node for application use"
SERVER_GONE = 2006
LOST_CONNECTION = 2013
LOCK_CODES = frozenset({DEADLOCK, LOCK_WAIT_TIMEOUT, WSREP_NOT_READY})
CONNECTION_CODES = frozenset({SERVER_GONE, LOST_CONNECTION})
DEFAULT_RETRIES = 3
DEFAULT_LOCK_WAIT = 30


@dataclass(frozen=True)
class DbRetryPolicy:
    """How often a write transaction is retried and how long it may wait for a lock."""

    retries: int = DEFAULT_RETRIES
    lock_wait_timeout: int | None = None  # seconds; None leaves the server's setting
    remaining: float | None = None  # the run's remaining seconds, None if unbounded
    backoff: float = 0.2


def policy_from(values: Mapping[str, Any], remaining: float | None) -> DbRetryPolicy:
    """The policy of `[audit] db_retries` / `db_lock_wait_timeout` and the deadline."""
    retries = values.get("db_retries")
    wait = values.get("db_lock_wait_timeout")
    return DbRetryPolicy(
        retries=DEFAULT_RETRIES if retries is None else int(retries),
        lock_wait_timeout=DEFAULT_LOCK_WAIT if wait is None else int(wait),
        remaining=remaining,
    )


def error_code(exc: BaseException) -> int | None:
    """The MySQL error number of a DB-API error (PyMySQL or mysqlclient), if any."""
    orig = getattr(exc, "orig", exc)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is a fault that a new transaction may not meet again."""
    return isinstance(exc, DBAPIError) and error_code(exc) in LOCK_CODES | CONNECTION_CODES


def describe_fault(exc: BaseException) -> str:
    """What a transient database fault was, in the operator's words (with its number)."""
    code = error_code(exc)
    text = str(getattr(exc, "orig", exc)).lower()
    if code == LOCK_WAIT_TIMEOUT:
        return (
            "another session held a row lock it needed longer than db_lock_wait_timeout "
            "(MariaDB 1205, lock wait timeout exceeded)"
        )
    if code == DEADLOCK and "wsrep" in text:
        return "Galera certification failed again and again (1213, a conflicting write)"
    if code == DEADLOCK:
        return "it was chosen as a deadlock victim again and again (MariaDB 1213)"
    if code == WSREP_NOT_READY:
        return "the Galera node was not ready for writes (1047)"
    return f"the connection to the database was lost ({code}, server gone away or KILLed)"


def _lock_wait(policy: DbRetryPolicy, spent: float = 0.0) -> int | None:
    """Seconds a statement may wait for a row lock: the knob, never beyond the deadline.

    `spent` is what earlier tries of this batch took: each retry may only wait
    for what the run has left, or a retried lock wait would overrun it.
    """
    wait = policy.lock_wait_timeout
    if wait is None or wait <= 0:
        return None
    if policy.remaining is not None:
        wait = min(wait, max(1, math.floor(policy.remaining - spent)))
    return max(1, wait)


def _bound_lock_wait(conn: Connection, seconds: int | None) -> tuple[Any, Any] | None:
    """Set the session's lock wait timeouts (MySQL/MariaDB only); the previous values."""
    if seconds is None or conn.dialect.name != "mysql":
        return None
    old = conn.execute(
        sa.text("SELECT @@SESSION.innodb_lock_wait_timeout, @@SESSION.lock_wait_timeout")
    ).one()
    conn.execute(
        sa.text("SET SESSION innodb_lock_wait_timeout = :n, lock_wait_timeout = :n"),
        {"n": seconds},
    )
    conn.commit()
    return old[0], old[1]


def _restore_lock_wait(conn: Connection, old: tuple[Any, Any] | None) -> None:
    """Give the pooled connection its previous lock wait timeouts back (best effort)."""
    if old is None or conn.invalidated or conn.closed:
        return
    try:
        conn.rollback()
        conn.execute(
            sa.text("SET SESSION innodb_lock_wait_timeout = :a, lock_wait_timeout = :b"),
            {"a": old[0], "b": old[1]},
        )
        conn.commit()
    except DBAPIError:
        conn.invalidate()


def statement(stmt: sa.Executable, params: Any = None) -> Callable[[Connection], Any]:
    """The work of a transaction that executes one statement (with `params` rows)."""
    if params is None:
        return lambda conn: conn.execute(stmt)
    return lambda conn: conn.execute(stmt, params)


class _CommitLost(Exception):
    """The connection went away during COMMIT: the outcome is unknown, never redo."""


def _attempt(
    engine: Engine, work: Callable[[Connection], T], policy: DbRetryPolicy, spent: float
) -> T:
    """Run `work` once in a new transaction and commit it."""
    with engine.connect() as conn:
        old = _bound_lock_wait(conn, _lock_wait(policy, spent))
        try:
            with conn.begin() as trans:
                result = work(conn)
                try:
                    trans.commit()
                except DBAPIError as exc:
                    if error_code(exc) in CONNECTION_CODES:
                        raise _CommitLost() from exc
                    raise
            return result
        finally:
            _restore_lock_wait(conn, old)


def retry_transaction(
    engine: Engine, work: Callable[[Connection], T], policy: DbRetryPolicy | None = None
) -> T:
    """Run `work(conn)` in one transaction, redone whole after a transient fault.

    Raises the last error once the retries are spent, or at once for errors
    that are not transient and for a connection lost during COMMIT.
    """
    policy = policy or DbRetryPolicy()
    started = time.monotonic()
    for attempt in range(policy.retries + 1):
        try:
            return _attempt(engine, work, policy, time.monotonic() - started)
        except _CommitLost as lost:
            raise lost.__cause__ from None  # type: ignore[misc]
        except DBAPIError as exc:
            if not is_transient(exc) or attempt >= policy.retries:
                raise
            delay = min(policy.backoff * 2**attempt, 2.0)
            spent = time.monotonic() - started + delay
            if policy.remaining is not None and spent >= policy.remaining:
                raise
            LOG.warning(
                "transient database error %s; retrying the batch (%d/%d)",
                error_code(exc),
                attempt + 1,
                policy.retries,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")
