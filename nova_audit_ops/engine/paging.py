"""Keyset pagination and the resumable batch loop every task shares.

Pages are read by `id > last ORDER BY id LIMIT n` — never OFFSET, so a page
costs the same at the end of a table as at its start, and rows that change
meanwhile are neither skipped nor repeated. Lists read whole from an API
(resource providers) are walked the same way, in key order after a marker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Report

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One batch of rows; `full` means more rows may follow.

    `marker` is where the batch after this one starts, as saved between runs.
    """

    rows: list[T]
    full: bool
    marker: dict[str, Any]


def keyset_pages(
    engine: Engine,
    select_after: Callable[[int], sa.Select],
    size: int,
    start: int,
    upto: int | None = None,
) -> Iterator[Page[Row]]:
    """Pages of `select_after(last)` (which orders by its `id` column), each up to `size` rows.

    `upto` ends the walk at that id (inclusive): one range of a split cell.
    """
    last = start
    while True:
        query = select_after(last)
        if upto is not None:
            query = query.where(query.selected_columns.id <= upto)
        with engine.connect() as conn:
            rows = list(conn.execute(query.limit(size)))
        if not rows:
            return
        last = int(rows[-1].id)
        yield Page(rows, len(rows) == size, {"last_id": last})
        if len(rows) < size:
            return


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size` (e.g. the uuids of one IN list)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def resume_point(ctx: RunContext, key: str) -> int:
    """The id after which this run starts: the saved marker, or its range's start (0)."""
    return max(int((ctx.load_marker(key) or {}).get("last_id", 0)), ctx.range_lo)


def sorted_pages(
    items: Sequence[T], key: Callable[[T], str], size: int, after: str
) -> Iterator[Page[T]]:
    """Pages of `items` in `key` order, starting after the key `after`.

    When nothing sorts after `after` (the items it named are gone), the pages
    start from the beginning. A page is `full` while items remain after it.
    """
    ordered = sorted(items, key=key)
    todo = [item for item in ordered if key(item) > after] or ordered
    for start in range(0, len(todo), size):
        rows = todo[start : start + size]
        yield Page(rows, start + size < len(todo), {"after": key(rows[-1])})


def resume_key(ctx: RunContext, key: str) -> str:
    """The item key after which a sorted walk starts: the saved marker, or ""."""
    return str((ctx.load_marker(key) or {}).get("after") or "")


def walk(
    ctx: RunContext,
    report: Report,
    key: str,
    label: str,
    pages: Iterator[Page[T]],
    handle: Callable[[Page[T]], None],
    *,
    count_rows: bool = True,
) -> None:
    """Handle pages until done or told to stop, keeping the resume marker current.

    The marker is saved after every batch that may have a successor, so a run
    killed at any point resumes after its last finished batch; it is cleared
    when the walk reaches the end, so the next run starts from the beginning.
    `count_rows` off leaves `examined` to `handle` (when rows are not the unit).
    Before each batch the run's pacer may wait, or stop the walk at the deadline.
    """
    for done, page in enumerate(pages, start=1):
        if not ctx.pacer.before_batch(report, key, label):  # throttles, replica lag
            report.more_work = True
            report.markers[label] = dict(ctx.load_marker(key) or {})
            return
        if count_rows:
            report.counts.examined += len(page.rows)
        handle(page)
        ctx.pacer.batch_done(len(page.rows))
        if not page.full:
            break
        ctx.save_marker(key, page.marker)
        if ctx.must_stop(done):
            report.more_work = True
            report.markers[label] = dict(page.marker)
            ctx.log.warning("%s: stopping in %s at %s", ctx.spec.name, label, page.marker)
            return
    ctx.save_marker(key, None)
