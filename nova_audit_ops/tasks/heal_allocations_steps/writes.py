"""heal_allocations' writes: one POST /allocations per batch, one per consumer on a rejection.

A batch's new consumers go to Placement in one bulk write, all or nothing.
Only when Placement rejects it (409: a consumer that exists by now, a
provider's generation or capacity; 400: a body it refuses) does each consumer
get its own write, so the one at fault becomes a finding and the rest heal.
A batch of one is written as one consumer from the start: the same request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nova_audit_ops.clients.placement import PlacementError
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.nova import flavors
from nova_audit_ops.nova.cells import Cell

NOVA_FIX = "nova-manage placement heal_allocations --instance {uuid}"
# Answers to the bulk write that mean "nothing written, because of one of them".
REJECTED = frozenset({400, 409})


@dataclass(frozen=True)
class Instance:
    id: int
    uuid: str
    host: str | None
    node: str | None
    project_id: str
    user_id: str
    image_ref: str | None


@dataclass(frozen=True)
class Creation:
    """Allocations to create for an instance Placement lacks: its flavor on its node."""

    inst: Instance
    rp: str
    wanted: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {
            "allocations": {self.rp: {"resources": self.wanted}},
            "project_id": self.inst.project_id,
            "user_id": self.inst.user_id,
        }

    def matches(self, current: dict[str, Any]) -> bool:
        """Whether `current` holds exactly this: a write of ours that landed unanswered."""
        parts = {
            rp: dict(part.get("resources") or {})
            for rp, part in (current.get("allocations") or {}).items()
        }
        owner = (current.get("project_id"), current.get("user_id"))
        return parts == {self.rp: self.wanted} and owner == (
            self.inst.project_id,
            self.inst.user_id,
        )


def instance_finding(
    inst: Instance, cell: Cell, problem: str, action: str, status: Status, fix: str | None = None
) -> Finding:
    """A finding about one instance of this cell."""
    return Finding("instance", inst.uuid, problem, action, status, cell.label, fix=fix)


def failed(inst: Instance, cell: Cell, exc: Exception) -> Finding:
    return instance_finding(
        inst,
        cell,
        f"allocations could not be healed: {exc}",
        "nothing",
        Status.FAILED,
        NOVA_FIX.format(uuid=inst.uuid),
    )


def _problem(inst: Instance) -> str:
    return f"instance on {inst.host} has no allocations in Placement"


def report_would_create(ctx: RunContext, cell: Cell, creation: Creation, report: Report) -> None:
    """Audit: would heal unless the consumer has allocations elsewhere (left, as Nova does)."""
    inst = creation.inst
    try:
        if ctx.placement.consumer_allocations(inst.uuid).get("allocations"):
            return
    except PlacementError as exc:
        report.add(failed(inst, cell, exc))
        return
    action = f"would allocate {flavors.describe(creation.wanted)} on {creation.rp}"
    fix = "nova-audit run heal_allocations --mode heal"
    report.add(instance_finding(inst, cell, _problem(inst), action, Status.WOULD_FIX, fix))


def write_batch(
    ctx: RunContext,
    cell: Cell,
    creations: list[Creation],
    providers: dict[str, dict[str, Any]],
    report: Report,
) -> None:
    """Create a batch's allocations in one request; per consumer only if Placement rejects it."""
    if len(creations) > 1:
        try:
            ctx.placement.create_consumers({c.inst.uuid: c.body() for c in creations})
        except PlacementError as exc:
            if exc.status not in REJECTED:
                for creation in creations:
                    report.add(failed(creation.inst, cell, exc))
                return
            ctx.log.warning(
                "%s: Placement rejected the bulk write of %d consumers (%s); "
                "writing them one at a time",
                cell.label,
                len(creations),
                exc,
            )
        else:
            for creation in creations:
                _healed(cell, creation, providers, report)
            return
    for creation in creations:
        try:
            if _write_one(ctx, creation):
                _healed(cell, creation, providers, report)
        except PlacementError as exc:
            report.add(failed(creation.inst, cell, exc))


def _write_one(ctx: RunContext, creation: Creation) -> bool:
    """Create one consumer; False when it has allocations of someone else's by now."""
    seen: list[dict[str, Any]] = []

    def create(current: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(current)
        if current.get("allocations"):
            return None  # it has allocations elsewhere: Nova's command leaves them too
        return creation.body()

    if ctx.placement.create_consumer(creation.inst.uuid, create) is not None:
        return True
    return creation.matches(seen[-1])


def _healed(
    cell: Cell, creation: Creation, providers: dict[str, dict[str, Any]], report: Report
) -> None:
    inst = creation.inst
    providers.setdefault(creation.rp, {})[inst.uuid] = dict(creation.wanted)
    action = f"allocated {flavors.describe(creation.wanted)} on {creation.rp}"
    report.add(instance_finding(inst, cell, _problem(inst), action, Status.FIXED))
