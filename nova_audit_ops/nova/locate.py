"""Find which cells hold given instances: one query per cell, not per instance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.schema import table
from nova_audit_ops.settings.errors import NovaAuditError


@dataclass
class Whereabouts:
    """Cells holding each instance (deleted rows count: they are still there)."""

    cells_of: dict[str, list[Cell]] = field(default_factory=lambda: defaultdict(list))
    unreachable: list[Cell] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every cell answered, so "found nowhere" can be trusted."""
        return not self.unreachable


def locate(
    engine_of: Callable[[Cell], Engine], cells: Sequence[Cell], uuids: Sequence[str]
) -> Whereabouts:
    """Look the instances up in every given cell; unreachable cells are listed."""
    found = Whereabouts()
    if not uuids:
        return found
    for cell in cells:
        try:
            engine = engine_of(cell)
            instances = table(engine, "instances")
            query = sa.select(instances.c.uuid).where(instances.c.uuid.in_(list(uuids)))
            with engine.connect() as conn:
                for uuid in conn.execute(query).scalars():
                    found.cells_of[uuid].append(cell)
        except (SQLAlchemyError, NovaAuditError):
            found.unreachable.append(cell)
    return found
