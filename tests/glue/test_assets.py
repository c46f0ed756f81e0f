"""Asset events of an archive run: one per cell that moved rows, named by the cell."""

from __future__ import annotations

from typing import Any

from nova_audit_ops.engine.report import Report
from nova_audit_ops.glue.assets import events, shadow_asset
from nova_audit_ops.nova.cells import CELL0_UUID

ALIAS = "nova_audit_shadow_tables"
CELLS = [
    {"id": 1, "uuid": CELL0_UUID, "name": "cell0", "disabled": False},
    {"id": 2, "uuid": "11111111-aaaa-4bbb-8ccc-000000000001", "name": "cell1", "disabled": False},
    {"id": 3, "uuid": "22222222-aaaa-4bbb-8ccc-000000000002", "name": None, "disabled": False},
]


def cell_report(
    label: str, rows: dict[str, int], mode: str = "heal", failed: bool = False
) -> Report:
    report = Report(task="archive_deleted_rows", mode=mode)
    if failed:
        report.cell_failed(label, "unreachable", fix="rerun")
    else:
        report.cells_checked.append(label)
    report.details["cutoff"] = "2026-04-01 05:00:00"
    report.details["rows"] = {label: rows}
    return report


def test_an_event_per_cell_that_moved_rows_named_by_the_cell() -> None:
    nameless = CELLS[2]["uuid"]
    reports = [
        cell_report("cell0", {}),  # cell0 archived nothing: no event
        cell_report("cell1", {"instances": 2, "instance_extra": 2}),
        cell_report(nameless, {"instances": 1}),
    ]
    found = events(CELLS, reports)
    assert [extra for _, extra in found] == [
        {
            "cell": "cell1",
            "cell_uuid": CELLS[1]["uuid"],
            "cutoff": "2026-04-01 05:00:00",
            "rows": {"instances": 2, "instance_extra": 2},
        },
        {
            "cell": nameless,
            "cell_uuid": nameless,
            "cutoff": "2026-04-01 05:00:00",
            "rows": {"instances": 1},
        },
    ]
    named = shadow_asset(ALIAS, found[0][0])
    assert named.name == f"{ALIAS}.cell1"
    assert named.uri == f"nova-audit://{ALIAS}/{CELLS[1]['uuid']}"
    assert shadow_asset(ALIAS, found[1][0]).name == f"{ALIAS}.{nameless}"  # no name: its uuid


def test_no_event_in_audit_mode_for_a_failed_cell_or_zero_rows() -> None:
    reports: list[Any] = [
        cell_report("cell1", {"instances": 3}, mode="audit"),
        cell_report("cell1", {"instances": 3}, failed=True),
        cell_report("cell1", {"instances": 0}),
        cell_report("no-such-cell", {"instances": 3}),
    ]
    assert events(CELLS, reports) == []
