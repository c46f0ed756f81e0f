"""Asset events: an archive run tells the purge DAG which cells' shadow tables grew.

All of a run's events are added by one task (`announce`, after the cells), so
they land in one transaction and the scheduler starts one downstream run per
upstream run, not one per cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import Asset, AssetAlias, Context

from nova_audit_ops.engine.report import Report


def shadow_asset(alias: str, cell: Mapping[str, Any]) -> Asset:
    """The Asset of one cell's tables, named by the cell's name (its uuid if it has none).

    The URI keeps the uuid, which never changes, so a renamed cell gets a new
    name on the same URI.
    """
    label = cell.get("name") or cell["uuid"]
    return Asset(name=f"{alias}.{label}", uri=f"nova-audit://{alias}/{cell['uuid']}")


def rows_moved(report: Report) -> int:
    """Rows the report's cell moved (summed over its tables)."""
    per_cell = report.details.get("rows") or {}
    return sum(int(n) for tables in per_cell.values() for n in (tables or {}).values())


def events(
    cells: Iterable[Mapping[str, Any]], reports: Iterable[Report]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(cell, extra) of each cell whose heal run finished and moved rows; others send none."""
    by_label = {str(c.get("name") or c.get("uuid")): dict(c) for c in cells}
    found = []
    for report in reports:
        if report.mode != "heal" or report.cells_failed or len(report.cells_checked) != 1:
            continue
        cell = by_label.get(report.cells_checked[0])
        rows = rows_moved(report)
        if cell is None or not rows:
            continue
        extra = {
            "cell": cell.get("name") or cell["uuid"],
            "cell_uuid": cell["uuid"],
            "cutoff": report.details.get("cutoff"),
            "rows": report.details.get("rows", {}).get(report.cells_checked[0], {}),
        }
        found.append((cell, extra))
    return found


def announce(
    context: Context, alias: str, found: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    """Add one Asset event per cell, through the DAG's Asset alias."""
    outlet = context["outlet_events"][AssetAlias(alias)]
    for cell, extra in found:
        outlet.add(shadow_asset(alias, cell), extra=extra)
