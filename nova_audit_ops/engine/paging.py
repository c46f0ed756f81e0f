"""Keyset pagination and the resumable batch loop every task shares.

Pages are read by `id > last ORDER BY id LIMIT n` — never OFFSET, so a page
costs the same at the end of a table as at its start, and rows that change
meanwhile are neither skipped nor repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Report


@dataclass(frozen=True)
class Page:
    """One batch of rows; `full` means more rows may follow."""

    last_id: int
    rows: list[Row]
    full: bool


def keyset_pages(
    engine: Engine, select_after: Callable[[int], sa.Select], size: int, start: int
) -> Iterator[Page]:
    """Pages of `select_after(last)` (which orders by id), each up to `size` rows."""
    last = start
    while True:
        with engine.connect() as conn:
            rows = list(conn.execute(select_after(last).limit(size)))
        if not rows:
            return
        last = int(rows[-1].id)
        yield Page(last, rows, len(rows) == size)
        if len(rows) < size:
            return


def resume_point(ctx: RunContext, key: str) -> int:
    """The id after which this run starts: the saved marker, or 0."""
    return int((ctx.load_marker(key) or {}).get("last_id", 0))


def walk(
    ctx: RunContext,
    report: Report,
    key: str,
    label: str,
    pages: Iterator[Page],
    handle: Callable[[Page], None],
) -> None:
    """Handle pages until done or told to stop, keeping the resume marker current.

    The marker is saved after every batch that may have a successor, so a run
    killed at any point resumes after its last finished batch; it is cleared
    when the walk reaches the end, so the next run starts from the beginning.
    """
    for done, page in enumerate(pages, start=1):
        report.counts.examined += len(page.rows)
        handle(page)
        if not page.full:
            break
        ctx.save_marker(key, {"last_id": page.last_id})
        if ctx.must_stop(done):
            report.more_work = True
            report.markers[label] = {"last_id": page.last_id}
            ctx.log.warning("%s: stopping in %s after id %s", ctx.spec.name, label, page.last_id)
            return
    ctx.save_marker(key, None)
