"""retry_transaction against real MariaDB sessions: deadlock, lock wait, KILL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from nova_audit_ops.clients.db import make_engine
from nova_audit_ops.clients.db_retry import DbRetryPolicy, error_code, retry_transaction

SERVER = "mysql+pymysql://root@127.0.0.1:3306"


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
    eng = make_engine(SERVER + "/nova_audit_dbretry", "scratch")
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
        return int(conn.execute(sa.text("SELECT n FROM t WHERE id = :id"), {"id": row}).scalar())


def _hold(engine: Engine, row: int, seconds: float, ready: threading.Event) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT n FROM t WHERE id = :id FOR UPDATE"), {"id": row})
        ready.set()
        time.sleep(seconds)


def test_lock_wait_timeout_is_retried_and_commits_once(engine: Engine) -> None:
    ready = threading.Event()
    holder = threading.Thread(target=_hold, args=(engine, 1, 2.5, ready))
    holder.start()
    ready.wait(5)
    retry_transaction(engine, _bump, DbRetryPolicy(retries=5, lock_wait_timeout=1, backoff=0.1))
    holder.join()
    assert _n(engine) == 1


def test_lock_held_past_the_retries_raises_and_writes_nothing(engine: Engine) -> None:
    ready = threading.Event()
    holder = threading.Thread(target=_hold, args=(engine, 1, 4, ready))
    holder.start()
    ready.wait(5)
    with pytest.raises(OperationalError) as caught:
        retry_transaction(engine, _bump, DbRetryPolicy(retries=1, lock_wait_timeout=1, backoff=0.1))
    holder.join()
    assert error_code(caught.value) == 1205
    assert _n(engine) == 0


def test_real_deadlock_is_retried(engine: Engine) -> None:
    ready, go = threading.Event(), threading.Event()

    def other_work(conn: Connection) -> None:
        _bump(conn, 2)
        ready.set()
        go.wait(5)
        time.sleep(0.3)
        _bump(conn, 1)

    policy = DbRetryPolicy(retries=3, lock_wait_timeout=10, backoff=0.1)
    thread = threading.Thread(target=retry_transaction, args=(engine, other_work, policy))
    thread.start()
    ready.wait(5)
    attempts: list[int] = []

    def work(conn: Connection) -> None:
        attempts.append(1)
        _bump(conn, 1)
        go.set()
        time.sleep(0.1)
        _bump(conn, 2)

    retry_transaction(engine, work, policy)
    thread.join()
    assert len(attempts) <= 2  # whichever side InnoDB picked as victim was redone
    assert _n(engine, 1) == 2 and _n(engine, 2) == 2


def test_killed_connection_is_retried_on_a_new_one(engine: Engine) -> None:
    killer = make_engine(SERVER + "/nova_audit_dbretry", "killer")
    ids: list[int] = []

    def work(conn: Connection) -> None:
        ids.append(int(conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar()))
        _bump(conn)
        if len(ids) == 1:
            with killer.connect() as k:
                k.execute(sa.text(f"KILL {ids[0]}"))
            conn.execute(sa.text("SELECT 1"))

    retry_transaction(engine, work, DbRetryPolicy(retries=2, backoff=0.1))
    killer.dispose()
    assert len(ids) == 2 and ids[0] != ids[1]
    assert _n(engine) == 1
