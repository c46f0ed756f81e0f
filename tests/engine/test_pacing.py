"""The throttles between batches, on an injected clock: the pauses asked for match the
knobs, and the deadline caps them (a wait that would cross it stops the run)."""

from __future__ import annotations

from typing import Any

import pytest

from nova_audit_ops import registry
from nova_audit_ops.clients import secrets
from nova_audit_ops.engine.pacing import Pacer, Throttles
from nova_audit_ops.engine.report import Report
from nova_audit_ops.engine.timing import Deadline


class FakeTime:
    """A clock that moves only when slept on (or worked on), recording every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pacer(fake: FakeTime, budget: float | None = None, **throttles: float) -> Pacer:
    return Pacer(
        Throttles(**throttles),  # type: ignore[arg-type]
        Deadline(budget, clock=fake.clock),
        lambda scope: [],
        task="archive_deleted_rows",
        clock=fake.clock,
        sleep=fake.sleep,
    )


def run_batches(p: Pacer, fake: FakeTime, rows: list[int], work: float = 0.0) -> int:
    """Batches of `rows` rows taking `work` seconds each; how many ran before a stop."""
    report = Report(task="t", mode="heal")
    for done, count in enumerate(rows):
        if not p.before_batch(report, "cell-uuid", "cell1"):
            return done
        fake.now += work
        p.batch_done(count)
    return len(rows)


def test_batch_pause_after_each_batch_but_not_before_the_first() -> None:
    fake = FakeTime()
    p = pacer(fake, batch_pause=0.25)
    assert run_batches(p, fake, [10, 10, 10], work=0.1) == 3
    assert fake.sleeps == [pytest.approx(0.25), pytest.approx(0.25)]


def test_rows_per_second_ceiling_holds_on_average() -> None:
    fake = FakeTime()
    p = pacer(fake, max_rows_per_second=100)
    start = fake.now
    assert run_batches(p, fake, [50, 50, 50, 50], work=0.1) == 4
    # 150 rows before the 4th batch may start no sooner than 1.5 s after the first
    assert len(fake.sleeps) == 3
    assert fake.now - 0.1 - start == pytest.approx(1.5)
    assert p.rows / (fake.now - 0.1 - start) == pytest.approx(200 / 1.5)


def test_requests_per_second_counts_what_the_clients_report() -> None:
    fake = FakeTime()
    p = pacer(fake, max_requests_per_second=10)
    report = Report(task="t", mode="heal")
    assert p.before_batch(report, "s", "cell1")
    for _ in range(20):  # the Placement client calls this for every request it sends
        p.count_request()
    p.batch_done(5)
    assert p.before_batch(report, "s", "cell1")
    assert fake.sleeps == [pytest.approx(2.0)]
    assert report.details["pacing"]["cell1"]["throttle_pause_s"] == pytest.approx(2.0)


def test_the_slowest_throttle_wins() -> None:
    fake = FakeTime()
    p = pacer(fake, batch_pause=0.5, max_rows_per_second=1000)
    assert run_batches(p, fake, [100, 100], work=0.0) == 2
    assert fake.sleeps == [pytest.approx(0.5)]  # 100 rows at 1000/s would need only 0.1 s


def test_a_pause_that_would_cross_the_deadline_stops_before_the_batch() -> None:
    fake = FakeTime()
    p = pacer(fake, budget=2.0, batch_pause=1.5)
    # batch 1 at t=0, pause to 1.5, batch 2, then a pause to 3.0 would cross 2.0
    assert run_batches(p, fake, [1, 1, 1, 1], work=0.1) == 2
    assert fake.sleeps == [pytest.approx(1.5)]
    assert fake.now < 1000.0 + 2.0


def test_off_by_default_never_sleeps() -> None:
    fake = FakeTime()
    p = pacer(fake)
    assert run_batches(p, fake, [1000] * 5, work=0.0) == 5
    assert fake.sleeps == []


def test_throttles_from_settings() -> None:
    options = {
        "mode": "audit",
        "batch_pause_ms": 250,
        "max_rows_per_second": 7,
        "max_replica_lag": 3,
    }
    t = Throttles.from_settings(options, {"replica_poll": 2})
    assert (t.batch_pause, t.max_rows_per_second, t.max_requests_per_second) == (0.25, 7, 0)
    assert t.max_replica_lag == 0  # audit writes nothing: no lag to wait for
    assert Throttles.from_settings({**options, "mode": "heal"}, {}).max_replica_lag == 3
    assert t.replica_poll == 2


def test_replica_passwords_are_secrets_once_the_config_is_loaded(tmp_path: Any) -> None:
    path = tmp_path / "nova-audit.conf"
    path.write_text(
        "[api_database]\nconnection = sqlite://\n"
        "[audit]\nreplica_connections = mysql+pymysql://w:shared-pw-1@r1:3306/\n"
        "[audit.replicas]\nCell1 = mysql+pymysql://w:own-pw-2@r2:3306/\n"
    )
    config = registry.load_config(str(path))
    assert config.replica_urls("some-uuid", "cell1") == [
        "mysql+pymysql://w:shared-pw-1@r1:3306/",
        "mysql+pymysql://w:own-pw-2@r2:3306/",
    ]
    assert config.replica_urls("cell2") == ["mysql+pymysql://w:shared-pw-1@r1:3306/"]
    assert secrets.scrub("a shared-pw-1 b own-pw-2") == "a *** b ***"
