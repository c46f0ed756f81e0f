"""What every task declares about itself: name, family, knobs, shipped defaults.

The DAG params, the CLI options and the config keys are all generated from a
task's knobs, so the one-shot command and the DAG offer the same settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from nova_audit_ops.settings.access import DbAccess, ServiceRole
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.validators import (
    check_before,
    check_days,
    check_dotted_path,
    check_json_object,
    check_schedule,
    check_timezone,
    check_urls,
    check_window,
)

MODES = ("audit", "heal")


MODE = Knob(
    "mode",
    "choice",
    "audit",
    "audit reports what would change and writes nothing; heal repairs.",
    choices=MODES,
    rerun=False,
)
AUDIT_ONLY = Knob(
    "mode",
    "choice",
    "audit",
    "This task only reports: audit is its only mode.",
    choices=("audit",),
    rerun=False,
)
CELLS = Knob(
    "cells",
    "list",
    [],
    "Cell names or uuids to work on; empty means every cell.",
)
BATCH_SIZE = Knob(
    "batch_size",
    "int",
    1000,
    "Objects handled per batch (one transaction per batch).",
    minimum=1,
    maximum=100_000,
    rerun=False,
)
TIME_BUDGET = Knob(
    "time_budget",
    "int",
    3600,
    "Seconds a run may work before it stops between batches (0 = no limit).",
    minimum=0,
    maximum=7 * 24 * 3600,
    rerun=False,
)
MAX_BATCHES = Knob(
    "max_batches",
    "int",
    0,
    "Stop after this many batches per cell and resume next run (0 = no limit).",
    minimum=0,
    maximum=1_000_000,
    rerun=False,
)
COMMON_KNOBS: tuple[Knob, ...] = (MODE, CELLS, BATCH_SIZE, MAX_BATCHES, TIME_BUDGET)
# Only on tasks with range support (TaskSpec.ranges): where a DAG splits a big cell.
FANOUT_INSTANCES = Knob(
    "fanout_instances",
    "int",
    50_000,
    "DAG runs split a cell with more rows than this into id ranges, one task each "
    "(0 = never split; a plan beyond 64 ranges per cell uses bigger ranges). "
    "The CLI walks each cell whole, which gives the same result.",
    minimum=0,
    maximum=100_000_000,
    rerun=False,
)

# One writer per task and cell: the runner's named lock ([audit] only, never a param,
# so no DAG's params change). A second run waits this long, then reports the holder.
TASK_LOCK_WAIT = Knob(
    "task_lock_wait",
    "int",
    5,
    "Seconds a heal run waits for another run's lock on the same task and cell.",
    param=False,
    minimum=0,
    maximum=3600,
)

GLOBAL_KNOBS: tuple[Knob, ...] = (
    Knob(
        "state_dir",
        "str",
        os.path.join(
            os.environ.get("XDG_STATE_HOME", os.path.expanduser("~/.local/state")), "nova-audit"
        ),
        "Directory for the CLI's resume markers (DAG runs use Airflow Variables).",
        param=False,
    ),
    Knob(
        "service_retries",
        "int",
        3,
        "Retries of one Placement, Nova API or Cinder request after a transient fault "
        "(429, 5xx, connection reset, timeout), where repeating it is safe.",
        param=False,
        minimum=0,
        maximum=10,
    ),
    Knob(
        "service_retry_delay_ms",
        "int",
        500,
        "Milliseconds before the first retry of a service request; doubles on each further one.",
        param=False,
        minimum=0,
        maximum=60_000,
    ),
    Knob(
        "service_retry_max_delay",
        "int",
        10,
        "Longest pause in seconds before one retry, a server's Retry-After included.",
        param=False,
        minimum=0,
        maximum=600,
    ),
    Knob(
        "service_timeout",
        "int",
        60,
        "Seconds one service request may wait to connect or for each read "
        "(a section's own `timeout` wins).",
        param=False,
        minimum=1,
        maximum=3600,
    ),
    TASK_LOCK_WAIT,
    # Transient database faults (deadlock, lock wait timeout, lost connection, Galera).
    Knob(
        "db_retries",
        "int",
        3,
        "Times a write batch is redone in a new transaction after a transient database fault.",
        param=False,
        minimum=0,
        maximum=20,
    ),
    # nova-audit's own database account, used cloud-wide (docs/security.md).
    Knob(
        "database_user",
        "str",
        None,
        "Database user replacing the one in [api_database] connection and in every "
        "cell_mappings URL ([audit.cells] overrides keep theirs); none keeps Nova's.",
        param=False,
    ),
    Knob(
        "database_password",
        "str",
        None,
        "Password of database_user (masked like every other secret).",
        param=False,
    ),
    # The replication-lag guard (docs/configuration.md, "Replicas").
    Knob(
        "replica_connections",
        "list",
        [],
        "Comma-separated SQLAlchemy URLs of the replicas whose lag max_replica_lag bounds "
        "(every cell's; [audit.replicas] adds a cell's own). Masked like every secret.",
        param=False,
        secret=True,
        check=check_urls,
    ),
    Knob(
        "replica_poll",
        "int",
        5,
        "Seconds between two checks of a lagging replica.",
        param=False,
        minimum=1,
        maximum=300,
    ),
    Knob(
        "max_galera_recv_queue",
        "int",
        100,
        "A Galera node watched as a replica lags while its wsrep_local_recv_queue is above this.",
        param=False,
        minimum=0,
        maximum=1_000_000,
    ),
    Knob(
        "db_lock_wait_timeout",
        "int",
        30,
        "Seconds a heal write waits for a row lock (MariaDB session; 0 = server default).",
        param=False,
        minimum=0,
        maximum=3600,
    ),
)

SCHEDULE_KNOBS: tuple[Knob, ...] = (
    Knob("enabled", "bool", True, "Whether the DAG is generated at all.", param=False),
    Knob(
        "retries",
        "int",
        2,
        "Airflow retries of each task (an unreachable database is often transient).",
        param=False,
        minimum=2,
        maximum=20,
    ),
    Knob(
        "pool",
        "str",
        "default_pool",
        "Airflow pool of the DAG's tasks; a pool with few slots bounds the cells run at once.",
        param=False,
    ),
    Knob(
        "retry_delay",
        "int",
        120,
        "Seconds before the first retry; doubles on each further retry.",
        param=False,
        minimum=1,
        maximum=24 * 3600,
    ),
    Knob(
        "schedule",
        "str",
        None,
        "Cron expression or preset for the DAG; none for manual runs only.",
        param=False,
        check=check_schedule,
    ),
    Knob(
        "window",
        "str",
        None,
        "Maintenance window HH:MM-HH:MM; runs stop at its end.",
        param=False,
        check=check_window,
    ),
    Knob(
        "window_days",
        "list",
        ["*"],
        "Days the window is open (mon..sun, or *).",
        param=False,
        check=check_days,
    ),
    Knob(
        "timezone",
        "str",
        "UTC",
        "Time zone of the window.",
        param=False,
        check=check_timezone,
    ),
    Knob(
        "notifier",
        "str",
        None,
        "Dotted path of an Airflow notifier (a BaseNotifier subclass) the DAG calls when a run "
        "leaves drift or fails; none for no alerts.",
        param=False,
        check=check_dotted_path,
    ),
    Knob(
        "notifier_args",
        "str",
        None,
        "JSON object of the notifier's keyword arguments; its templated fields may use "
        "{{ nova_audit_summary }}.",
        param=False,
        check=check_json_object,
    ),
)


@dataclass(frozen=True)
class RangeSupport:
    """The table whose `id` a task's per-cell walk can be split on, and how it is filtered.

    `database` is "cell" (the cell's own database) or "api" (then `cell_column`
    names the column that holds the cell's id); `live_only` plans on undeleted
    rows, as the task's own select reads them.
    """

    table: str
    database: str = "cell"
    cell_column: str | None = None
    live_only: bool = False


@dataclass(frozen=True)
class TaskSpec:
    """A maintenance task as the config, the CLI and the DAG factory see it."""

    name: str
    family: str
    summary: str
    knobs: tuple[Knob, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)  # overrides of common defaults
    skips_cell0: bool = False
    global_step: bool = False  # also has run_global(ctx, cells) for work no cell owns
    asset_alias: str | None = None  # heal runs of each cell update an Asset through this alias
    triggered_by: str | None = None  # the DAG is scheduled on this Asset alias, not a clock
    aliases: tuple[str, ...] = ()  # other CLI names, e.g. `purge`
    read_only: bool = False  # audit is its only mode (checks that repair nothing)
    live_state: bool = False  # judges the present (service liveness): wall clock, not interval
    api_tables: DbAccess = field(default_factory=DbAccess)  # its tables in the API database
    cell_tables: DbAccess = field(default_factory=DbAccess)  # ... and in each cell database
    roles: tuple[ServiceRole, ...] = ()  # Keystone roles on Placement, Nova, Cinder
    ranges: RangeSupport | None = None  # its cells can be split into id ranges (fan-out)

    def all_knobs(self) -> tuple[Knob, ...]:
        common = COMMON_KNOBS
        if self.read_only:
            common = tuple(AUDIT_ONLY if k is MODE else k for k in COMMON_KNOBS)
        if self.ranges is not None:
            common = (*common, FANOUT_INSTANCES)
        return common + SCHEDULE_KNOBS + self.knobs

    def param_knobs(self) -> tuple[Knob, ...]:
        return tuple(k for k in self.all_knobs() if k.param)

    def knob(self, name: str) -> Knob:
        for knob in self.all_knobs():
            if knob.name == name:
                return knob
        raise KeyError(name)

    def validate_params(self, values: dict[str, Any], where: str) -> dict[str, Any]:
        """Validate run-time values (DAG params or CLI options) against the knobs."""
        checked = dict(values)
        for knob in self.param_knobs():
            if knob.name in values:
                checked[knob.name] = knob.parse(values[knob.name], where)
        return checked


def before_knob(what: str) -> Knob:
    return Knob(
        "before",
        "str",
        None,
        f"{what} rows deleted before this ISO date-time (UTC); overrides retention_days.",
        check=check_before,
    )


def retention_knob(default: int, what: str) -> Knob:
    return Knob(
        "retention_days",
        "int",
        default,
        f"{what} rows deleted more than this many days before the end of the run's data interval.",
        minimum=0,
        maximum=36500,
    )
