"""A running Airflow for tests: api-server, dag-processor, scheduler (and Celery worker).

`airflow dags test` runs a DAG in one process; operators use the scheduler:
backfills, Asset-triggered runs, param validation at trigger time. This starts
the Airflow 3 services with the api-server on a free loopback port (task
processes reach it through the execution API) and stops them as a whole.

The metadata DB is always a PostgreSQL database of the stack's own on the
machine's server, dropped afterwards: with four processes writing at once,
SQLite answers "database is locked" to whichever loses the race (a backfill
create did, in CI). The executor is one of

- `local`: LocalExecutor;
- `celery`: the production shape of docker-compose.yaml — CeleryExecutor with a
  Celery worker and the machine's Redis as broker.

The nova-audit config they read is `home/nova-audit.conf`, so a test can point
them at its bed by copying a file. The UI and the API have one user, `admin`
(Simple auth manager, role admin) with a password of the stack's own
(`stack.password`), so a browser test can log in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from nova_audit_ops.engine.report import Report
from testbed.airflow_env import (
    airflow_bin,
    airflow_env,
    migrate,
    report_from_xcom,
    run_airflow,
)

POSTGRES_ENV = "NOVA_AUDIT_TESTBED_POSTGRES"
DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432"
REDIS_ENV = "NOVA_AUDIT_TESTBED_REDIS"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
CELERY_WORKER = ("celery-worker", ["celery", "worker", "--concurrency", "2", "--skip-serve-logs"])

ADMIN = "admin"

SERVICES = (
    ("api-server", ["api-server", "--host", "127.0.0.1", "--port", "{port}"]),
    ("dag-processor", ["dag-processor"]),
    ("scheduler", ["scheduler", "--skip-serve-logs"]),
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AirflowStack:
    home: Path
    env: dict[str, str]
    services: list[tuple[str, list[str]]] = field(default_factory=lambda: list(SERVICES))
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The api-server's (and the UI's) base URL."""
        return f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}"

    @property
    def password(self) -> str:
        """The password of the `admin` user of the UI."""
        path = Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        return str(json.loads(path.read_text())[ADMIN])

    @property
    def config_path(self) -> Path:
        return self.home / "nova-audit.conf"

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_airflow(self.env, *args, check=check)

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Rows from the stack's metadata DB."""
        engine = sa.create_engine(
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], poolclass=sa.pool.NullPool
        )
        try:
            with engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, oldest logical date first (intervals as ISO text)."""
        rows = self.query(
            "SELECT id, run_id, run_type, state, data_interval_start, data_interval_end "
            "FROM dag_run WHERE dag_id = :d ORDER BY logical_date, id",
            d=dag_id,
        )
        for row in rows:
            for key in ("data_interval_start", "data_interval_end"):
                if row[key] is not None:
                    row[key] = row[key].strftime("%Y-%m-%d %H:%M:%S")
        return rows

    def summary(self, run_id: int) -> Report:
        """The summary task's report of one run."""
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_run_id = :r AND task_id = 'summary' "
            "AND key = 'return_value'",
            r=run_id,
        )
        assert rows, f"run {run_id} left no summary"
        return report_from_xcom(rows[0]["value"])

    def wait_for_runs(
        self, dag_id: str, count: int, run_type: str | None = None, timeout: float = 300
    ) -> list[dict[str, Any]]:
        """Wait until `count` runs (of `run_type`) have finished; return them."""
        deadline = time.monotonic() + timeout
        while True:
            runs = [r for r in self.runs(dag_id) if run_type is None or r["run_type"] == run_type]
            done = [r for r in runs if r["state"] in ("success", "failed")]
            if len(done) >= count:
                return done
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id}: {len(done)} of {count} runs finished: {runs}")
            self._check_alive()
            time.sleep(1)

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        """Wait until the dag-processor has serialized these DAGs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                found = {r["dag_id"] for r in self.query("SELECT dag_id FROM serialized_dag")}
            except sa.exc.SQLAlchemyError:
                found = set()
            if set(dag_ids) <= found:
                return
            time.sleep(1)
        raise TimeoutError(f"DAGs not serialized within {timeout:.0f}s: {dag_ids}")

    def token(self, timeout: float = 120) -> str:
        """A JWT for `admin` from the Simple auth manager (`POST /auth/token`), as an
        external client gets it; waits for the api-server to answer."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                response = requests.post(
                    f"{self.url}/auth/token",
                    json={"username": ADMIN, "password": self.password},
                    timeout=30,
                )
                response.raise_for_status()
                return str(response.json()["access_token"])
            except (OSError, ValueError, KeyError, requests.RequestException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def rest(self, method: str, path: str, body: Any = None) -> requests.Response:
        """One call to the REST API (`/api/v2/...`) with a fresh bearer token."""
        return requests.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=60,
        )

    def _check_alive(self) -> None:
        for (name, _), proc in zip(self.services, self.procs, strict=False):
            if proc.poll() is not None:
                log = (self.home / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{log}")

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _postgres_database(home: Path) -> tuple[str, str]:
    """(server URL, database name) for a stack's own PostgreSQL database."""
    server = os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES
    name = "nat_airflow_" + hashlib.sha256(str(home).encode()).hexdigest()[:8]
    return server, name


def _postgres(server: str, statement: str) -> None:
    engine = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def _stack_env(home: Path, port: int, metadata_url: str) -> dict[str, str]:
    """The environment every service of a stack in `home` runs with."""
    env = airflow_env(home, home / "nova-audit.conf")
    env.update(
        {
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        }
    )
    return env


def _fresh_database(server: str, database: str) -> None:
    _postgres(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    _postgres(server, f'CREATE DATABASE "{database}"')


def _spawn(stack: AirflowStack, name: str, args: list[str]) -> subprocess.Popen[bytes]:
    """Start one service in a session of its own, its output in home/<name>.log."""
    port = stack.env["AIRFLOW__API__PORT"]
    argv = [airflow_bin(), *(a.format(port=port) for a in args)]
    with open(stack.home / f"{name}.log", "ab") as log:
        return subprocess.Popen(
            argv,
            env={**os.environ, **stack.env},
            cwd=stack.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextlib.contextmanager
def running(home: Path, executor: str = "local") -> Iterator[AirflowStack]:
    """An Airflow with a fresh PostgreSQL metadata DB, stopped and dropped on exit."""
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server, database = _postgres_database(home)
    env = _stack_env(home, port, f"{server}/{database}")
    env.update(
        {
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        }
    )
    (home / "passwords.json").write_text(json.dumps({ADMIN: secrets.token_urlsafe(12)}))
    services = list(SERVICES)
    _fresh_database(server, database)
    if executor == "celery":
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": os.environ.get(REDIS_ENV) or DEFAULT_REDIS,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+"
                + f"{server}/{database}".replace("+psycopg2", ""),
            }
        )
        services.append(CELERY_WORKER)
    stack = AirflowStack(home, env, services)
    try:
        migrate(env)
        for name, args in services:
            stack.procs.append(_spawn(stack, name, args))
        yield stack
    finally:
        stack.stop()
        _postgres(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# ------------------------------------------------------------------ detached stacks
# `make demo` leaves its Airflow running after it returns and `make demo-down` stops it
# from another process: the stack is recorded in home/stack.json (pids, port, database),
# written before anything starts so a demo that dies half-way is still cleaned up.

STACK_STATE = "stack.json"


def prepare(home: Path, settings: dict[str, str] | None = None) -> AirflowStack:
    """A migrated, not yet started LocalExecutor stack in `home` (fresh PostgreSQL DB).

    `settings` are extra AIRFLOW__* variables; `launch()` starts the services.
    """
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server, database = _postgres_database(home)
    _write_state(home, {"home": str(home), "port": port, "server": server, "database": database})
    env = {**_stack_env(home, port, f"{server}/{database}"), **(settings or {})}
    _fresh_database(server, database)
    migrate(env)
    return AirflowStack(home, env)


def stack_port(stack: AirflowStack) -> int:
    return int(stack.env["AIRFLOW__API__PORT"])


def launch(stack: AirflowStack, only: tuple[str, ...] | None = None) -> None:
    """Start the services of a `prepare`d stack (all not yet started, or those named),
    detached: they outlive this process (own sessions, output in home/<service>.log)."""
    state = _read_state(stack.home)
    started, waiting = stack.services[: len(stack.procs)], stack.services[len(stack.procs) :]
    new = [s for s in waiting if only is None or s[0] in only]
    stack.services = started + new + [s for s in waiting if s not in new]  # procs pair in order
    for name, args in new:
        proc = _spawn(stack, name, args)
        stack.procs.append(proc)
        state.setdefault("pids", {})[name] = proc.pid
        state.setdefault("starts", {})[name] = _start_time(proc.pid)
        _write_state(stack.home, state)


def stop_recorded(home: Path) -> list[str]:
    """Stop every process of the stack recorded in `home` and drop its database.

    A service's processes are its session (started with start_new_session): task
    processes that the Task SDK moves into process groups of their own stay in it,
    and setproctitle, which rewrites their command lines and environments, leaves it
    alone. SIGTERM to all of them, SIGKILL to what is left after 20 s. Returns what it
    stopped; nothing recorded, nothing done.
    """
    home = Path(home).resolve()
    path = home / STACK_STATE
    if not path.exists():
        return []
    state = _read_state(home)
    sessions = [(pid, state["starts"][name]) for name, pid in state.get("pids", {}).items()]
    stopped = [f"airflow {name} pid {pid}" for name, pid in state.get("pids", {}).items()]
    members = _members(sessions)
    stopped += [f"airflow process pid {pid}" for pid in members if pid not in dict(sessions)]
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while members and time.monotonic() < deadline:
            time.sleep(0.2)
            members = _members(sessions)
    _postgres(state["server"], f'DROP DATABASE IF EXISTS "{state["database"]}" WITH (FORCE)')
    stopped.append(f"PostgreSQL database {state['database']}")
    path.unlink()
    return stopped


def _write_state(home: Path, state: dict[str, Any]) -> None:
    (home / STACK_STATE).write_text(json.dumps(state, indent=2) + "\n")


def _read_state(home: Path) -> dict[str, Any]:
    return dict(json.loads((home / STACK_STATE).read_text()))


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat fields after the command name: state, ppid, pgrp, session, ...;
    None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None  # field 22 of stat: start time in ticks


def _members(sessions: list[tuple[int, int]]) -> list[int]:
    """Live (not zombie) processes of these sessions, given as (leader pid, its start
    time); a session whose leader pid now belongs to a newer process is not ours."""
    ours = {sid for sid, started in sessions if _start_time(sid) in (None, started)}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[3]) in ours:
                found.append(int(entry.name))
    return found
