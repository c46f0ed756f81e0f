"""The summary's view of a split cell: a batch that never reported fails its cell."""

from __future__ import annotations

from nova_audit_ops.engine.report import Code, Report, merge
from nova_audit_ops.glue.operators.batch import BATCHES_DETAIL
from nova_audit_ops.glue.operators.summary import mark_missing_batches

CELL = {"id": 1, "uuid": "u-1", "name": "cell1", "disabled": False}


def unit(label: str, lo: int, hi: int | None) -> dict:
    return {"cell": CELL, "range": {"lo": lo, "hi": hi}, "slot": 0, "label": label}


def batch(label: str, examined: int) -> Report:
    report = Report(task="map_instances", mode="audit")
    report.cells_checked.append("cell1")
    report.counts.examined = examined
    report.details[BATCHES_DETAIL] = {label: "cell1"}
    return report


def test_batches_add_up_and_a_missing_one_fails_its_cell_by_range() -> None:
    units = [unit("cell1 ids 1-5", 0, 5), unit("cell1 ids 6-end", 5, None)]
    whole = {"cell": {**CELL, "uuid": "u-2", "name": "cell2"}, "range": None, "label": "cell2"}
    merged = merge("map_instances", "audit", [batch("cell1 ids 1-5", 5)])
    mark_missing_batches(merged, [*units, whole])
    assert merged.counts.examined == 5 and merged.cells_failed == ["cell1"]
    [failure] = [f for f in merged.findings if f.kind == "cell"]
    assert failure.problem.startswith("cell1 ids 6-end: no report")
    assert merged.code == Code.FAILURE

    complete = merge("map_instances", "audit", [batch(u["label"], 5) for u in units])
    mark_missing_batches(complete, [*units, whole])
    assert complete.counts.examined == 10 and complete.cells_checked == ["cell1"]
    assert not complete.cells_failed and complete.code == Code.OK


def test_metrics_see_one_report_per_cell() -> None:
    from nova_audit_ops.glue.operators.summary import per_cell

    reports = [batch("cell1 ids 1-5", 5), batch("cell1 ids 6-end", 3)]
    other = Report(task="map_instances", mode="audit", cells_checked=["cell2"])
    merged = per_cell("map_instances", [*reports, other])
    assert [(r.cells_checked, r.counts.examined) for r in merged] == [
        (["cell1"], 8),
        (["cell2"], 0),
    ]
