"""An Airflow home for the demo and the tests: SQLite metadata DB, this repo's dags/.

Airflow reads its settings from the environment when it is first imported, so
callers build the environment here and run `airflow` in a subprocess (or set
it before their first `import airflow`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    result = subprocess.run(  # noqa: S603 - fixed argv, our own airflow script
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
