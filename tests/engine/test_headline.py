"""The one-paragraph headline of a report, and the drift it left, from the counts."""

from __future__ import annotations

from nova_audit_ops.engine.headline import MARKER, drift_left, headline
from nova_audit_ops.engine.report import Finding, Report, Status, merge


def finding(status: Status, cell: str, n: int, fix: str | None = None) -> Finding:
    return Finding(
        "host",
        f"host-{cell}-{n}",
        cell=cell,
        problem="unmapped",
        action="map",
        status=status,
        fix=fix,
    )


def test_clean_and_healed_runs_have_no_headline() -> None:
    healed = Report("discover_hosts", "heal")
    healed.add(finding(Status.FIXED, "cell1", 1))
    assert drift_left(healed) == 0
    assert headline(healed) is None
    assert headline(Report("discover_hosts", "audit")) is None


def test_drift_left_counts_what_still_needs_a_fix() -> None:
    report = Report("heal_allocations", "heal")
    report.add(finding(Status.FIXED, "cell1", 1))
    report.add(finding(Status.WOULD_FIX, "cell1", 2))
    report.add(finding(Status.LEFT, "cell2", 3))
    report.add(finding(Status.MUST_NOT_FIX, "cell2", 4))
    report.add(finding(Status.FAILED, "cell2", 5))
    report.cell_failed("cell3", "database unreachable", fix="check cell3")
    assert drift_left(report) == 3


def test_drift_left_survives_the_xcom_cap() -> None:
    report = Report("map_instances", "audit")
    for n in range(7):
        report.add(finding(Status.WOULD_FIX, "cell1", n))
    capped = Report.from_dict(report.to_dict(max_findings=2))
    assert len(capped.findings) == 2
    assert drift_left(capped) == 7


def test_headline_names_cells_counts_and_fix() -> None:
    one = Report("discover_hosts", "audit", cells_checked=["cell1"])
    one.add(finding(Status.WOULD_FIX, "cell1", 1, fix="nova-audit run discover_hosts --mode heal"))
    two = Report("discover_hosts", "audit", cells_checked=["cell2"])
    two.add(finding(Status.WOULD_FIX, "cell2", 2, fix="nova-audit run discover_hosts --mode heal"))
    two.add(finding(Status.WOULD_FIX, "cell2", 3, fix="nova-audit run discover_hosts --mode heal"))
    text = headline(merge("discover_hosts", "audit", [one, two]))
    assert text == (
        f"{MARKER} drift left in discover_hosts (audit mode): 3 finding(s) need a fix; "
        "by cell: cell1 1, cell2 2; fix: nova-audit run discover_hosts --mode heal."
    )


def test_headline_of_a_failure_names_the_cells_not_checked() -> None:
    report = Report("discover_hosts", "heal", cells_checked=["cell1"])
    report.add(finding(Status.FIXED, "cell1", 1))
    report.cell_failed("cell2", "database unreachable", fix="check cell2's database")
    text = headline(report)
    assert text is not None and text.startswith(f"{MARKER} FAILURE in discover_hosts (heal mode)")
    assert "0 finding(s) need a fix" in text
    assert "fixed 1" in text and "cells NOT checked: cell2" in text
