"""Pacing: the throttles between batches and the replication-lag guard, within the deadline.

Before each batch a paced task asks `Pacer.before_batch`. It sleeps as long as
the throttles require: `batch_pause_ms` after the previous batch, and as long
as it takes for the rows (`max_rows_per_second`) and API requests
(`max_requests_per_second`) handled since the first batch to average under
their ceilings. Then, with `max_replica_lag` set, it reads every watched
replica and waits, polling every `replica_poll` seconds, while any is behind,
stopped or unreachable (a replica whose state is unknown may be the one the
cloud reads from: writing blindly could leave it further behind).

It never sleeps past the run's deadline: when a wait would cross it, the batch
is not started, `before_batch` returns False and the task stops as at a time
budget (more_work, resume marker); a replica still behind then is a finding
naming it (URL masked), its lag and the fix. Clock and sleep are injectable.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nova_audit_ops.clients.replicas import Replica, ReplicaState
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.engine.timing import Deadline
from nova_audit_ops.settings.spec import GLOBAL_KNOBS

_GLOBAL_DEFAULTS = {knob.name: knob.default for knob in GLOBAL_KNOBS}


@dataclass(frozen=True)
class Throttles:
    """What a run's options and [audit] say about pacing; zero turns a throttle off."""

    batch_pause: float = 0.0  # seconds after each batch
    max_rows_per_second: int = 0
    max_requests_per_second: int = 0
    max_replica_lag: int = 0  # seconds; 0: replicas are not read
    replica_poll: float = 5.0
    max_galera_recv_queue: int = 100

    @classmethod
    def from_settings(
        cls, options: Mapping[str, Any], global_values: Mapping[str, Any]
    ) -> Throttles:
        """A task without a knob has that throttle off (only paced tasks declare them)."""
        values = {**_GLOBAL_DEFAULTS, **global_values}
        return cls(
            batch_pause=int(options.get("batch_pause_ms") or 0) / 1000,
            max_rows_per_second=int(options.get("max_rows_per_second") or 0),
            max_requests_per_second=int(options.get("max_requests_per_second") or 0),
            # audit writes nothing, so it has no lag to wait for
            max_replica_lag=int(options.get("max_replica_lag") or 0)
            if options.get("mode") == "heal"
            else 0,
            replica_poll=float(values["replica_poll"]),
            max_galera_recv_queue=int(values["max_galera_recv_queue"]),
        )


class Pacer:
    """Paces one run's batches; `count_request` is handed down to the API clients."""

    def __init__(
        self,
        throttles: Throttles,
        deadline: Deadline,
        replicas_for: Callable[[str], list[Replica]],
        *,
        task: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        log: logging.Logger | None = None,
    ) -> None:
        self.throttles = throttles
        self._deadline = deadline
        self._replicas_for = replicas_for
        self._task = task
        self._clock = clock
        self._sleep = sleep
        self._log = log or logging.getLogger("nova_audit")
        self.rows = 0
        self.requests = 0
        self._first: float | None = None  # when the first batch began
        self._last_end: float | None = None  # when the previous batch ended
        self._paused: dict[str, float] = defaultdict(float)
        self._waited: dict[str, float] = defaultdict(float)

    def count_request(self) -> None:
        """One API request sent (retries included): what max_requests_per_second bounds."""
        self.requests += 1

    def batch_done(self, rows: int) -> None:
        """A batch ended, having handled `rows` rows."""
        self.rows += rows
        self._last_end = self._clock()

    def throttle_wait(self) -> float:
        """Seconds to wait before the next batch so that every throttle holds."""
        now = self._clock()
        if self._first is None:
            return 0.0
        t = self.throttles
        waits = [0.0]
        if t.batch_pause and self._last_end is not None:
            waits.append(self._last_end + t.batch_pause - now)
        if t.max_rows_per_second:
            waits.append(self._first + self.rows / t.max_rows_per_second - now)
        if t.max_requests_per_second:
            waits.append(self._first + self.requests / t.max_requests_per_second - now)
        return max(waits)

    def before_batch(self, report: Report, scope: str, label: str) -> bool:
        """Wait as the throttles and replicas require; False: stop now (the deadline)."""
        try:
            wait = self.throttle_wait()
            if wait > 0:
                if not self._fits(wait):
                    self._log.warning(
                        "%s: stopping in %s: the %.1f s pause the throttles ask for would "
                        "cross the deadline",
                        self._task,
                        label,
                        wait,
                    )
                    return False
                self._sleep(wait)
                self._paused[label] += wait
            return self._replicas_caught_up(report, scope, label)
        finally:
            if self._first is None:
                self._first = self._clock()
            self._note(report, label)

    def _fits(self, wait: float) -> bool:
        remaining = self._deadline.remaining()
        return remaining is None or wait < remaining

    def _replicas_caught_up(self, report: Report, scope: str, label: str) -> bool:
        t = self.throttles
        if not t.max_replica_lag:
            return True
        replicas = self._replicas_for(scope)
        while replicas:
            states = [replica.read() for replica in replicas]
            behind = [
                (state, why)
                for state in states
                if (why := state.behind(t.max_replica_lag, t.max_galera_recv_queue))
            ]
            if not behind:
                if self._waited.get(label):
                    self._log.info("%s: %s: replicas caught up, going on", self._task, label)
                return True
            if not self._fits(t.replica_poll):
                for state, why in behind:
                    report.add(self._finding(state, why, label))
                return False
            for state, why in behind:
                self._log.warning(
                    "%s: %s: waiting %g s: replica %s %s",
                    self._task,
                    label,
                    t.replica_poll,
                    state.replica,
                    why,
                )
            self._sleep(t.replica_poll)
            self._waited[label] += t.replica_poll
        return True

    def _finding(self, state: ReplicaState, why: str, label: str) -> Finding:
        waited = self._waited.get(label, 0.0)
        return Finding(
            "replica",
            state.replica,
            f"replica {state.replica} {why}; waited {waited:g} s for it",
            "stopped before the next batch; the next run resumes from its marker",
            Status.FAILED if state.problem else Status.LEFT,
            label,
            fix=state.fix
            or "find what holds the replica back (SHOW SLAVE STATUS, SHOW PROCESSLIST on it), "
            f"then rerun {self._task}; raise max_replica_lag if such lag is acceptable",
        )

    def _note(self, report: Report, label: str) -> None:
        paused, waited = self._paused.get(label), self._waited.get(label)
        if paused or waited:
            report.details.setdefault("pacing", {})[label] = {
                "throttle_pause_s": round(paused or 0.0, 3),
                "replica_wait_s": round(waited or 0.0, 3),
            }
