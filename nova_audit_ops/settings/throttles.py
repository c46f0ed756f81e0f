"""Throttles: how gently a writing task treats the running cloud (docs/configuration.md, "Pacing").

Each is a param and a CLI option of the tasks that list it; the engine's pacer
applies them between batches.
"""

from __future__ import annotations

from nova_audit_ops.settings.knobs import Knob

BATCH_PAUSE_MS = Knob(
    "batch_pause_ms",
    "int",
    0,
    "Milliseconds to pause after each batch, leaving the database to the cloud (0 = none).",
    minimum=0,
    maximum=600_000,
    rerun=False,
)
MAX_ROWS_PER_SECOND = Knob(
    "max_rows_per_second",
    "int",
    0,
    "Ceiling on rows handled per second over the run; pauses between batches (0 = none).",
    minimum=0,
    maximum=10_000_000,
    rerun=False,
)
MAX_REQUESTS_PER_SECOND = Knob(
    "max_requests_per_second",
    "int",
    0,
    "Ceiling on Placement, Nova and Cinder requests per second over the run; pauses "
    "between batches (0 = none).",
    minimum=0,
    maximum=100_000,
    rerun=False,
)
MAX_REPLICA_LAG = Knob(
    "max_replica_lag",
    "int",
    0,
    "Seconds a watched replica ([audit] replica_connections) may lag before the run waits "
    "between batches, up to its deadline (0 = no check).",
    minimum=0,
    maximum=24 * 3600,
    rerun=False,
)
DB_THROTTLES: tuple[Knob, ...] = (BATCH_PAUSE_MS, MAX_ROWS_PER_SECOND)
API_THROTTLES: tuple[Knob, ...] = (*DB_THROTTLES, MAX_REQUESTS_PER_SECOND)
# Tasks whose batches write rows that replicas must apply: throttled and lag-guarded.
REPLICA_PACED: tuple[Knob, ...] = (*DB_THROTTLES, MAX_REPLICA_LAG)
