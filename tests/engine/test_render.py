"""The report table: fits 120 columns, wraps instead of cutting, one header."""

from __future__ import annotations

import pytest

from nova_audit_ops import sweep
from nova_audit_ops.engine import render
from nova_audit_ops.engine.report import Finding, Report, Status

UUID = "9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f"
LONG_PROBLEM = (
    "instance mapping names cell0 but the instance lives in cell1 where it was built "
    "after a failed reschedule, so the API cannot find it and every server show fails"
)
LONG_FIX = (
    "nova-manage cell_v2 map_instances --cell_uuid 11111111-1111-1111-1111-111111111111 "
    "--max-count 1000 && nova-manage placement heal_allocations --instance " + UUID
)


def long_report() -> Report:
    report = Report(task="heal_instance_mappings", mode="audit", cells_checked=["cell1"])
    for i, status in enumerate((Status.WOULD_FIX, Status.LEFT, Status.MUST_NOT_FIX)):
        report.add(
            Finding(
                kind="instance",
                object_id=UUID if i else f"compute-host-with-a-very-long-name-{i}.example.org",
                cell="cell1",
                problem=f"{LONG_PROBLEM} ({i})",
                action="would point the mapping at cell1 and leave the build request alone",
                status=status,
                fix=LONG_FIX,
            )
        )
    report.details["rows"] = {f"cell{i}": {f"table_{j}": j for j in range(12)} for i in range(3)}
    report.details["checks"] = {"Placement API": "ok: 1.39 " + "and more words " * 12}
    return report


def words(finding: Finding) -> list[str]:
    return f"{finding.problem} {finding.action} {finding.fix}".split()


@pytest.mark.parametrize("width", [render.WIDTH, 160])
def test_every_line_fits_and_no_word_is_lost(width: int) -> None:
    report = long_report()
    text = render.table(report, width=width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    tokens = set(text.split())
    for finding in report.findings:
        missing = [w for w in words(finding) if w not in tokens]
        assert missing == [], f"cut or broken: {missing}"
    assert f"fix: {LONG_FIX.split()[0]}" in text  # the fix is labelled, and whole
    assert "table_11" in text  # details are wrapped, not shortened


def test_each_header_is_printed_once() -> None:
    text = render.table(long_report())
    assert text.count("heal_instance_mappings (audit mode)") == 1
    assert text.count("PROBLEM / ACTION / FIX") == 1 and text.count("STATUS") == 1
    titled = render.table(long_report(), title="heal_instance_mappings, cell cell1")
    assert titled.splitlines()[0] == "heal_instance_mappings, cell cell1"
    assert "(audit mode)" not in titled


def test_the_sweep_table_fits_too() -> None:
    report = long_report()
    outcomes = [
        sweep.Outcome(report.task, int(report.code), sweep.RAN, report, "not checked: cell-two"),
        sweep.Outcome("host_fault", 0, sweep.SKIPPED, note="no hosts named " * 8),
    ]
    text = sweep.table(sweep.Sweep("audit", outcomes))
    assert max(len(line) for line in text.splitlines()) <= render.WIDTH
    assert text.count("run all (audit mode)") == 1 and "result: FAILURE (2)" in text
    assert "not checked: cell-two" in text.split("run all (audit mode)")[1]
