"""Audit mode is enforced by MariaDB itself: an audit run's sessions refuse every write."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

import testbed
from nova_audit_ops import registry, runner
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.state import MemoryStateStore
from tests import support


def _context(bed: Any, mode: str) -> RunContext:
    cfg = registry.load_config(bed.config_path)
    return runner.open_context("map_instances", cfg, {"mode": mode}, state=MemoryStateStore())


def _read_only(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT @@session.tx_read_only")).scalar())


def test_audit_sessions_are_read_only_and_heal_sessions_are_not(nova_bed: Any) -> None:
    audit, heal = _context(nova_bed, "audit"), _context(nova_bed, "heal")
    try:
        cell = next(c for c in audit.all_cells() if c.name == "cell1")
        assert _read_only(audit.engines.api) == 1 and _read_only(audit.engines.cell(cell)) == 1
        assert _read_only(heal.engines.api) == 0 and _read_only(heal.engines.cell(cell)) == 0
        refused = pytest.raises(sa.exc.OperationalError, match="READ ONLY")
        with refused, audit.engines.api.begin() as conn:
            conn.execute(sa.text("UPDATE cell_mappings SET name = name"))
        preflight = runner.open_context(
            "preflight", registry.load_config(nova_bed.config_path), {}, state=MemoryStateStore()
        )
        assert _read_only(preflight.engines.api) == 1  # a report-only task never writes
        preflight.engines.dispose()
    finally:
        audit.engines.dispose()
        heal.engines.dispose()


def test_a_write_in_audit_mode_by_mistake_is_refused_and_reported_as_a_bug(
    nova_bed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate the bug: map_instances believes it heals while the run is an audit."""
    testbed.drift(nova_bed, "unmapped_instances", 3)
    before = support.snapshot(nova_bed)
    monkeypatch.setattr(RunContext, "heal", property(lambda self: True))
    report = support.run(nova_bed, "map_instances", mode="audit")
    assert runner.crashes(report) >= 1, report
    crashed = [f for f in report.findings if f.kind == "cell" and "nova-audit bug" in f.problem]
    assert crashed and all("READ ONLY" in f.problem for f in crashed), crashed
    assert support.snapshot(nova_bed) == before
