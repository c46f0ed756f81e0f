"""Database faults made by MariaDB itself: a second session locks, deadlocks or KILLs.

No mock and no proxy: each fault is a real session on the bed's MariaDB, run
in a thread while the task runs, so the task meets the very errors a busy
Galera cluster gives it (1205, 1213, 2013).

Fault kinds (`KINDS`, the names the fault matrix uses), each `inject(kind, target)`:

- "lock_released": lock `target.hold` (SELECT ... FOR UPDATE); once the task
  waits on it, keep it `seconds` more, then roll back: shorter than the task's
  db_lock_wait_timeout, the task waits and goes on. The sessions seen waiting
  on the lock are noted in `waiters` (for every kind).
- "lock_held": the same lock held until the block ends (past the task's lock
  wait budget: the task gets 1205 on every try).
- "deadlock": lock `target.hold`; once the task's transaction waits on it
  (INNODB_LOCK_WAITS names this session as the blocker), request
  `target.then`, a row the task's transaction already holds. InnoDB's
  deadlock detector rolls back the lighter transaction; a temporary-table
  ballast makes this session the heavier one, so the victim is the task (1213).
- "kill": lock `target.hold`; once the task waits on it, `KILL CONNECTION` its
  session (the client sees 2013 mid-batch), then release the lock.

The fault session connects as the server's admin (testbed.backends.admin_url)
to the target's database. A short `innodb_lock_wait_timeout` is the task's own
session setting, given by `lock_wait_knobs()` ([audit] db_lock_wait_timeout,
db_retries); the server's GLOBAL value is never touched (other beds share it).

    with inject("deadlock", Target(Rows(url, "compute_nodes", "id = 7"),
                                   Rows(url, "compute_nodes", "id = 4"))) as fault:
        report = run_the_task()
    assert fault.deadlocks == 1 and fault.victim == "task"

Every fault object counts what happened (`waiters`, `killed`, `deadlocks`,
`victim`, `locked`), so a test asserts the fault really hit the task; an
unexpected error of the fault session is raised when the block ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from testbed.backends import admin_url
from testbed.db import make_engine

KINDS = ("lock_released", "lock_held", "deadlock", "kill")
FAULT_LOCK_WAIT = 20  # seconds the fault session itself may wait (for `then`)
BALLAST_ROWS = 20000  # rows the fault session writes to outweigh a task's batch
WAITER_TIMEOUT = 30.0  # seconds to wait for the task to block on `hold`
# InnoDB refreshes its information_schema cache only when it was not read for 0.1 s:
# polled faster, it would never show the task's new lock wait.
POLL = 0.15
WAITERS = sa.text(
    "SELECT r.trx_mysql_thread_id AS id FROM information_schema.innodb_lock_waits w "
    "JOIN information_schema.innodb_trx r ON r.trx_id = w.requesting_trx_id "
    "JOIN information_schema.innodb_trx b ON b.trx_id = w.blocking_trx_id "
    "WHERE b.trx_mysql_thread_id = CONNECTION_ID()"
)


@dataclass(frozen=True)
class Rows:
    """Rows of one table of one bed database: `SELECT ... WHERE <where>` (a gap if none)."""

    url: str
    table: str
    where: str
    params: dict[str, Any] = field(default_factory=dict)

    def lock(self, conn: sa.Connection) -> int:
        """Lock the rows (or the gap where they would be) in `conn`'s transaction."""
        sql = f"SELECT * FROM `{self.table}` WHERE {self.where} FOR UPDATE"
        return len(conn.execute(sa.text(sql), self.params).all())


@dataclass(frozen=True)
class Target:
    """Where a fault hits a task: the row it will wait on, and one it holds by then."""

    hold: Rows
    then: Rows | None = None


def lock_wait_knobs(seconds: int, retries: int) -> dict[str, str]:
    """The [audit] values that give the task a short lock wait and few retries."""
    return {"db_lock_wait_timeout": str(seconds), "db_retries": str(retries)}


class Fault:
    """One fault session in a thread: what it did, and its unexpected error."""

    def __init__(self, kind: str, target: Target, seconds: float | None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown database fault {kind!r}; known: {', '.join(KINDS)}")
        if kind == "deadlock" and target.then is None:
            raise ValueError("a deadlock needs target.then, a row the task holds")
        self.kind, self.target, self.seconds = kind, target, seconds
        self.locked = 0  # rows `hold` matched (0 for a gap lock)
        self.waiters: list[int] = []  # task sessions seen waiting on this one
        self.killed: list[int] = []
        self.deadlocks = 0
        self.victim: str | None = None  # "task" or "fault" after a deadlock
        self.error: BaseException | None = None
        self._ready, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"db-fault-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(WAITER_TIMEOUT):
            raise TimeoutError(f"{self.kind}: the fault session could not lock {self.target.hold}")
        self._raise()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAITER_TIMEOUT + FAULT_LOCK_WAIT)
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _main(self) -> None:
        engine = make_engine(as_admin(self.target.hold.url))
        try:
            with engine.connect() as conn:
                self._run(conn)
        except BaseException as exc:  # handed to the test thread by stop()
            self.error = exc
        finally:
            self._ready.set()
            engine.dispose()

    def _run(self, conn: sa.Connection) -> None:
        conn.execute(sa.text(f"SET SESSION innodb_lock_wait_timeout = {FAULT_LOCK_WAIT}"))
        conn.commit()
        with conn.begin() as trans:
            if self.kind == "deadlock":
                add_ballast(conn)
            self.locked = self.target.hold.lock(conn)
            self._ready.set()
            if self.kind in ("deadlock", "kill"):
                self._strike(conn)
            else:
                self._watch(conn)
            trans.rollback()

    def _watch(self, conn: sa.Connection) -> None:
        """Hold the lock, noting who waits on it; released `seconds` after the first
        waiter came (lock_released) or when the block ends (lock_held)."""
        end = None
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            for waiter in conn.execute(WAITERS).scalars():
                if waiter not in self.waiters:
                    self.waiters.append(int(waiter))
            if end is None and self.waiters and self.kind == "lock_released":
                end = time.monotonic() + (self.seconds or 0)
            left = POLL if end is None else min(POLL, max(end - time.monotonic(), 0))
            self._stop.wait(left)

    def _strike(self, conn: sa.Connection) -> None:
        """Wait for the task to block on this session, then deadlock or kill it."""
        waiter = wait_for_waiter(conn, self._stop)
        if waiter is None:
            return
        self.waiters.append(waiter)
        if self.kind == "kill":
            kill_connection(conn, waiter)
            self.killed.append(waiter)
            return
        assert self.target.then is not None
        try:
            self.target.then.lock(conn)
        except OperationalError as exc:
            if _code(exc) != 1213:
                raise
            self.deadlocks, self.victim = 1, "fault"
            return
        self.deadlocks, self.victim = 1, "task"


def as_admin(url: str) -> str:
    """The same database as the server's admin: a bed's own user may neither read
    InnoDB's lock tables (PROCESS) nor KILL another user's session."""
    database = make_url(url).database
    return make_url(admin_url()).set(database=database).render_as_string(hide_password=False)


def _code(exc: OperationalError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def add_ballast(conn: sa.Connection, rows: int = BALLAST_ROWS) -> None:
    """Make this transaction heavy (undo records in a temporary table, gone at rollback)."""
    conn.execute(
        sa.text("CREATE TEMPORARY TABLE IF NOT EXISTS fault_ballast (id INT) ENGINE=InnoDB")
    )
    conn.execute(sa.text(f"INSERT INTO fault_ballast SELECT seq FROM seq_1_to_{int(rows)}"))


def wait_for_waiter(
    conn: sa.Connection, stop: threading.Event, timeout: float = WAITER_TIMEOUT
) -> int | None:
    """The connection id of a session waiting for a lock this session holds (None: none came)."""
    end = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < end:
        ids = conn.execute(WAITERS).scalars().all()
        if ids:
            return int(ids[0])
        time.sleep(POLL)
    return None


def kill_connection(conn: sa.Connection, connection_id: int) -> None:
    """`KILL CONNECTION id`: the client of that session sees 2013 on its next read."""
    conn.execute(sa.text(f"KILL CONNECTION {int(connection_id)}"))


@contextmanager
def inject(kind: str, target: Target, seconds: float | None = None) -> Iterator[Fault]:
    """Run fault `kind` against `target` for the block (see the module docstring)."""
    fault = Fault(kind, target, seconds)
    fault.start()
    try:
        yield fault
    finally:
        fault.stop()


def hold_rows(rows: Rows, seconds: float | None = None) -> Any:
    """Lock `rows`; release them `seconds` after a session first waits (None: at the end)."""
    return inject("lock_released" if seconds else "lock_held", Target(rows), seconds)
