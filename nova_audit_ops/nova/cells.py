"""Cells as the API database lists them in cell_mappings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nova_audit_ops.nova.schema import table
from nova_audit_ops.settings.errors import UnknownCellError

CELL0_UUID = "00000000-0000-0000-0000-000000000000"
CELL_MAPPINGS = "cell_mappings"  # every run reads it: an account's one common grant


@dataclass(frozen=True)
class Cell:
    """One cell mapping; its database URL holds a password and is never shown."""

    id: int
    uuid: str
    name: str | None
    disabled: bool = False
    database_connection: str = field(default="", repr=False, compare=False)

    @property
    def label(self) -> str:
        """The name operators know the cell by (the uuid when it has no name)."""
        return self.name or self.uuid

    @property
    def is_cell0(self) -> bool:
        return self.uuid == CELL0_UUID

    def public(self) -> dict[str, Any]:
        """What may travel through XCom and logs: no database URL."""
        return {"id": self.id, "uuid": self.uuid, "name": self.name, "disabled": self.disabled}


def list_cells(api: Engine) -> list[Cell]:
    """All cells, cell0 first, in id order."""
    cm = table(api, CELL_MAPPINGS)
    columns = [cm.c.id, cm.c.uuid, cm.c.name, cm.c.database_connection]
    has_disabled = "disabled" in cm.c
    if has_disabled:
        columns.append(cm.c.disabled)
    with api.connect() as conn:
        rows = conn.execute(sa.select(*columns).order_by(cm.c.id)).all()
    cells = [
        Cell(
            id=row.id,
            uuid=row.uuid,
            name=row.name,
            disabled=bool(row.disabled) if has_disabled else False,
            database_connection=row.database_connection or "",
        )
        for row in rows
    ]
    return sorted(cells, key=lambda c: (not c.is_cell0, c.id))


def select_cells(cells: Sequence[Cell], wanted: Iterable[str]) -> list[Cell]:
    """The cells named (by name or uuid), or all; an unknown name is an error."""
    wanted = [w for w in wanted if w]
    if not wanted:
        return list(cells)
    by_key: dict[str, Cell] = {}
    for cell in cells:
        by_key[cell.uuid] = cell
        if cell.name:
            by_key.setdefault(cell.name, cell)
    unknown = [w for w in wanted if w not in by_key]
    if unknown:
        known = ", ".join(f"{c.label} ({c.uuid})" for c in cells) or "none"
        raise UnknownCellError(
            f"unknown cell {', '.join(map(repr, unknown))}: cell_mappings has {known}. "
            "Use a name or uuid from `nova-manage cell_v2 list_cells`."
        )
    chosen = {by_key[w].uuid for w in wanted}
    return [c for c in cells if c.uuid in chosen]
