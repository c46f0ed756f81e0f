"""Everything one task run works with, handed in explicitly."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from nova_audit_ops.clients.cinder import Attachment, CinderClient
from nova_audit_ops.clients.compute import ComputeClient
from nova_audit_ops.clients.db import Engines
from nova_audit_ops.clients.db_retry import DbRetryPolicy, policy_from
from nova_audit_ops.clients.placement import PlacementClient
from nova_audit_ops.clients.replicas import Replica
from nova_audit_ops.clients.retry import RetryPolicy
from nova_audit_ops.engine.pacing import Pacer, Throttles
from nova_audit_ops.engine.ranges import IdRange
from nova_audit_ops.engine.report import Report
from nova_audit_ops.engine.state import MarkerKind, MemoryStateStore, StateStore, marker_key
from nova_audit_ops.engine.timing import Deadline
from nova_audit_ops.nova.cells import Cell, list_cells
from nova_audit_ops.settings.config import AuditConfig
from nova_audit_ops.settings.errors import ConfigError
from nova_audit_ops.settings.spec import GLOBAL_KNOBS, TaskSpec


def retry_policy(config: AuditConfig, on_request: Callable[[], None] | None = None) -> RetryPolicy:
    """The service retry budget and timeout from the `[audit]` section (or the defaults);
    `on_request` is told of every request sent (the pacer counts them)."""
    knobs = {knob.name: knob.default for knob in GLOBAL_KNOBS}
    values = {**knobs, **config.global_values}
    return RetryPolicy(
        retries=int(values["service_retries"]),
        delay=int(values["service_retry_delay_ms"]) / 1000,
        max_delay=float(values["service_retry_max_delay"]),
        timeout=float(values["service_timeout"]),
        on_request=on_request,
    )


@dataclass
class RunMemos:
    """What one step of a run read and a later step in the same process may reuse.

    An optimisation only, never needed for correctness: an empty memo means
    "read it again", and a run in another process starts with empty memos.
    """

    # heal_allocations: provider uuid -> consumer -> its resources there, kept current
    # by its own writes, shared by run_cell and run_global.
    provider_allocations: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    # preflight: every resource provider's uuid.
    provider_uuids: set[str] | None = None
    # volume_attachments: Cinder's attachments that belong to a server.
    attachments: list[Attachment] | None = None


@dataclass
class RunContext:
    """Collaborators of a run: engines, validated options, deadline, reference time.

    `reference_time` is the end of the run's data interval (or the moment a
    one-shot CLI run started); cut-offs and grace periods are measured from it,
    never from now(), so backfills and reruns mean something.
    """

    spec: TaskSpec
    config: AuditConfig
    options: dict[str, Any]
    engines: Engines
    deadline: Deadline
    reference_time: dt.datetime
    state: StateStore = field(default_factory=MemoryStateStore)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("nova_audit"))
    # One batch of a split cell (fan-out): the ids its walk covers and its lock slot.
    # None (or the whole range) is a whole-cell run, with today's markers and lock.
    id_range: IdRange | None = None
    batch_slot: int = 0
    clock: Callable[[], float] = time.monotonic  # the pacer's; tests inject both
    sleep: Callable[[float], None] = time.sleep
    _cells: list[Cell] | None = field(default=None, init=False, repr=False)
    _placement: PlacementClient | None = field(default=None, init=False, repr=False)
    _compute: ComputeClient | None = field(default=None, init=False, repr=False)
    _cinder: CinderClient | None = field(default=None, init=False, repr=False)
    _pacer: Pacer | None = field(default=None, init=False, repr=False)
    _replicas: dict[str, Replica] = field(default_factory=dict, init=False, repr=False)
    memos: RunMemos = field(default_factory=RunMemos, init=False, repr=False)

    @property
    def mode(self) -> str:
        return str(self.options["mode"])

    @property
    def heal(self) -> bool:
        return self.mode == "heal"

    def new_report(self) -> Report:
        return Report(task=self.spec.name, mode=self.mode)

    def all_cells(self) -> list[Cell]:
        """Every cell in cell_mappings, read once per run."""
        if self._cells is None:
            self._cells = list_cells(self.engines.api)
        return list(self._cells)

    @property
    def placement(self) -> PlacementClient:
        """The Placement client, built on first use from the [placement] section."""
        if self._placement is None:
            if not self.config.placement:
                raise ConfigError(
                    f"{self.spec.name} needs Placement: add a [placement] section with "
                    "keystoneauth1 options to the config file (see docs/configuration.md)"
                )
            self._placement = PlacementClient.from_options(
                self.config.placement, self._retry_policy()
            )
        return self._placement

    @property
    def compute(self) -> ComputeClient:
        """Nova's compute API client, built on first use from the [nova] section."""
        if self._compute is None:
            self._compute = ComputeClient.from_options(self.config.nova, self._retry_policy())
        return self._compute

    @property
    def cinder(self) -> CinderClient:
        """The Cinder client, built on first use from the [cinder] section."""
        if self._cinder is None:
            options = self.config.cinder
            if not options.get("auth_type") and not options.get("auth_plugin"):
                raise ConfigError(
                    f"{self.spec.name} needs Cinder: add a [cinder] section with keystoneauth1 "
                    "options (an admin user) to the config file (see docs/configuration.md)"
                )
            self._cinder = CinderClient(options, self._retry_policy())
        return self._cinder

    def _retry_policy(self) -> RetryPolicy:
        return retry_policy(self.config, self.pacer.count_request)

    @property
    def pacer(self) -> Pacer:
        """Throttles and the replica guard of this run (engine/pacing.py), built on first use."""
        if self._pacer is None:
            throttles = Throttles.from_settings(self.options, self.config.global_values)
            self._pacer = Pacer(
                throttles,
                self.deadline,
                self.replicas_for,
                task=self.spec.name,
                clock=self.clock,
                sleep=self.sleep,
                log=self.log,
            )
        return self._pacer

    def replicas_for(self, scope: str) -> list[Replica]:
        """The replicas watched for `scope` (a cell uuid, or "global": the shared ones)."""
        names = [c.name for c in self.all_cells() if c.uuid == scope and c.name]
        urls = self.config.replica_urls(scope, *names) if scope else self.config.replica_urls()
        return [self._replicas.setdefault(url, Replica(url)) for url in urls]

    def db_retry_policy(self) -> DbRetryPolicy:
        """How a write batch is retried after a transient database fault, bounded by the
        time this run has left ([audit] db_retries, db_lock_wait_timeout)."""
        return policy_from(self.config.global_values, self.deadline.remaining())

    @property
    def batched(self) -> bool:
        """True when this run covers one id range of a split cell, not the whole cell."""
        return self.id_range is not None and not self.id_range.whole

    @property
    def range_lo(self) -> int:
        """The id after which this run's walk starts at the earliest (0: the beginning)."""
        return self.id_range.lo if self.id_range is not None else 0

    @property
    def range_hi(self) -> int | None:
        """The last id this run's walk covers (None: no upper end)."""
        return self.id_range.hi if self.id_range is not None else None

    def range_bounds(self, column: sa.ColumnElement[int]) -> list[sa.ColumnElement[bool]]:
        """Conditions on `column` (an id) that keep this run's range (none: the whole cell)."""
        lo, hi = self.range_lo, self.range_hi
        return [*([column > lo] if lo else []), *([] if hi is None else [column <= hi])]

    def scoped(self, scope: str) -> str:
        """The marker scope of `scope` in this run: a batch keeps its own markers."""
        if self.id_range is None or self.id_range.whole:
            return scope
        return scope + self.id_range.scope_suffix

    def must_stop(self, batches_done: int) -> bool:
        """True when the deadline passed or the per-cell batch limit is reached."""
        limit = int(self.options.get("max_batches") or 0)
        return self.deadline.expired() or bool(limit and batches_done >= limit)

    def load_marker(
        self, scope: str, kind: MarkerKind = MarkerKind.RESUME
    ) -> dict[str, Any] | None:
        """This task's marker of `kind` for `scope` (a cell uuid or "global"), if any."""
        return self.state.get(marker_key(self.spec.name, self.scoped(scope), kind))

    def save_marker(
        self, scope: str, marker: dict[str, Any] | None, kind: MarkerKind = MarkerKind.RESUME
    ) -> None:
        """Keep this task's marker of `kind` for `scope`; None removes it."""
        self.state.put(marker_key(self.spec.name, self.scoped(scope), kind), marker)
