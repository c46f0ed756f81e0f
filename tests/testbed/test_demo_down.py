"""`make demo-down`'s cleanup of a detached Airflow stack (airflow_stack.stop_recorded).

Stand-in services, not Airflow (which takes a minute to start): each runs in a
session of its own, as `launch` starts them, with a child that moves into a
process group of its own, as the Task SDK does with every task process.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import airflow_stack

CHILD = "import os, time; os.setpgid(0, 0); time.sleep(300)"
SERVICE = (
    "import subprocess, sys, time\n"
    f"child = subprocess.Popen([sys.executable, '-c', {CHILD!r}])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(300)\n"
)


def service() -> tuple[subprocess.Popen, int]:
    """A stand-in service in its own session, and the pid of its task-like child."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVICE], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def databases(name: str) -> list[dict]:
    server, _ = airflow_stack._postgres_database(Path("/"))
    engine = airflow_stack.sa.create_engine(f"{server}/postgres")
    try:
        with engine.connect() as conn:
            sql = airflow_stack.sa.text("SELECT datname FROM pg_database WHERE datname = :n")
            return [dict(r._mapping) for r in conn.execute(sql, {"n": name})]
    finally:
        engine.dispose()


def alive(pid: int) -> bool:
    """Running and not a zombie: the child's parent is gone and nothing here reaps it."""
    fields = airflow_stack._stat(pid)
    return fields is not None and fields[0] != "Z"


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_demo_down_stops_every_session_member_and_drops_the_database(
    tmp_path: Path, bystander: subprocess.Popen
) -> None:
    server, database = airflow_stack._postgres_database(tmp_path)
    airflow_stack._postgres(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    airflow_stack._postgres(server, f'CREATE DATABASE "{database}"')
    services = {name: service() for name in ("api-server", "scheduler")}
    start = airflow_stack._start_time(bystander.pid)
    assert start is not None
    state = {
        "home": str(tmp_path),
        "port": 0,
        "server": server,
        "database": database,
        "pids": {name: proc.pid for name, (proc, _) in services.items()},
        "starts": {name: airflow_stack._start_time(p.pid) for name, (p, _) in services.items()},
    }
    # A recorded pid that now belongs to a newer process (a recycled pid): spared.
    state["pids"]["dag-processor"] = bystander.pid
    state["starts"]["dag-processor"] = start - 1
    airflow_stack._write_state(tmp_path, state)

    stopped = airflow_stack.stop_recorded(tmp_path)

    for proc, child in services.values():
        assert proc.wait(timeout=10) is not None
        assert not alive(child), f"task-like child {child} survived"
        assert f"airflow process pid {child}" in stopped
    assert bystander.poll() is None, "a process that merely reuses a recorded pid was killed"
    assert databases(database) == []
    assert not (tmp_path / airflow_stack.STACK_STATE).exists()
    assert airflow_stack.stop_recorded(tmp_path) == []  # nothing recorded, nothing done
