"""Acceptance: Nova's own nova-manage finds the seeded cloud consistent, and finds the drift.

Exit codes read from nova/cmd/manage.py (Nova 34):
- `placement heal_allocations`: 0 healed some, 4 nothing healed; `--dry-run` never
  counts an instance as processed, so it always ends with 4: what it *would* do is
  only in its `[dry-run] Create/Update allocations for instance ...` lines. Without
  `--skip-port-allocations` it needs Neutron credentials (crashes with 255 here).
- `cell_v2 discover_hosts`: 0 whether or not it mapped anything (1 with --strict
  and nothing found), 2 on a duplicate host mapping.
- `db archive_deleted_rows`: 1 if it archived anything, 0 if nothing.
- `cell_v2 verify_instance`: 0 mapped, 1 no mapping, 2 NULL cell, 3 deleted, 4 archived.
- `placement audit`: 0 nothing orphaned, 3 orphans found (4 with --delete).
"""

from __future__ import annotations

import re
import subprocess

from sqlalchemy.engine import make_url

import testbed
from testbed import TestBed
from tests.testbed.util import (
    compute_hosts,
    host_mappings,
    instances,
    mappings,
    query,
    scalar,
    tables,
)


def manage(bed: TestBed, *args: str) -> subprocess.CompletedProcess[str]:
    return testbed.nova_manage(bed, *args)


def dry_run_lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    found = {}
    for match in re.finditer(
        r"\[dry-run\] (Create|Update) allocations for instance (\S+):", result.stdout
    ):
        found[match.group(2)] = match.group(1)
    return found


def test_heal_allocations_finds_nothing_to_heal(nova_bed: TestBed) -> None:
    result = manage(
        nova_bed,
        "placement",
        "heal_allocations",
        "--dry-run",
        "--verbose",
        "--skip-port-allocations",
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "[dry-run]" not in result.stdout
    live = sum(1 for _, (cell, gone) in instances(nova_bed).items() if not gone and cell != "cell0")
    assert result.stdout.count("is up-to-date. Nothing to be healed.") == live
    assert "Processed 0 instances." in result.stdout


def test_heal_allocations_sees_exactly_the_drift(nova_bed_placement: TestBed) -> None:
    missing = testbed.drift(nova_bed_placement, "missing_allocations", 2)
    wrong = testbed.drift(nova_bed_placement, "wrong_user_allocations", 2)
    result = manage(
        nova_bed_placement,
        "placement",
        "heal_allocations",
        "--dry-run",
        "--verbose",
        "--skip-port-allocations",
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert dry_run_lines(result) == {
        **{c["instance_uuid"]: "Create" for c in missing},
        **{c["instance_uuid"]: "Update" for c in wrong},
    }
    healed = manage(nova_bed_placement, "placement", "heal_allocations", "--skip-port-allocations")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    again = manage(
        nova_bed_placement,
        "placement",
        "heal_allocations",
        "--dry-run",
        "--verbose",
        "--skip-port-allocations",
    )
    assert dry_run_lines(again) == {}


def test_discover_hosts_finds_no_new_hosts(nova_bed: TestBed) -> None:
    before = tables(nova_bed)
    result = manage(nova_bed, "cell_v2", "discover_hosts", "--verbose")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Found 0 unmapped computes in cell") == 2
    assert "Creating host mapping" not in result.stdout
    assert tables(nova_bed) == before
    strict = manage(nova_bed, "cell_v2", "discover_hosts", "--strict")
    assert strict.returncode == 1


def test_discover_hosts_maps_exactly_the_drifted_hosts(nova_bed: TestBed) -> None:
    unmapped = testbed.drift(nova_bed, "unmapped_hosts", 2)
    added = testbed.drift(nova_bed, "new_hosts", 2)
    drifted = {(c["cell"], c["host"]) for c in unmapped + added}
    assert compute_hosts(nova_bed, mapped=0) == drifted
    assert not drifted & host_mappings(nova_bed)

    result = manage(nova_bed, "cell_v2", "discover_hosts", "--verbose")
    assert result.returncode == 0, result.stdout + result.stderr
    created = set(re.findall(r"Creating host mapping for compute host '([^']+)'", result.stdout))
    assert created == {host for _, host in drifted}
    assert host_mappings(nova_bed) == compute_hosts(nova_bed)
    assert compute_hosts(nova_bed, mapped=0) == set()
    # what discover_hosts writes: one host_mappings row (cell_id, host, created_at) per host
    rows = [
        r
        for r in query(nova_bed.api_url, "SELECT * FROM host_mappings")
        if r.host in {h for _, h in drifted}
    ]
    assert len(rows) == 4
    assert all(r.created_at is not None and r.updated_at is None for r in rows)


def test_archive_deleted_rows_takes_deleted_instances_and_their_children(
    nova_bed: TestBed,
) -> None:
    deleted = {u: cell for u, (cell, gone) in instances(nova_bed).items() if gone}
    live_before = {u for u, (_, gone) in instances(nova_bed).items() if not gone}
    result = manage(
        nova_bed, "db", "archive_deleted_rows", "--verbose", "--all-cells", "--until-complete"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    for cell in nova_bed.compute_cells:
        gone_here = {u for u, c in deleted.items() if c == cell.name}
        shadow = {r.uuid for r in query(cell.url, "SELECT uuid FROM shadow_instances")}
        assert shadow == gone_here
        assert scalar(cell.url, "SELECT COUNT(*) FROM instances WHERE deleted != 0") == 0
        for table in (
            "instance_extra",
            "instance_info_caches",
            "block_device_mapping",
            "instance_system_metadata",
            "instance_actions",
        ):
            archived = {
                r.instance_uuid
                for r in query(cell.url, f"SELECT instance_uuid FROM shadow_{table}")
            }
            assert archived == gone_here, table
        assert scalar(cell.url, "SELECT COUNT(*) FROM shadow_instance_actions_events") == (
            2 * len(gone_here)
        )
    assert set(instances(nova_bed)) == live_before
    assert set(mappings(nova_bed)) == live_before
    specs = {
        r.instance_uuid for r in query(nova_bed.api_url, "SELECT instance_uuid FROM request_specs")
    }
    assert specs == live_before
    again = manage(nova_bed, "db", "archive_deleted_rows", "--verbose", "--all-cells")
    assert again.returncode == 0 and "Nothing was archived." in again.stdout


def test_archive_before_a_date_takes_only_older_deletions(nova_bed: TestBed) -> None:
    rows = []
    for cell in nova_bed.compute_cells:
        rows += [
            (cell.name, r.uuid, r.deleted_at)
            for r in query(
                cell.url,
                "SELECT uuid, deleted_at FROM instances WHERE deleted != 0 ORDER BY deleted_at",
            )
        ]
    cutoff = sorted(r[2] for r in rows)[len(rows) // 2]
    older = {u for _, u, at in rows if at < cutoff}
    result = manage(
        nova_bed,
        "db",
        "archive_deleted_rows",
        "--all-cells",
        "--until-complete",
        "--before",
        cutoff.strftime("%Y-%m-%d %H:%M:%S"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    archived = set()
    for cell in nova_bed.compute_cells:
        archived |= {r.uuid for r in query(cell.url, "SELECT uuid FROM shadow_instances")}
    assert archived == older


def test_verify_instance_and_list_cells(nova_bed: TestBed) -> None:
    everything = instances(nova_bed)
    live = next(u for u, (c, gone) in everything.items() if not gone and c == "cell1")
    dead = next(u for u, (c, gone) in everything.items() if gone)
    ok = manage(nova_bed, "cell_v2", "verify_instance", "--uuid", live)
    assert ok.returncode == 0 and "is in cell: cell1" in ok.stdout
    assert manage(nova_bed, "cell_v2", "verify_instance", "--uuid", dead).returncode == 3
    (unmapped,) = testbed.drift(nova_bed, "unmapped_instances", 1)
    assert (
        manage(
            nova_bed, "cell_v2", "verify_instance", "--uuid", unmapped["instance_uuid"]
        ).returncode
        == 1
    )
    (null,) = testbed.drift(nova_bed, "null_cell_mappings", 1)
    assert (
        manage(nova_bed, "cell_v2", "verify_instance", "--uuid", null["instance_uuid"]).returncode
        == 2
    )

    cells = manage(nova_bed, "cell_v2", "list_cells")
    assert cells.returncode == 0
    secret = str(make_url(nova_bed.api_url).password)
    assert secret not in cells.stdout and "****" in cells.stdout
    for cell in nova_bed.cells:
        assert cell.uuid in cells.stdout


def test_map_instances_restores_the_drifted_mappings(nova_bed: TestBed) -> None:
    before = mappings(nova_bed)
    changed = testbed.drift(nova_bed, "unmapped_instances", 6)
    assert any(c["deleted"] for c in changed) and not all(c["deleted"] for c in changed)
    for cell in nova_bed.compute_cells:
        done = manage(nova_bed, "cell_v2", "map_instances", "--cell_uuid", cell.uuid)
        assert done.returncode == 0, done.stdout + done.stderr
    after = mappings(nova_bed)
    assert set(after) == set(before)
    for change in changed:
        # Nova's map_instances writes queued_for_delete = 0 even for deleted instances
        assert after[change["instance_uuid"]] == (change["cell"], False)


def test_placement_audit_and_sync_aggregates(nova_bed_placement: TestBed) -> None:
    bed = nova_bed_placement
    clean = manage(bed, "placement", "audit", "--verbose")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    orphans = testbed.drift(bed, "orphan_allocations", 2)
    found = manage(bed, "placement", "audit", "--verbose")
    assert found.returncode == 3
    reported = set(re.findall(r"consumer UUID (\S+) but no existing instances", found.stdout))
    assert reported == {c["consumer_uuid"] for c in orphans}

    before = testbed.snapshot_placement(bed, consumers=False)
    assert manage(bed, "placement", "sync_aggregates").returncode == 0
    generations = {u: p["generation"] for u, p in before["providers"].items()}
    after = testbed.snapshot_placement(bed, consumers=False)
    assert {u: p["generation"] for u, p in after["providers"].items()} == generations, (
        "sync_aggregates changed nothing on a consistent cloud"
    )
    missing = testbed.drift(bed, "missing_aggregates", 2)
    assert manage(bed, "placement", "sync_aggregates").returncode == 0
    restored = testbed.snapshot_placement(bed, consumers=False)
    for change in missing:
        assert change["aggregate_uuid"] in restored["providers"][change["provider"]]["aggregates"]
