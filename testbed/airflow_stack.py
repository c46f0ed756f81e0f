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
them at its bed by copying a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
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

    @property
    def api_url(self) -> str:
        """The api-server's root on loopback (REST API under /api/v2, tokens under /auth)."""
        return f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}"

    def token(self, username: str = "admin", timeout: float = 120) -> str:
        """A JWT from the Simple auth manager (`POST /auth/token`), as an external client gets it.

        The stack keeps Airflow's default auth (`[core] simple_auth_manager_users` =
        admin:admin); the api-server writes the generated passwords into
        AIRFLOW_HOME when it starts, so this waits for the file and the server.
        """
        passwords = self.home / "simple_auth_manager_passwords.json.generated"
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                password = json.loads(passwords.read_text())[username]
                response = requests.post(
                    f"{self.api_url}/auth/token",
                    json={"username": username, "password": password},
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
            self.api_url + path,
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


@contextlib.contextmanager
def running(home: Path, executor: str = "local") -> Iterator[AirflowStack]:
    """An Airflow with a fresh PostgreSQL metadata DB, stopped and dropped on exit."""
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = airflow_env(home, home / "nova-audit.conf")
    env.update(
        {
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        }
    )
    services = list(SERVICES)
    server, database = _postgres_database(home)
    _postgres(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    _postgres(server, f'CREATE DATABASE "{database}"')
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"{server}/{database}"
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
    full_env = {**os.environ, **env}
    try:
        migrate(env)
        for name, args in services:
            argv = [airflow_bin(), *(a.format(port=port) for a in args)]
            with open(home / f"{name}.log", "ab") as log:
                stack.procs.append(
                    subprocess.Popen(
                        argv,
                        env=full_env,
                        cwd=home,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield stack
    finally:
        stack.stop()
        _postgres(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
