"""An Airflow home for the demo and the tests: SQLite metadata DB, this repo's dags/.

Airflow reads its settings from the environment when it is first imported, so
callers build the environment here and run `airflow` in a subprocess (or set
it before their first `import airflow`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from nova_audit_ops.engine.report import Report

REPO = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO / "dags"


def airflow_env(home: str | Path, nova_audit_config: str | Path | None = None) -> dict[str, str]:
    """Environment variables for an Airflow whose state lives under `home`."""
    home = Path(home).resolve()
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__API__HOST": "127.0.0.1",
    }
    if nova_audit_config is not None:
        env["NOVA_AUDIT_CONFIG"] = str(Path(nova_audit_config).resolve())
    return env


def airflow_bin() -> str:
    """The `airflow` script of the interpreter running this code."""
    return str(Path(sys.executable).with_name("airflow"))


def run_airflow(
    env: dict[str, str], *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the airflow CLI with `env` on top of ours; output captured."""
    full = {**os.environ, **env}
    result = subprocess.run(
        [airflow_bin(), *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"airflow {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def migrate(env: dict[str, str]) -> None:
    """Create or upgrade the metadata DB (idempotent)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    run_airflow(env, "db", "migrate")


def _latest_run(db: sqlite3.Connection, dag_id: str) -> int:
    row = db.execute("SELECT max(id) FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchone()
    if row is None or row[0] is None:
        raise RuntimeError(f"{dag_id} has no run in the metadata DB")
    return int(row[0])


def summary_report(home: str | Path, dag_id: str) -> Report:
    """The summary task's XCom of the DAG's latest run, read from the metadata DB."""
    with sqlite3.connect(Path(home) / "airflow.db") as db:
        run_id = _latest_run(db, dag_id)
        row = db.execute(
            "SELECT value FROM xcom WHERE dag_run_id = ? AND task_id = 'summary' "
            "AND key = 'return_value'",
            (run_id,),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"the latest run of {dag_id} left no summary report")
    return report_from_xcom(row[0])


def report_from_xcom(value: Any) -> Report:
    """A summary task's XCom value (JSON text, possibly encoded twice) as a Report."""
    while isinstance(value, str | bytes):
        value = json.loads(value)
    return Report.from_dict(value)


def task_states(home: str | Path, dag_id: str) -> dict[str, str | None]:
    """`task_id[map label]` -> state for the DAG's latest run."""
    with sqlite3.connect(Path(home) / "airflow.db") as db:
        run_id = _latest_run(db, dag_id)
        rows = db.execute(
            "SELECT ti.task_id, ti.map_index, ti.rendered_map_index, ti.state "
            "FROM task_instance ti JOIN dag_run r ON r.run_id = ti.run_id AND r.dag_id = ti.dag_id "
            "WHERE r.id = ?",
            (run_id,),
        ).fetchall()
    states: dict[str, str | None] = {}
    for task_id, map_index, label, state in rows:
        key = task_id if map_index < 0 else f"{task_id}[{label or map_index}]"
        states[key] = state
    return states


def run_state(home: str | Path, dag_id: str) -> str:
    """The state of the DAG's latest run."""
    with sqlite3.connect(Path(home) / "airflow.db") as db:
        run_id = _latest_run(db, dag_id)
        row = db.execute("SELECT state FROM dag_run WHERE id = ?", (run_id,)).fetchone()
    return str(row[0])
