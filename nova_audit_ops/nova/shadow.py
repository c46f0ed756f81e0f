"""Nova's shadow tables as the live schema has them: what moves, in which order.

Reflected from the database, never from a hand-written list of Nova's tables
(the one fixed list names the tables Nova has retired), so archive and purge
keep working when Nova's schema changes: every table with a `shadow_`
twin takes part (except the ones Nova no longer models), foreign keys decide the
order (parents first, like Nova's `sorted_tables`) and which child rows move
with a parent. Purge, like Nova's, clears every shadow table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

SHADOW_PREFIX = "shadow_"
# The Asset alias archive runs update per cell and purge runs are scheduled on.
SHADOW_ASSET_ALIAS = "nova_audit_shadow_tables"
NOT_ARCHIVED = frozenset({"alembic_version", "migrate_version"})
# Tables whose Nova models were removed in Yoga (moved to the API DB in Newton, or
# left by nova-network, cells v1, XenAPI, EC2 and volume snapshots). The schema keeps
# them until an operator drops them; Nova's archive skips them (its REMOVED_TABLES),
# and so does ours, also as foreign-key children, so both leave the same rows.
REMOVED_TABLES = frozenset(
    {
        "aggregate_hosts", "aggregate_metadata", "aggregates", "allocations",
        "instance_group_member", "instance_group_policy", "instance_groups",
        "instance_type_extra_specs", "instance_type_projects", "instance_types",
        "inventories", "key_pairs", "resource_provider_aggregates", "resource_providers",
        "agent_builds", "bw_usage_cache", "console_pools", "consoles", "cells",
        "snapshots", "snapshot_id_mappings", "volume_id_mappings", "dns_domains",
        "fixed_ips", "floating_ips", "networks", "provider_fw_rules",
        "security_group_default_rules",
    }
)  # fmt: skip
# Rows that are never soft-deleted: purge judges them by another column (as Nova does).
PURGE_TIMESTAMP_OVERRIDES = {
    "shadow_instance_actions": "created_at",
    "shadow_instance_actions_events": "created_at",
    "shadow_task_log": "updated_at",
}


@dataclass(frozen=True)
class Edge:
    """`child.child_column` references `parent_column` of the parent table."""

    child: sa.Table
    child_column: sa.Column
    parent_column: sa.Column


@dataclass
class ShadowPlan:
    """The archivable tables of one cell database, parents first, and their FK children."""

    tables: list[sa.Table]
    shadows: dict[str, sa.Table]
    children: dict[str, list[Edge]] = field(default_factory=lambda: defaultdict(list))
    problems: dict[str, str] = field(default_factory=dict)  # table -> why it is skipped

    def shadow_of(self, table: sa.Table) -> sa.Table:
        return self.shadows[table.name]


def reflect_plan(engine: Engine) -> ShadowPlan:
    """Reflect the whole database once and derive the archive plan from it."""
    metadata = sa.MetaData()
    metadata.reflect(bind=engine)
    candidates = [
        t
        for t in metadata.sorted_tables
        if not t.name.startswith(SHADOW_PREFIX)
        and t.name not in NOT_ARCHIVED
        and t.name not in REMOVED_TABLES
        and SHADOW_PREFIX + t.name in metadata.tables
    ]
    plan = ShadowPlan(tables=[], shadows={})
    for main in candidates:
        shadow = metadata.tables[SHADOW_PREFIX + main.name]
        missing = [c.name for c in main.columns if c.name not in shadow.columns]
        if missing:
            plan.problems[main.name] = (
                f"{shadow.name} lacks column(s) {', '.join(missing)}: run `nova-manage db sync`"
            )
            continue
        plan.tables.append(main)
        plan.shadows[main.name] = shadow
    names = {t.name for t in plan.tables}
    for child in plan.tables:
        for fk in child.foreign_keys:
            parent = fk.column.table
            if parent.name in names and parent.name != child.name:
                plan.children[parent.name].append(Edge(child, fk.parent, fk.column))
    return plan


def purgeable(engine: Engine) -> list[tuple[sa.Table, sa.Column | None]]:
    """Every shadow table with the timestamp column purge judges its rows by.

    Shadows of tables archive never moves rows into (shadow_alembic_version) are
    left out: nothing can be in them to purge, so they are not worth a line per run.
    """
    metadata = sa.MetaData()
    # Only the shadow tables: an account that may purge needs no grant on the others.
    metadata.reflect(bind=engine, only=lambda name, _: name.startswith(SHADOW_PREFIX))
    result: list[tuple[sa.Table, sa.Column | None]] = []
    for table in metadata.sorted_tables:
        if not table.name.startswith(SHADOW_PREFIX):
            continue
        if table.name.removeprefix(SHADOW_PREFIX) in NOT_ARCHIVED:
            continue
        name = PURGE_TIMESTAMP_OVERRIDES.get(table.name)
        for candidate in ([name] if name else []) + ["deleted_at", "updated_at", "created_at"]:
            if candidate in table.columns:
                result.append((table, table.columns[candidate]))
                break
        else:
            result.append((table, None))
    return result
