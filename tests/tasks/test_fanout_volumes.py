"""volume_attachments split into instance id ranges, against a real Cinder: the batches
judge what one whole-cell run judges (archived servers in the open, last range)."""

from __future__ import annotations

from typing import Any

import pytest

from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.engine.state import MemoryStateStore
from testbed import cinder as cinder_bed
from testbed.db import connect
from tests import support
from tests.batches import plan, run_batched, split
from tests.tasks.test_volume_attachments import LATER, T0, cinder, config, run, statuses

__all__ = ["cinder", "config"]  # the fixtures, shared with test_volume_attachments
pytestmark = pytest.mark.timeout(300)


def archive(bed: Any, cell: str, server: str) -> None:
    """Remove a deleted server's rows from its cell as archive_deleted_rows would."""
    with connect(support.cell_url(bed, cell)) as conn:
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        conn.exec_driver_sql("DELETE FROM block_device_mapping WHERE instance_uuid = %s", (server,))
        conn.exec_driver_sql("DELETE FROM instances WHERE uuid = %s", (server,))


def test_batches_judge_what_the_whole_cell_run_judges(
    nova_bed: Any, cinder: cinder_bed.Cinder, config: str
) -> None:
    deleted = cinder_bed.deleted_servers(nova_bed, cinder, 3)
    stale = cinder_bed.stale_attachments(nova_bed, cinder, 1)
    lost = cinder_bed.lost_attachments(nova_bed, cinder, 1)
    archive(nova_bed, deleted[0]["cell"], deleted[0]["server"])
    params = {"mode": "audit", "cells": ["cell1", "cell2"]}
    state = MemoryStateStore()
    units = plan(nova_bed, "volume_attachments", state, config, fanout_instances=3, **params)
    assert len(split(units, "cell1")) > 1
    before = cinder_bed.attachments(cinder)
    whole = run(nova_bed, config, MemoryStateStore(), **params)
    batched = run_batched(nova_bed, "volume_attachments", state, units, config, T0, **params)
    assert batched.counts.to_dict() == whole.counts.to_dict()
    assert statuses(batched) == statuses(whole)
    assert {c["attachment_id"] for c in deleted + stale} <= set(statuses(whole))
    assert {c["server"] for c in lost} <= {f.object_id for f in whole.findings}
    assert cinder_bed.attachments(cinder) == before, "audit batches deleted attachments"

    heal = {**params, "mode": "heal"}
    healed = run_batched(nova_bed, "volume_attachments", state, units, config, LATER, **heal)
    dangling = {c["attachment_id"] for c in deleted}
    assert {a for a, s in statuses(healed).items() if s is Status.FIXED} == dangling
    assert healed.code == Code.WARNING  # the stale and lost ones wait for a reboot
    assert dangling.isdisjoint(cinder_bed.attachments(cinder))
    assert not state.values, "every batch's sightings were cleared once its attachments went"
