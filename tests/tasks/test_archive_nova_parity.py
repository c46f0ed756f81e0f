"""archive_deleted_rows against nova-manage on the tables the seeded cloud leaves empty.

The seed fills instances and their usual children. A production cell also has
soft-deleted services, compute nodes with PCI devices, security groups, quota
usages, migrations and virtual interfaces, and on clouds older than Newton
soft-deleted rows in tables whose models Nova has since removed (flavors,
aggregates, server groups). Nova moves every foreign-key child with its parent,
whatever the child's own `deleted`, skips the removed tables, and leaves rows
deleted after the cut-off or with no `deleted_at`. Both tools must leave the
same rows.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import testbed
from tests import support
from tests.tasks.test_archive_deleted_rows import content

OLD = "2026-01-01 00:00:00"
BEFORE = "2026-03-01 00:00:00"
RECENT = "2026-04-01 00:00:00"


def _insert(url: str, table: str, **row: Any) -> int:
    """Insert one row; its new id."""
    columns = ", ".join(f"`{c}`" for c in row)
    values = ", ".join(f":{c}" for c in row)
    support.execute(url, f"INSERT INTO `{table}` ({columns}) VALUES ({values})", **row)
    return int(support.query(url, f"SELECT MAX(id) AS id FROM `{table}`")[0].id)


def _soft_deleted(url: str, table: str, when: str | None = OLD, **row: Any) -> int:
    """A row soft-deleted the way Nova does it (deleted = id)."""
    new = _insert(url, table, created_at=OLD, deleted=0, **row)
    support.execute(
        url, f"UPDATE `{table}` SET deleted = id, deleted_at = :w WHERE id = :i", w=when, i=new
    )
    return new


def _add_rows_beyond_instances(url: str) -> None:
    serial = itertools.count()

    def _uuid() -> str:  # the same uuids each time: both tools must start from equal rows
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"nova-audit-parity-{next(serial)}"))

    gone = support.query(
        url,
        "SELECT uuid FROM instances WHERE deleted != 0 AND deleted_at < :b ORDER BY id LIMIT 1",
        b=BEFORE,
    )[0].uuid
    live = support.query(url, "SELECT uuid FROM instances WHERE deleted = 0 ORDER BY id LIMIT 1")[
        0
    ].uuid
    # children of an archived instance that are not deleted themselves
    _insert(url, "migrations", created_at=OLD, deleted=0, instance_uuid=gone,
            source_compute="h1", dest_compute="h2", status="confirmed",
            migration_type="migration", hidden=0, uuid=_uuid())  # fmt: skip
    _insert(url, "virtual_interfaces", created_at=OLD, deleted=0, instance_uuid=gone,
            address="fa:16:3e:00:00:01", uuid=_uuid())  # fmt: skip
    # a soft-deleted migration of a live instance: archived on its own
    _soft_deleted(url, "migrations", instance_uuid=live, status="error",
                  migration_type="resize", hidden=0, uuid=_uuid())  # fmt: skip
    # a deleted compute node takes its (live) PCI device along
    node = _soft_deleted(url, "compute_nodes", vcpus=8, memory_mb=1024, local_gb=10,
                         vcpus_used=0, memory_mb_used=0, local_gb_used=0,
                         hypervisor_type="fake", hypervisor_version=1, cpu_info="{}",
                         host="gone-host", hypervisor_hostname="gone-host",
                         uuid=_uuid())  # fmt: skip
    _insert(url, "pci_devices", created_at=OLD, deleted=0, compute_node_id=node,
            address="0000:00:01.0", product_id="1520", vendor_id="8086", dev_type="type-VF",
            label="label_8086_1520", status="available")  # fmt: skip
    _soft_deleted(url, "services", host="gone-host", binary="nova-compute",
                  topic="compute", report_count=0)  # fmt: skip
    # legacy flavors, aggregates and server groups with their children
    flavor = _soft_deleted(url, "instance_types", name="old.flavor", memory_mb=512,
                           vcpus=1, swap=0, flavorid="old")  # fmt: skip
    _insert(url, "instance_type_extra_specs", deleted=0, instance_type_id=flavor,
            key="hw:cpu_policy", value="dedicated")  # fmt: skip
    aggregate = _soft_deleted(url, "aggregates", name="old-agg", uuid=_uuid())
    _insert(url, "aggregate_hosts", deleted=0, aggregate_id=aggregate, host="gone-host")
    _insert(url, "aggregate_metadata", deleted=0, aggregate_id=aggregate, key="k", value="v")
    group = _soft_deleted(url, "instance_groups", uuid=_uuid(), name="old-group")
    _insert(url, "instance_group_member", deleted=0, group_id=group, instance_id=gone)
    _insert(url, "instance_group_policy", deleted=0, group_id=group, policy="anti-affinity")
    # a deleted security group takes its association with a live instance along (no rule:
    # security_group_rules has two foreign keys to security_groups and nova-manage copies
    # such a child twice and stops on the duplicate key; Neutron clouds have no such rows)
    group_id = _soft_deleted(url, "security_groups", name="old-sg", project_id="p")
    _insert(url, "security_group_instance_association", deleted=0,
            security_group_id=group_id, instance_uuid=live)  # fmt: skip
    usage = _soft_deleted(url, "quota_usages", resource="cores", in_use=0, reserved=0,
                          project_id="p")  # fmt: skip
    _insert(url, "reservations", deleted=0, usage_id=usage, uuid=_uuid(), delta=1)
    # rows that must stay: deleted after the cut-off, or deleted with no deleted_at
    _soft_deleted(url, "security_groups", when=RECENT, name="recent-sg", project_id="p")
    _soft_deleted(url, "security_groups", when=None, name="undated-sg", project_id="p")


def test_same_result_as_nova_manage_beyond_instances(nova_bed: Any, nova_template: Any) -> None:
    url = support.cell_url(nova_bed, "cell1")
    _add_rows_beyond_instances(url)
    added = content(nova_bed)
    support.run(nova_bed, "archive_deleted_rows", mode="heal", before=BEFORE)
    ours = content(nova_bed)
    assert ours != added, "nothing was archived"
    moved = support.query(url, "SELECT COUNT(*) AS n FROM shadow_pci_devices")[0].n
    assert moved == 1, "a deleted compute node takes its PCI device along"
    kept = support.query(url, "SELECT COUNT(*) AS n FROM shadow_aggregates")[0].n
    assert kept == 0, "tables Nova no longer models are not archived"

    testbed.reset(nova_bed, nova_template)
    _add_rows_beyond_instances(url)
    result = testbed.nova_manage(
        nova_bed, "db", "archive_deleted_rows", "--all-cells", "--until-complete",
        "--before", BEFORE,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stdout + result.stderr
    theirs = content(nova_bed)
    differ = {
        (db, t): (ours[db][t], theirs[db][t])
        for db in ours
        for t in ours[db]
        if ours[db][t] != theirs[db][t]
    }
    assert not differ, f"tables left differently: {sorted(t for _, t in differ)}"
