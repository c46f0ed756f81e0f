"""heal_allocations' global step: allocations held under the wrong project or user.

A provider's allocation list does not name owners, so Placement's usage per
project and user is compared with what the instances' allocations add up to,
one request per pair. Consumers that are no live instance (migrations, deleted
instances) also count in a pair's usage: they are read once each for their
owner, and single instances are read only for the pairs still not adding up.
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
    # Sums, not one entry per consumer: the step's memory stays that of `owners`.
    expected: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seen: set[str] = set()  # instances that hold allocations
    others: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cache = ctx.memos.provider_allocations
    for rp in ctx.placement.resource_providers():
        # Read, not kept: the cell steps' cache serves what they read; holding every
        # provider's list here too would grow the run's memory with the cloud.
        listing = cache.get(rp["uuid"])
        if listing is None:
            listing = resources_by_consumer(ctx.placement.provider_allocations(rp["uuid"]))
        for consumer, resources in listing.items():
            owner = owners.get(consumer)
            if owner is None:
                sums = others[consumer]
            else:
                seen.add(consumer)
                sums = expected[owner]
            for rc, amount in resources.items():
                sums[rc] += int(amount)
    usage = {pair: _in_use(ctx.placement.usages(*pair)) for pair in sorted(expected)}
    report.counts.examined += len(usage)
    unequal = [pair for pair in usage if usage[pair] != dict(expected[pair])]
    if unequal and others:
        unequal = _explained_by_others(ctx, unequal, usage, expected, seen, others, owners)
    for pair in unequal:
        for consumer in sorted(c for c in seen if owners[c] == pair):
            _check_owner(ctx, consumer, pair, report)
    report.details["placement_requests"] = ctx.placement.requests - before
    return report


def resources_by_consumer(listing: dict[str, Any]) -> dict[str, dict[str, int]]:
    """A provider's allocation list as consumer -> resources, all that the task keeps."""
    return {consumer: part["resources"] for consumer, part in listing.items()}


def _in_use(usages: dict[str, int]) -> dict[str, int]:
    return {rc: amount for rc, amount in usages.items() if amount}


def _explained_by_others(
    ctx: RunContext,
    unequal: list[tuple[str, str]],
    usage: dict[tuple[str, str], dict[str, int]],
    expected: dict[tuple[str, str], dict[str, int]],
    seen: set[str],
    others: dict[str, dict[str, int]],
    owners: dict[str, tuple[str, str]],
) -> list[tuple[str, str]]:
    """The pairs that still do not add up once consumers that are no instance are counted.

    A pair's usage also counts its migrations' and deleted instances' allocations, so
    one such consumer makes the pair differ. When they are fewer than the instances of
    the differing pairs, each is read once for its owner, and only the pairs they do
    not explain have their instances read one by one.
    """
    suspects = sum(1 for c in seen if owners[c] in set(unequal))
    if len(others) >= suspects:
        return unequal
    counted = {pair: dict(expected[pair]) for pair in unequal}
    for consumer in sorted(others):
        try:
            current = ctx.placement.consumer_allocations(consumer)
        except PlacementError:
            return unequal  # an owner not learnt: read the instances, as without this step
        owner = (current.get("project_id"), current.get("user_id"))
        if owner in counted:
            for rc, amount in others[consumer].items():
                counted[owner][rc] = counted[owner].get(rc, 0) + amount
    return [pair for pair in unequal if usage[pair] != counted[pair]]


def _owners(ctx: RunContext, cells: Sequence[Cell]) -> dict[str, tuple[str, str]]:
    """instance uuid -> (project, user) for every live instance of every cell but cell0."""
    owners: dict[str, tuple[str, str]] = {}
    pairs: dict[tuple[str, str], tuple[str, str]] = {}
    for cell in cells:
        if cell.is_cell0:
            continue
        engine = ctx.engines.cell(cell)
        i = table(engine, "instances")
        query = sa.select(i.c.uuid, i.c.project_id, i.c.user_id).where(i.c.deleted == 0)
        with engine.connect() as conn:
            for row in conn.execute(query):  # one tuple per pair, not one per instance
                pair = (row.project_id, row.user_id)
                owners[row.uuid] = pairs.setdefault(pair, pair)
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
