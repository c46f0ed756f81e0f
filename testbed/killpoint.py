"""Run the nova-audit CLI and SIGKILL it at its N-th event: deterministic kill points.

An *event* is something the run does that a crash can fall between: every SQL
statement (before it is sent: "sql <VERB>", and after it returned: "sql-done
<VERB>"), every COMMIT (before it is sent: "commit"), every HTTP request to
Placement, Nova or Cinder (before: "http <METHOD>", after the response:
"http-done <METHOD> <status>"). Killing at the event after a "commit" is a
kill just after the commit.

    events = count(argv)            # an uninterrupted run: its list of events
    for n in spread(events, 20):
        code = run(argv, kill_at=n) # the real CLI, SIGKILLed at event n (-9)

The run is `nova_audit_ops.cli.main(argv)` in a child forked from the calling
process (which has already paid the ~1 s of imports), with stdout and stderr
on /dev/null; `now` pins its reference time, for tasks whose outcome depends on
the clock (sightings, heartbeats). At event `kill_at` the child sends itself SIGKILL: no finally,
no atexit, no rollback by the client, like the OOM killer. Hooks are installed
in the child only; the parent is untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

KILLED = -signal.SIGKILL
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
HTTP_WRITES = ("PUT", "POST", "DELETE", "PATCH")


class _Counter:
    """Numbers events; at `kill_at` it kills the process, at the end it records them."""

    def __init__(self, kill_at: int | None) -> None:
        self.kill_at = kill_at
        self.events: list[str] = []

    def __call__(self, event: str) -> None:
        self.events.append(event)
        if self.kill_at is not None and len(self.events) >= self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def _verb(statement: str) -> str:
    words = statement.lstrip("( \n").split(None, 1)
    return words[0].upper() if words else "?"


def _install(counter: _Counter) -> None:
    import requests
    import sqlalchemy as sa
    from sqlalchemy import event

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counter(f"sql {_verb(statement)}")

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counter(f"sql-done {_verb(statement)}")

    def commit(conn: Any) -> None:
        counter("commit")

    event.listen(sa.engine.Engine, "before_cursor_execute", before)
    event.listen(sa.engine.Engine, "after_cursor_execute", after)
    event.listen(sa.engine.Engine, "commit", commit)
    send = requests.Session.send

    def counted_send(self: Any, request: Any, **kwargs: Any) -> Any:
        counter(f"http {request.method}")
        response = send(self, request, **kwargs)
        counter(f"http-done {request.method} {response.status_code}")
        return response

    requests.Session.send = counted_send  # type: ignore[method-assign]


def _pin_clock(now: dt.datetime) -> None:
    """Every run of a kill test sees the same "now" (the CLI has no clock option)."""
    from nova_audit_ops import runner

    open_context = runner.open_context

    def pinned(*args: Any, **kwargs: Any) -> Any:
        kwargs["reference_time"] = kwargs.get("reference_time") or now
        return open_context(*args, **kwargs)

    runner.open_context = pinned


def _child(argv: Sequence[str], kill_at: int | None, record: Path, now: dt.datetime | None) -> None:
    code = 255
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        counter = _Counter(kill_at)
        _install(counter)
        if now is not None:
            _pin_clock(now)
        from nova_audit_ops import cli

        code = cli.main(list(argv))
        record.write_text(json.dumps(counter.events))
    finally:
        os._exit(code)


def _fork(
    argv: Sequence[str], kill_at: int | None, now: dt.datetime | None
) -> tuple[int, list[str]]:
    with tempfile.TemporaryDirectory(prefix="killpoint-") as tmp:
        record = Path(tmp) / "events.json"
        pid = os.fork()
        if pid == 0:
            _child(argv, kill_at, record, now)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        events = json.loads(record.read_text()) if record.exists() else []
    return code, events


def count(argv: Sequence[str], now: dt.datetime | None = None) -> tuple[int, list[str]]:
    """Run the CLI to the end; its exit code and every event it went through.

    `now`, if given, is the run's reference time (what the CLI takes from the clock).
    """
    return _fork(argv, None, now)


def run(argv: Sequence[str], kill_at: int | None = None, now: dt.datetime | None = None) -> int:
    """Run the CLI, SIGKILLed at event `kill_at` (1-based); its exit code (KILLED if so)."""
    return _fork(argv, kill_at, now)[0]


def interesting(events: Sequence[str]) -> list[int]:
    """1-based kill points where a crash hurts most.

    Just before and just after each commit, just after a DB write returned (still
    uncommitted), just before and after each HTTP write (between a DB write and
    its Placement/Cinder write, or just after the service took the write).
    """
    points: set[int] = set()
    for i, name in enumerate(events, start=1):
        if name == "commit":
            points.update((i, i + 1))
        elif name.startswith("sql-done") and name.split()[1] in WRITE_VERBS:
            points.add(i)
        elif name.split()[0] in ("http", "http-done") and name.split()[1] in HTTP_WRITES:
            points.add(i if name.startswith("http ") else i + 1)
    return sorted(p for p in points if p <= len(events))


def spread(events: Sequence[str], wanted: int = 20) -> list[int]:
    """`wanted` kill points in [1, E]: up to half interesting ones, the rest spread evenly.

    The even ones cover the writing part of the run (from just before its first
    interesting point to the end), plus event 1: a run first reads (schema
    reflection can be hundreds of statements) and a kill there is one case, not ten.
    """
    total = len(events)
    if total <= wanted:
        return list(range(1, total + 1))
    special = interesting(events)
    picked = {1, *_evenly(special, wanted // 2)}
    start = max(1, special[0] - 1) if special else 1
    rest = [p for p in range(start, total + 1) if p not in picked]
    if len(rest) < wanted - len(picked):
        rest = [p for p in range(1, total + 1) if p not in picked]
    picked.update(_evenly(rest, wanted - len(picked)))
    return sorted(picked)


def _evenly(items: Sequence[int], wanted: int) -> list[int]:
    if len(items) <= wanted:
        return list(items)
    step = (len(items) - 1) / max(wanted - 1, 1)
    return sorted({items[round(k * step)] for k in range(wanted)})
