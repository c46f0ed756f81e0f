"""Asset events: a cell's heal run tells downstream DAGs that its tables changed."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias, Context

from nova_audit_ops.engine.report import Report
from nova_audit_ops.nova.cells import Cell


def shadow_asset(alias: str, cell: Cell) -> Asset:
    """The Asset standing for one cell's tables that `alias`'s producer changed."""
    return Asset(name=f"{alias}.{cell.uuid}", uri=f"nova-audit://{alias}/{cell.uuid}")


def announce(context: Context, alias: str, cell: Cell, report: Report) -> None:
    """Record an Asset event for this cell, through the DAG's Asset alias."""
    extra = {
        "cell": cell.label,
        "cutoff": report.details.get("cutoff"),
        "rows": report.details.get("rows", {}),
    }
    context["outlet_events"][AssetAlias(alias)].add(shadow_asset(alias, cell), extra=extra)
