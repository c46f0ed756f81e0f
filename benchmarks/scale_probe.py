"""`nova-audit` with a count of the SQL statements it sends, for benchmarks/scale.py.

    python -m benchmarks.scale_probe COUNT_FILE nova-audit-args...

MariaDB's global `Questions` counter also counts Placement's queries and every
other client of a shared server; a listener on every SQLAlchemy engine of this
process counts exactly ours (one per execute; an executemany is one round trip).
"""

from __future__ import annotations

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
        counter.write_text(str(_count[0]))


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
