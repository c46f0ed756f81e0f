"""Throttles on real runs (archive, heal_allocations) with the pacer's sleep injected:
the pauses asked for match the knobs, the deadline caps them, audit stays read-only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import testbed
from nova_audit_ops import registry, runner
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Report
from nova_audit_ops.engine.state import MemoryStateStore, StateStore
from nova_audit_ops.engine.timing import Deadline
from tests import support
from tests.engine.test_pacing import FakeTime

FUTURE = "2100-01-01"


def soft_delete_all(bed: Any) -> None:
    for cell in bed.cells:
        support.execute(
            cell.url,
            "UPDATE instances SET deleted = id, deleted_at = :w, vm_state = 'deleted' "
            "WHERE deleted = 0",
            w=dt.datetime(2020, 1, 1),
        )


def paced_run(
    bed: Any,
    task: str,
    fake: FakeTime,
    budget: float | None = None,
    state: StateStore | None = None,
    **params: Any,
) -> tuple[Report, RunContext, list[tuple[float, int, int]]]:
    """Run `task` on the fake clock; also (time, rows, requests) at every batch start."""
    ctx = runner.open_context(
        task, registry.load_config(bed.config_path), params, state=state or MemoryStateStore()
    )
    ctx.clock, ctx.sleep = fake.clock, fake.sleep
    ctx.deadline = Deadline(budget, clock=fake.clock)
    pacer = ctx.pacer
    starts: list[tuple[float, int, int]] = []
    before = pacer.before_batch

    def recording(report: Report, scope: str, label: str) -> bool:
        go = before(report, scope, label)
        if go:
            starts.append((fake.now, pacer.rows, pacer.requests))
        return go

    pacer.before_batch = recording  # type: ignore[method-assign]
    try:
        return runner.run_all(ctx), ctx, starts
    finally:
        ctx.engines.dispose()


def test_batch_pause_between_every_two_archive_batches(nova_bed: Any) -> None:
    soft_delete_all(nova_bed)
    fake = FakeTime()
    report, ctx, starts = paced_run(
        nova_bed,
        "archive_deleted_rows",
        fake,
        mode="heal",
        before=FUTURE,
        batch_pause_ms=250,
        batch_size=40,
    )
    assert not report.more_work
    assert len(starts) >= 3
    assert fake.sleeps == [pytest.approx(0.25)] * (len(starts) - 1)
    moved = sum(n for rows in report.details["rows"].values() for n in rows.values())
    assert ctx.pacer.rows == moved


def test_rows_per_second_ceiling_on_a_real_archive(nova_bed: Any) -> None:
    soft_delete_all(nova_bed)
    fake = FakeTime()
    report, _, starts = paced_run(
        nova_bed,
        "archive_deleted_rows",
        fake,
        mode="heal",
        before=FUTURE,
        max_rows_per_second=50,
        batch_size=40,
    )
    assert not report.more_work and fake.sleeps
    first = starts[0][0]
    for when, rows, _ in starts:
        assert rows / 50 <= when - first + 1e-9, "a batch began above the ceiling"
    last_when, last_rows, _ = starts[-1]
    assert last_when - first == pytest.approx(last_rows / 50)  # and no longer than needed


def test_deadline_caps_the_pauses_and_the_next_run_resumes(nova_bed: Any) -> None:
    soft_delete_all(nova_bed)
    fake, state = FakeTime(), MemoryStateStore()
    report, _, starts = paced_run(
        nova_bed,
        "archive_deleted_rows",
        fake,
        budget=1.0,
        state=state,
        mode="heal",
        before=FUTURE,
        batch_pause_ms=600,
        batch_size=40,
    )
    assert report.more_work and len(starts) == 2
    assert fake.sleeps == [pytest.approx(0.6)]  # a second 0.6 s pause would cross 1.0 s
    assert fake.now - 1000.0 < 1.0
    rest, _, _ = paced_run(
        nova_bed,
        "archive_deleted_rows",
        FakeTime(),
        state=state,
        mode="heal",
        before=FUTURE,
        batch_size=40,
    )
    assert not rest.more_work
    assert sum(n for r in rest.details["rows"].values() for n in r.values()) > 0


def test_requests_per_second_counts_placement_requests_in_audit(nova_bed: Any) -> None:
    placement_before = testbed.snapshot_placement(nova_bed)
    cells_before = support.snapshot(nova_bed)
    fake = FakeTime()
    report, ctx, starts = paced_run(
        nova_bed,
        "heal_allocations",
        fake,
        mode="audit",
        max_requests_per_second=2,
        batch_size=3,
    )
    assert ctx.pacer.requests > 0 and fake.sleeps
    first = starts[0][0]
    for when, _, requests_then in starts:
        # requests counted from the first batch on (those before it start the clock)
        assert (requests_then - starts[0][2]) / 2 <= when - first + 1e-9
    assert testbed.snapshot_placement(nova_bed) == placement_before
    assert support.snapshot(nova_bed) == cells_before
    assert report.details["pacing"]
