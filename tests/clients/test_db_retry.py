"""retry_transaction against real MariaDB sessions: lock wait, deadlock, KILL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from nova_audit_ops.clients.db import make_engine
from nova_audit_ops.clients.db_retry import DbRetryPolicy, error_code, retry_transaction
from testbed.db_faults import Rows, Target, hold_rows, inject, kill_connection

SERVER = "mysql+pymysql://root@127.0.0.1:3306"
URL = SERVER + "/nova_audit_dbretry"


@pytest.fixture
def engine() -> Iterator[Engine]:
    """A scratch database with one table of two rows."""
    admin = make_engine(SERVER + "/", "scratch")
    try:
        with admin.begin() as conn:
            conn.execute(sa.text("DROP DATABASE IF EXISTS nova_audit_dbretry"))
            conn.execute(sa.text("CREATE DATABASE nova_audit_dbretry"))
    except OperationalError:
        pytest.fail(
            "the retry tests need MariaDB on 127.0.0.1:3306 (make mariadb starts it)", pytrace=False
        )
    eng = make_engine(URL, "scratch")
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INT PRIMARY KEY, n INT) ENGINE=InnoDB"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, 0), (2, 0)"))
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text("DROP DATABASE nova_audit_dbretry"))
    admin.dispose()


def _bump(conn: Connection, row: int = 1) -> None:
    conn.execute(sa.text("UPDATE t SET n = n + 1 WHERE id = :id"), {"id": row})


def _n(engine: Engine, row: int = 1) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.text("SELECT n FROM t WHERE id = :id"), {"id": row}).scalar_one()
        )


def _row(row: int) -> Rows:
    return Rows(URL, "t", "id = :id", {"id": row})


def test_lock_wait_timeout_is_retried_and_commits_once(engine: Engine) -> None:
    with hold_rows(_row(1), 2.5) as fault:
        retry_transaction(engine, _bump, DbRetryPolicy(retries=5, lock_wait_timeout=1, backoff=0.1))
    assert fault.locked == 1
    assert _n(engine) == 1


def test_lock_held_past_the_retries_raises_and_writes_nothing(engine: Engine) -> None:
    with hold_rows(_row(1)), pytest.raises(OperationalError) as caught:
        retry_transaction(engine, _bump, DbRetryPolicy(retries=1, lock_wait_timeout=1, backoff=0.1))
    assert error_code(caught.value) == 1205
    assert _n(engine) == 0


def test_real_deadlock_is_retried(engine: Engine) -> None:
    """The fault session holds row 2, and asks for row 1 once the work waits on it."""
    attempts: list[int] = []

    def work(conn: Connection) -> None:
        attempts.append(1)
        _bump(conn, 1)
        _bump(conn, 2)

    policy = DbRetryPolicy(retries=3, lock_wait_timeout=10, backoff=0.1)
    with inject("deadlock", Target(hold=_row(2), then=_row(1))) as fault:
        retry_transaction(engine, work, policy)
    assert fault.deadlocks == 1 and fault.victim == "task"
    assert len(attempts) == 2  # the deadlock victim was redone, once
    assert _n(engine, 1) == 1 and _n(engine, 2) == 1


def test_killed_connection_is_retried_on_a_new_one(engine: Engine) -> None:
    killer = make_engine(URL, "killer")
    ids: list[int] = []

    def work(conn: Connection) -> None:
        ids.append(int(conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one()))
        _bump(conn)
        if len(ids) == 1:
            with killer.connect() as k:
                kill_connection(k, ids[0])
            conn.execute(sa.text("SELECT 1"))

    retry_transaction(engine, work, DbRetryPolicy(retries=2, backoff=0.1))
    killer.dispose()
    assert len(ids) == 2 and ids[0] != ids[1]
    assert _n(engine) == 1


def test_session_killed_while_it_waits_for_a_lock_is_retried(engine: Engine) -> None:
    """The `kill` fault: KILL CONNECTION of the session waiting on the fault's lock."""
    ids: list[int] = []

    def work(conn: Connection) -> None:
        ids.append(int(conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one()))
        _bump(conn, 2)
        _bump(conn, 1)

    with inject("kill", Target(hold=_row(1))) as fault:
        retry_transaction(engine, work, DbRetryPolicy(retries=2, lock_wait_timeout=10, backoff=0.1))
    assert fault.killed == ids[:1] and len(ids) == 2
    assert _n(engine, 1) == 1 and _n(engine, 2) == 1
