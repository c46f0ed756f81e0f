"""`nova-audit` with a count of the SQL statements it sends, for benchmarks/scale.py.

    python -m benchmarks.scale_probe COUNT_FILE nova-audit-args...

MariaDB's global `Questions` counter also counts Placement's queries and every
other client of a shared server; a listener on every SQLAlchemy engine of this
process counts exactly ours (one per execute; an executemany is one round
trip). It also writes its own peak RSS (VmHWM): wait4's ru_maxrss would include
the benchmark process's memory, which Linux carries over the child's exec.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from nova_audit_ops.cli import main

_count = [0]


def _counted(*_: Any) -> None:
    _count[0] += 1


def run(argv: list[str]) -> int:
    counter, args = Path(argv[0]), argv[1:]
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _counted)
    try:
        return main(args)
    finally:
        counter.write_text(json.dumps({"queries": _count[0], "rss_mb": peak_rss_mb("self")}))


def peak_rss_mb(pid: str) -> float:
    """VmHWM of a process in MB (0 once it is gone): its own peak, not its parent's."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
