"""heal_allocations' global step: allocations held under the wrong project or user.

A provider's allocation list does not name owners, so Placement's usage per
project and user is compared with what the instances' allocations add up to,
one request per pair, and single consumers are read only for the pairs that
do not add up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from nova_audit_ops.clients.placement import PlacementError
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.schema import table
from nova_audit_ops.tasks.heal_allocations_steps.writes import NOVA_FIX


def check_owners(ctx: RunContext, cells: Sequence[Cell]) -> Report:
    """Owners: Placement's usage per project and user against the instances' allocations."""
    report = ctx.new_report()
    report.cells_checked.append("owners")
    if not ctx.options["check_owners"]:
        return report
    before = ctx.placement.requests
    owners = _owners(ctx, cells)
    held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cache = ctx.memos.provider_allocations
    for rp in ctx.placement.resource_providers():
        if rp["uuid"] not in cache:
            cache[rp["uuid"]] = ctx.placement.provider_allocations(rp["uuid"])
        for consumer, part in cache[rp["uuid"]].items():
            if consumer in owners:
                for rc, amount in part["resources"].items():
                    held[consumer][rc] += int(amount)
    expected: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for consumer, resources in held.items():
        for rc, amount in resources.items():
            expected[owners[consumer]][rc] += amount
    for pair in sorted(expected):
        report.counts.examined += 1
        actual = ctx.placement.usages(*pair)
        if {k: v for k, v in actual.items() if v} != dict(expected[pair]):
            for consumer in sorted(c for c in held if owners[c] == pair):
                _check_owner(ctx, consumer, pair, report)
    report.details["placement_requests"] = ctx.placement.requests - before
    return report


def _owners(ctx: RunContext, cells: Sequence[Cell]) -> dict[str, tuple[str, str]]:
    """instance uuid -> (project, user) for every live instance of every cell but cell0."""
    owners: dict[str, tuple[str, str]] = {}
    for cell in cells:
        if cell.is_cell0:
            continue
        engine = ctx.engines.cell(cell)
        i = table(engine, "instances")
        query = sa.select(i.c.uuid, i.c.project_id, i.c.user_id).where(i.c.deleted == 0)
        with engine.connect() as conn:
            owners.update({r.uuid: (r.project_id, r.user_id) for r in conn.execute(query)})
    return owners


def _check_owner(ctx: RunContext, consumer: str, pair: tuple[str, str], report: Report) -> None:
    project, user = pair

    def reown(current: dict[str, Any]) -> dict[str, Any] | None:
        if (current.get("project_id"), current.get("user_id")) == pair:
            return None
        return {
            "allocations": {
                rp: {"resources": part["resources"]} for rp, part in current["allocations"].items()
            },
            "project_id": project,
            "user_id": user,
        }

    try:
        current = ctx.placement.consumer_allocations(consumer)
        if reown(current) is None:
            return
        problem = (
            f"allocations are held for project {current.get('project_id')} user "
            f"{current.get('user_id')}, the instance belongs to project {project} user {user}"
        )
        if not ctx.heal:
            report.add(
                Finding(
                    "instance",
                    consumer,
                    problem,
                    "would set the owner",
                    Status.WOULD_FIX,
                    fix="nova-audit run heal_allocations --mode heal",
                )
            )
        elif ctx.placement.rewrite_consumer(consumer, reown) is not None:
            report.add(Finding("instance", consumer, problem, "set the owner", Status.FIXED))
    except PlacementError as exc:
        report.add(
            Finding(
                "instance",
                consumer,
                f"owner could not be fixed: {exc}",
                "nothing",
                Status.FAILED,
                fix=NOVA_FIX.format(uuid=consumer),
            )
        )
