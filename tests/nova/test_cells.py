"""Cell selection from cell_mappings: by name or uuid, in order, unknown ones refused."""

from __future__ import annotations

import pytest

from nova_audit_ops.nova.cells import CELL0_UUID, Cell, select_cells
from nova_audit_ops.settings.errors import UnknownCellError

CELLS = [
    Cell(1, CELL0_UUID, "cell0", database_connection="mysql+pymysql://u:pw0@h/c0"),
    Cell(2, "11111111-1111-1111-1111-111111111111", "cell1", database_connection="sqlite://"),
    Cell(3, "22222222-2222-2222-2222-222222222222", None, database_connection="sqlite://"),
]


def test_all_cells_when_none_asked() -> None:
    assert select_cells(CELLS, []) == CELLS


def test_select_by_name_and_uuid_keeps_cell_order() -> None:
    chosen = select_cells(CELLS, ["22222222-2222-2222-2222-222222222222", "cell1"])
    assert [c.id for c in chosen] == [2, 3]


def test_unknown_cell_names_the_known_ones() -> None:
    with pytest.raises(UnknownCellError, match=r"unknown cell 'cell9'.*cell1 \(1111"):
        select_cells(CELLS, ["cell1", "cell9"])


def test_cell_repr_and_public_view_hide_the_url() -> None:
    cell = CELLS[0]
    assert "pw0" not in repr(cell)
    assert "database_connection" not in cell.public()
    assert cell.is_cell0 and cell.label == "cell0"
    assert CELLS[2].label == CELLS[2].uuid
