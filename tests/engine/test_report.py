"""The result vocabulary: codes, counts, merging, capping, JSON shape."""

from __future__ import annotations

import json

import pytest

from nova_audit_ops.engine import render
from nova_audit_ops.engine.report import Code, Finding, Report, Status, merge


def finding(status: Status, obj: str = "host-1", cell: str = "cell1") -> Finding:
    return Finding(
        kind="host", object_id=obj, cell=cell, problem="p", action="a", status=status, fix="f"
    )


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param([], Code.OK, id="nothing found"),
        pytest.param([Status.FIXED], Code.OK, id="everything fixed"),
        pytest.param([Status.FIXED, Status.WOULD_FIX], Code.WARNING, id="drift left in audit"),
        pytest.param([Status.LEFT], Code.WARNING, id="left by a knob"),
        pytest.param([Status.WOULD_FIX, Status.MUST_NOT_FIX], Code.FAILURE, id="must not fix"),
        pytest.param([Status.FAILED, Status.FIXED], Code.FAILURE, id="one failure wins"),
    ],
)
def test_worst_code_wins(statuses: list[Status], expected: Code) -> None:
    report = Report(task="t", mode="heal")
    for status in statuses:
        report.add(finding(status))
    assert report.code == expected


def test_counts_follow_findings() -> None:
    report = Report(task="t", mode="heal")
    for status in (Status.FIXED, Status.FAILED, Status.LEFT, Status.WOULD_FIX):
        report.add(finding(status))
    assert report.counts.to_dict() == {
        "examined": 0,
        "drifted": 4,
        "fixed": 1,
        "failed": 1,
        "skipped": 1,
    }


def test_more_work_is_a_warning_and_a_failed_cell_a_failure() -> None:
    report = Report(task="t", mode="audit", more_work=True)
    assert report.code == Code.WARNING
    report.cell_failed("cell2", "unreachable", "start it")
    assert report.code == Code.FAILURE
    assert report.cells_failed == ["cell2"]


def test_merge_adds_counts_and_keeps_every_cell() -> None:
    one = Report(task="t", mode="heal", cells_checked=["cell1"])
    one.counts.examined = 3
    one.add(finding(Status.FIXED))
    two = Report(task="t", mode="heal", cells_checked=["cell2"], more_work=True)
    two.markers["cell2"] = {"last_id": 7}
    two.counts.examined = 4
    merged = merge("t", "heal", [one, two])
    assert merged.counts.examined == 7
    assert merged.counts.fixed == 1
    assert merged.cells_checked == ["cell1", "cell2"]
    assert merged.more_work and merged.markers == {"cell2": {"last_id": 7}}
    assert merged.code == Code.WARNING


def test_round_trip_through_json() -> None:
    report = Report(task="t", mode="audit", cells_checked=["cell1"])
    report.add(finding(Status.WOULD_FIX))
    data = json.loads(render.to_json(report))
    assert set(data) >= {"task", "mode", "code", "counts", "findings", "more_work"}
    assert set(data["counts"]) == {"examined", "drifted", "fixed", "failed", "skipped"}
    again = Report.from_dict(data)
    assert again.to_dict() == report.to_dict()


def test_capped_report_keeps_worst_findings_and_code() -> None:
    report = Report(task="t", mode="heal")
    for i in range(5):
        report.add(finding(Status.FIXED, obj=f"h{i}"))
    report.add(finding(Status.FAILED, obj="bad"))
    data = report.to_dict(max_findings=2)
    assert len(data["findings"]) == 2
    assert data["findings"][0]["object_id"] == "bad"
    assert data["details"]["findings_truncated"] == 4
    assert Report.from_dict(data).code == Code.FAILURE


def test_table_names_objects_and_verdict() -> None:
    report = Report(task="discover_hosts", mode="audit", cells_checked=["cell1"])
    report.add(finding(Status.WOULD_FIX, obj="compute-7"))
    text = render.table(report)
    assert "compute-7" in text
    assert "would_fix" in text
    assert "result: WARNING (1)" in text
