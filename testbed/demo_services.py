"""What `make demo` leaves running, recorded in .demo/demo.json, and `make demo-down`.

The demo's processes outlive it: the test bed (MariaDB databases, Placement),
nova-api, Cinder (api and volume) and the Airflow stack (airflow_stack.launch).
Each is recorded as soon as it starts, so `teardown` also cleans up after a demo
that died half-way; a new demo calls it first.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from testbed import airflow_stack, nova_api, services
from testbed import cinder as cinder_bed
from testbed.airflow_env import REPO
from testbed.bed import down

DEMO_DIR = REPO / ".demo"
BED_DIR = DEMO_DIR / "bed"
AIRFLOW_HOME = DEMO_DIR / "airflow"
STATE = DEMO_DIR / "demo.json"


def record(**entries: Any) -> None:
    """Add entries (JSON-able) to the demo's state file."""
    state = json.loads(STATE.read_text()) if STATE.exists() else {}
    state.update(entries)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(state, indent=2, default=str) + "\n")


def record_nova(api: nova_api.NovaAPI) -> None:
    record(nova_api=services.nova_record(api))


def record_cinder(cinder: cinder_bed.Cinder) -> None:
    record(cinder=services.cinder_record(cinder))


def teardown() -> list[str]:
    """Stop everything a demo started (Airflow first: its tasks use the bed), drop its
    databases and remove .demo/. Idempotent; returns what it stopped."""
    state = json.loads(STATE.read_text()) if STATE.exists() else {}
    stopped = airflow_stack.stop_recorded(AIRFLOW_HOME) if AIRFLOW_HOME.exists() else []
    stopped += services.stop_recorded(state)
    if BED_DIR.exists():
        stopped += [item for item in down(BED_DIR) if not item.startswith("/")]  # not files
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    return stopped
