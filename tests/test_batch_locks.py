"""Batch locks on MariaDB: batches of one cell write side by side, never with a second
run of the same range nor with a whole-cell writer. Real sessions, one per holder."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from nova_audit_ops import registry, runner
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.ranges import IdRange
from nova_audit_ops.settings.errors import LockBusyError
from tests import support

TASK = "map_instances"


@pytest.fixture
def config(nova_bed: Any, tmp_path: Path) -> str:
    return support.config_with(nova_bed, tmp_path, audit={"task_lock_wait": "1"})


@pytest.fixture
def scope() -> str:
    """A lock scope of this test's own: lock names are server-wide, beds share the server."""
    return f"fanout-test-{uuid.uuid4()}"


def writer(config: str, id_range: IdRange | None = None, slot: int = 0) -> RunContext:
    ctx = runner.open_context(TASK, registry.load_config(config), {"mode": "heal"})
    ctx.id_range, ctx.batch_slot = id_range, slot
    return ctx


@contextmanager
def held(ctx: RunContext, scope: str) -> Iterator[None]:
    """`ctx`'s writer lock on `scope`, held by another thread (its own session)."""
    inside, release, failed = threading.Event(), threading.Event(), []

    def hold() -> None:
        try:
            with runner.writer_lock(ctx, scope):
                inside.set()
                release.wait(30)
        except Exception as exc:  # surfaced below
            failed.append(exc)
            inside.set()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert inside.wait(30) and not failed, failed
    try:
        yield
    finally:
        release.set()
        thread.join(30)


def can_write(ctx: RunContext, scope: str) -> bool:
    try:
        with runner.writer_lock(ctx, scope):
            return True
    except LockBusyError:
        return False


def test_batches_of_one_cell_lock_apart(config: str, scope: str) -> None:
    first, second = IdRange(0, 500), IdRange(500, None)
    contexts = [
        writer(config, first, 0),
        writer(config, first, 0),
        writer(config, second, 1),
        writer(config),
    ]
    holder, same_range, other_range, whole = contexts
    try:
        with held(holder, scope):
            assert not can_write(same_range, scope), "a second run of the same range"
            assert can_write(other_range, scope), "another batch of the same cell"
            assert not can_write(whole, scope), "a whole-cell writer while a batch writes"
        assert can_write(same_range, scope) and can_write(whole, scope), "released"
    finally:
        for ctx in contexts:
            ctx.engines.dispose()


def test_a_whole_cell_writer_excludes_every_batch_and_other_writers(
    config: str, scope: str
) -> None:
    contexts = [
        writer(config),
        writer(config),
        *(writer(config, IdRange(i, i + 1), i) for i in (0, 5, 63)),
    ]
    whole, other_whole, *batches = contexts
    try:
        with held(whole, scope):
            assert not can_write(other_whole, scope)
            assert not any(can_write(batch, scope) for batch in batches)
        assert all(can_write(batch, scope) for batch in batches)
    finally:
        for ctx in contexts:
            ctx.engines.dispose()


def test_lock_names_keep_the_old_cell_lock_and_add_slots(config: str) -> None:
    ctx = writer(config)
    names = runner.writer_locks(ctx, "cell-uuid")
    assert names[0] == runner.lock_name(TASK, "cell-uuid"), "older runs' cell lock still taken"
    assert len(names) == 65 and len(set(names)) == 65
    ctx.id_range, ctx.batch_slot = IdRange(10, 20), 3
    assert runner.writer_locks(ctx, "cell-uuid") == [f"{TASK}.cell-uuid.s3"]
    assert runner.writer_locks(ctx, runner.GLOBAL) == [runner.lock_name(TASK, runner.GLOBAL)]
    ctx.engines.dispose()
    plain = runner.open_context("discover_hosts", registry.load_config(config), {"mode": "heal"})
    assert runner.writer_locks(plain, "cell-uuid") == ["discover_hosts.cell-uuid"]
    plain.engines.dispose()
