"""A running Airflow for tests: api-server, dag-processor and scheduler (LocalExecutor).

`airflow dags test` runs a DAG in one process; operators use the scheduler:
backfills, Asset-triggered runs, param validation at trigger time. This starts
the three Airflow 3 services on an SQLite metadata DB under `home`, with the
api-server on a free loopback port (task processes reach it through the
execution API), and stops them as a whole. The nova-audit config they read is
`home/nova-audit.conf`, so a test can point them at its bed by copying a file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.airflow_env import airflow_bin, airflow_env, migrate, run_airflow

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
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.home / "nova-audit.conf"

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_airflow(self.env, *args, check=check)

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.home / "airflow.db", timeout=30)

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, oldest logical date first."""
        with contextlib.closing(self.db()) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT id, run_id, run_type, state, data_interval_start, data_interval_end "
                "FROM dag_run WHERE dag_id = ? ORDER BY logical_date, id",
                (dag_id,),
            ).fetchall()
        return [dict(r) for r in rows]

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
            with contextlib.closing(self.db()) as db:
                try:
                    found = {r[0] for r in db.execute("SELECT dag_id FROM serialized_dag")}
                except sqlite3.OperationalError:
                    found = set()
            if set(dag_ids) <= found:
                return
            time.sleep(1)
        raise TimeoutError(f"DAGs not serialized within {timeout:.0f}s: {dag_ids}")

    def _check_alive(self) -> None:
        for (name, _), proc in zip(SERVICES, self.procs, strict=False):
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


@contextlib.contextmanager
def running(home: Path) -> Iterator[AirflowStack]:
    """An Airflow with a fresh metadata DB under `home`, stopped on exit."""
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
    migrate(env)
    stack = AirflowStack(home, env)
    full_env = {**os.environ, **env}
    try:
        for name, args in SERVICES:
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
