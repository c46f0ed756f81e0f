"""heal_instance_mappings against a real Nova schema on MariaDB (test bed clones)."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from pathlib import Path
from typing import Any

from nova_audit_ops.engine.report import Code, Status
from tests import support

LATER = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)  # every row is past its grace
MARKER = "INSTANCE_MIGRATION_MARKER"


def live_instance(bed: Any, cell: str) -> tuple[str, str]:
    row = support.query(
        support.cell_url(bed, cell),
        "SELECT uuid, project_id FROM instances WHERE deleted = 0 ORDER BY id LIMIT 1",
    )[0]
    return row.uuid, row.project_id


def mapping_cell(bed: Any, instance_uuid: str) -> str | None:
    rows = support.query(
        bed.api_url,
        "SELECT cm.name FROM instance_mappings im LEFT JOIN cell_mappings cm "
        "ON im.cell_id = cm.id WHERE im.instance_uuid = :u",
        u=instance_uuid,
    )
    assert rows, f"no mapping for {instance_uuid}"
    return rows[0].name


def count(bed: Any, table: str, instance_uuid: str) -> int:
    rows = support.query(
        bed.api_url, f"SELECT COUNT(*) AS n FROM {table} WHERE instance_uuid = :u", u=instance_uuid
    )
    return int(rows[0].n)


def add_mapping(bed: Any, instance_uuid: str, cell: str | None, project: str = "p1") -> None:
    support.execute(
        bed.api_url,
        "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id, user_id, "
        "queued_for_delete, created_at) VALUES (:u, (SELECT id FROM cell_mappings WHERE "
        "name = :c), :p, 'u1', 0, NOW() - INTERVAL 1 HOUR)",
        u=instance_uuid,
        c=cell,
        p=project,
    )


def add_api_children(bed: Any, instance_uuid: str) -> None:
    support.execute(
        bed.api_url,
        "INSERT INTO request_specs (instance_uuid, spec, created_at) VALUES (:u, '{}', NOW())",
        u=instance_uuid,
    )
    support.execute(
        bed.api_url,
        "INSERT INTO instance_groups (uuid, project_id, user_id, name, created_at) "
        "VALUES (:g, 'p1', 'u1', 'grp', NOW())",
        g=str(uuidlib.uuid4()),
    )
    support.execute(
        bed.api_url,
        "INSERT INTO instance_group_member (instance_uuid, group_id, created_at) "
        "VALUES (:u, (SELECT MAX(id) FROM instance_groups), NOW())",
        u=instance_uuid,
    )


def null_the_cell(bed: Any, instance_uuid: str) -> None:
    support.execute(
        bed.api_url,
        "UPDATE instance_mappings SET cell_id = NULL, updated_at = NOW() - INTERVAL 1 HOUR "
        "WHERE instance_uuid = :u",
        u=instance_uuid,
    )


def test_consistent_cloud_has_nothing_to_heal(nova_bed: Any) -> None:
    report = support.run(nova_bed, "heal_instance_mappings", mode="heal", reference_time=LATER)
    assert report.code == Code.OK and report.findings == []
    assert report.counts.examined > 0
    assert "unassigned" in report.cells_checked


def test_null_cell_is_set_to_the_instances_cell(nova_bed: Any) -> None:
    uuid, _ = live_instance(nova_bed, "cell2")
    null_the_cell(nova_bed, uuid)
    report = support.run(nova_bed, "heal_instance_mappings", mode="heal", reference_time=LATER)
    assert [(f.object_id, f.status, f.cell) for f in report.findings] == [
        (uuid, Status.FIXED, "cell2")
    ]
    assert mapping_cell(nova_bed, uuid) == "cell2"


def test_young_mappings_wait_for_the_grace_period(nova_bed: Any) -> None:
    uuid, _ = live_instance(nova_bed, "cell1")
    support.execute(
        nova_bed.api_url,
        "UPDATE instance_mappings SET cell_id = NULL, updated_at = :t WHERE instance_uuid = :u",
        u=uuid,
        t=LATER.replace(tzinfo=None) - dt.timedelta(seconds=60),
    )
    report = support.run(nova_bed, "heal_instance_mappings", mode="heal", reference_time=LATER)
    assert report.findings == []
    assert mapping_cell(nova_bed, uuid) is None
    report = support.run(
        nova_bed, "heal_instance_mappings", mode="heal", reference_time=LATER, grace_period=30
    )
    assert mapping_cell(nova_bed, uuid) == "cell1"


def test_instance_being_built_is_never_touched(nova_bed: Any) -> None:
    building = str(uuidlib.uuid4())
    add_mapping(nova_bed, building, None)
    support.execute(
        nova_bed.api_url,
        "INSERT INTO build_requests (instance_uuid, project_id, created_at) "
        "VALUES (:u, 'p1', NOW() - INTERVAL 1 HOUR)",
        u=building,
    )
    report = support.run(nova_bed, "heal_instance_mappings", mode="heal", reference_time=LATER)
    assert report.findings == []
    assert count(nova_bed, "instance_mappings", building) == 1


def test_nova_marker_row_is_never_touched(nova_bed: Any) -> None:
    marker_uuid = "bbbbbbbb bbbb bbbb bbbb bbbbbbbbbbbb"
    add_mapping(nova_bed, marker_uuid, None, project=MARKER)
    report = support.run(nova_bed, "heal_instance_mappings", mode="heal", reference_time=LATER)
    assert report.findings == []
    assert count(nova_bed, "instance_mappings", marker_uuid) == 1


def test_orphans_are_deleted_with_their_api_rows(nova_bed: Any) -> None:
    orphan_null, orphan_set = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    add_mapping(nova_bed, orphan_null, None)
    add_mapping(nova_bed, orphan_set, "cell1")
    for uuid in (orphan_null, orphan_set):
        add_api_children(nova_bed, uuid)
    before = support.snapshot(nova_bed)
    audit = support.run(nova_bed, "heal_instance_mappings", mode="audit", reference_time=LATER)
    assert support.snapshot(nova_bed) == before, "audit mode wrote something"
    assert {f.object_id for f in audit.findings} == {orphan_null, orphan_set}
    assert audit.code == Code.WARNING
    report = support.run(nova_bed, "heal_instance_mappings", mode="heal", reference_time=LATER)
    assert report.code == Code.OK and report.counts.fixed == 2
    for uuid in (orphan_null, orphan_set):
        for table in ("instance_mappings", "request_specs", "instance_group_member"):
            assert count(nova_bed, table, uuid) == 0, (table, uuid)


def test_wrong_cell_is_corrected(nova_bed: Any) -> None:
    uuid, _ = live_instance(nova_bed, "cell1")
    support.execute(
        nova_bed.api_url,
        "UPDATE instance_mappings SET cell_id = (SELECT id FROM cell_mappings WHERE name = "
        "'cell2'), updated_at = NOW() - INTERVAL 1 HOUR WHERE instance_uuid = :u",
        u=uuid,
    )
    report = support.run(nova_bed, "heal_instance_mappings", mode="heal", reference_time=LATER)
    assert [(f.object_id, f.status) for f in report.findings] == [(uuid, Status.FIXED)]
    assert mapping_cell(nova_bed, uuid) == "cell1"


def test_drift_scenarios_are_healed(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "null_cell_mappings", 2)
    testbed.drift(nova_bed, "orphan_mappings", 2)
    testbed.drift(nova_bed, "wrong_cell_mappings", 2)
    report = support.run(nova_bed, "heal_instance_mappings", mode="heal", reference_time=LATER)
    assert report.code == Code.OK
    assert report.counts.fixed == 6
    again = support.run(nova_bed, "heal_instance_mappings", mode="audit", reference_time=LATER)
    assert again.findings == []


def test_unreachable_cell_blocks_deletion_but_not_other_fixes(
    nova_bed: Any, tmp_path: Path
) -> None:
    orphan = str(uuidlib.uuid4())
    add_mapping(nova_bed, orphan, None)
    uuid, _ = live_instance(nova_bed, "cell1")
    null_the_cell(nova_bed, uuid)
    conf = tmp_path / "bad-cell.conf"
    conf.write_text(
        Path(nova_bed.config_path).read_text()
        + "\n[audit.cells]\ncell2 = mysql+pymysql://natb:N0pe-Secret@127.0.0.1:1/x\n"
    )
    report = support.run(
        nova_bed,
        "heal_instance_mappings",
        mode="heal",
        reference_time=LATER,
        config_path=str(conf),
    )
    assert report.code == Code.FAILURE
    assert "cell2" in report.cells_failed
    by_id = {f.object_id: f for f in report.findings}
    assert by_id[orphan].status is Status.FAILED and "cell2" in by_id[orphan].problem
    assert count(nova_bed, "instance_mappings", orphan) == 1, "never delete on partial evidence"
    assert by_id[uuid].status is Status.FIXED
    assert mapping_cell(nova_bed, uuid) == "cell1"
    assert "N0pe-Secret" not in str(report.to_dict())
