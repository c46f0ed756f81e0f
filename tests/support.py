"""Shared helpers for tests that run tasks against a test bed."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from nova_audit_ops import registry, runner
from nova_audit_ops.engine.report import Report
from nova_audit_ops.engine.state import MemoryStateStore, StateStore

# The bed's SQL helpers (testbed.db), under the names the tests call.
from testbed.configs import config_with as config_with
from testbed.db import engine as engine
from testbed.db import execute as execute
from testbed.db import query as query
from testbed.snapshot import snapshot_databases

REPO = Path(__file__).resolve().parents[1]
snapshot = snapshot_databases  # checksums of every table of the API DB and every cell DB


def cell_url(bed: Any, name: str) -> str:
    for cell in bed.cells:
        if cell.name == name:
            return str(cell.url)
    raise KeyError(name)


def run(
    bed: Any,
    task: str,
    *,
    state: StateStore | None = None,
    reference_time: dt.datetime | None = None,
    config_path: str | None = None,
    **params: Any,
) -> Report:
    """Run a task over all chosen cells in-process, as the CLI does."""
    cfg = registry.load_config(config_path or bed.config_path)
    ctx = runner.open_context(
        task,
        cfg,
        params,
        state=state if state is not None else MemoryStateStore(),
        reference_time=reference_time,
    )
    try:
        return runner.run_all(ctx)
    finally:
        ctx.engines.dispose()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the nova-audit console script as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "nova_audit_ops.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def cli_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    result = cli(*args, "--json", env=env)
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)
