"""Host mappings in the API database: which cell each compute host belongs to."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nova_audit_ops.nova.schema import table

IN_CHUNK = 1000  # hosts per IN (...) list: a cell may have thousands


def host_cells(api: Engine, hosts: Iterable[str]) -> dict[str, int]:
    """host -> cell_id for those of `hosts` that have a host mapping."""
    wanted = sorted(set(hosts))
    found: dict[str, int] = {}
    if not wanted:
        return found
    hm = table(api, "host_mappings")
    with api.connect() as conn:
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            rows = conn.execute(sa.select(hm.c.host, hm.c.cell_id).where(hm.c.host.in_(chunk)))
            found.update({row.host: row.cell_id for row in rows})
    return found
