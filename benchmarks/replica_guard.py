"""What the replication-lag guard costs per batch, and how fast it lets a run go on.

Starts a real primary + replica pair (testbed/replication.py) and measures:
- one reading of the replica (`Replica.read`, the guard's cost per batch and replica),
  median and 95th percentile over `--reads` readings;
- the delay between the replica catching up (its lock released) and the guard
  saying "go on", with `replica_poll = 1`: at most one poll interval.

python -m benchmarks.replica_guard [--reads 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from nova_audit_ops.clients.replicas import Replica
from nova_audit_ops.engine.pacing import Pacer, Throttles
from nova_audit_ops.engine.report import Report
from nova_audit_ops.engine.timing import Deadline
from testbed import replication


def reading_cost(replica: Replica, reads: int) -> tuple[float, float]:
    """Median and p95 milliseconds of one reading."""
    replica.read()  # connect once, as the guard's engine pool does
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        state = replica.read()
        times.append((time.perf_counter() - started) * 1000)
        assert state.problem is None, state.problem
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def resume_delay(pair: replication.Pair, replica: Replica, hold: float) -> tuple[float, float]:
    """(seconds the guard waited, seconds from the lock's release to the guard's go)."""
    engine = sa.create_engine(pair.replica_url(), poolclass=sa.pool.NullPool)
    conn = engine.connect()
    conn.execute(sa.text("FLUSH TABLES WITH READ LOCK"))
    replication.execute(
        pair.primary_url(""),
        "CREATE DATABASE IF NOT EXISTS bench",
        "CREATE TABLE IF NOT EXISTS bench.t (id INT PRIMARY KEY)",
        "INSERT INTO bench.t VALUES (1)",
    )
    while (replica.read().lag or 0) < 2:
        time.sleep(0.1)
    released: list[float] = []

    def release() -> None:
        conn.execute(sa.text("UNLOCK TABLES"))
        released.append(time.monotonic())

    timer = threading.Timer(hold, release)
    pacer = Pacer(
        Throttles(max_replica_lag=1, replica_poll=1.0),
        Deadline(60),
        lambda scope: [replica],
        task="bench",
    )
    started = time.monotonic()
    timer.start()
    assert pacer.before_batch(Report(task="bench", mode="heal"), "cell", "cell")
    done = time.monotonic()
    timer.join()
    conn.close()
    engine.dispose()
    return done - started, done - released[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nat-bench-repl-") as directory:
        started = time.monotonic()
        pair = replication.start(Path(directory))
        up = time.monotonic() - started
        try:
            replica = Replica(pair.watch_url)
            median, p95 = reading_cost(replica, args.reads)
            waited, delay = resume_delay(pair, replica, hold=3.0)
            replica.dispose()
        finally:
            replication.stop(pair)
    print(f"primary + replica started in {up:.2f} s")
    print(f"one replica reading: median {median:.2f} ms, p95 {p95:.2f} ms ({args.reads} reads)")
    print(f"lag guard: waited {waited:.2f} s; went on {delay:.2f} s after the replica's release")


if __name__ == "__main__":
    main()
