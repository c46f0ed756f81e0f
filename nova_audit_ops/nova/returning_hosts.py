"""Compute hosts that report again while Nova still holds them out of service.

Nova never un-forces a service by itself: a nova-compute forced down (by
host_fault or by anyone) that heartbeats again stays `forced_down`, out of the
scheduler, until someone notices. If the host had only lost its network, the
guests it kept running may now run twice: once there, once evacuated. What the
databases tell about such a host: its heartbeats (`last_seen_up`, set by Nova's
DB servicegroup driver whenever `report_count` grows), the instances that still
claim it and its evacuations (nova/evacuations.py). When it started reporting
again is not stored anywhere; nova-audit remembers its own first sighting
(`Sighting`) and checks with `report_count` that the host kept reporting since.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from nova_audit_ops.nova.evacuations import Evacuation, evacuations_from, instances_claiming
from nova_audit_ops.nova.services import ComputeService

# How host_fault's disabled_reason starts: the mark of a host nova-audit disabled.
NOVA_AUDIT_REASON = "nova-audit host_fault"
LISTED = 10  # instance uuids named in one finding; the rest are counted


def disabled_by_nova_audit(service: ComputeService) -> bool:
    """Disabled with host_fault's reason (never a host an operator disabled)."""
    return service.disabled and (service.disabled_reason or "").startswith(NOVA_AUDIT_REASON)


def is_returning(service: ComputeService, now: dt.datetime, down_after: int) -> bool:
    """Reported within `down_after` but forced down, or still disabled by nova-audit."""
    held_out = service.forced_down or disabled_by_nova_audit(service)
    return held_out and service.reported_within(now, down_after)


@dataclass(frozen=True)
class Sighting:
    """nova-audit's first sighting of a host reporting again, and its heartbeat count then."""

    seen_at: dt.datetime  # the reference time of the run that first saw it
    heartbeat: dt.datetime  # its last_seen_up then (naive UTC, as Nova stores it)
    reports: int  # its report_count then

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen_at": self.seen_at.isoformat(),
            "heartbeat": self.heartbeat.isoformat(),
            "reports": self.reports,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Sighting | None:
        """A stored sighting, or None when it is malformed (it is then taken again)."""
        try:
            return cls(
                dt.datetime.fromisoformat(data["seen_at"]),
                dt.datetime.fromisoformat(data["heartbeat"]),
                int(data["reports"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def reporting_for(self, service: ComputeService) -> float:
        """Seconds the host has reported without a gap, as far as the DB tells."""
        if service.last_heartbeat is None:
            return 0.0
        return max(0.0, (service.last_heartbeat - self.heartbeat).total_seconds())


def continued(stored: Any, service: ComputeService, now: dt.datetime, down_after: int) -> Sighting:
    """The host's sighting after this run: the stored one, unless the DB shows a gap since.

    A host that reported at least every `down_after` seconds between two
    heartbeats `t` seconds apart has sent at least ceil(t / down_after)
    reports: fewer counted (or a count or heartbeat gone backwards: a new
    service row) means it was silent in between, and the sighting starts over.
    """
    assert service.last_heartbeat is not None, "only a reporting host has a sighting"
    fresh = Sighting(now, service.last_heartbeat, service.report_count)
    previous = Sighting.from_dict(stored) if stored is not None else None
    if previous is None:
        return fresh
    elapsed = (service.last_heartbeat - previous.heartbeat).total_seconds()
    reports = service.report_count - previous.reports
    if elapsed < 0 or reports < 0 or reports < math.ceil(elapsed / down_after):
        return fresh
    return previous


@dataclass(frozen=True)
class ReturningHost:
    """A returning host with the instances that claim it and its evacuations."""

    service: ComputeService
    claiming: tuple[str, ...]
    evacuations: tuple[Evacuation, ...]

    @property
    def host(self) -> str:
        return self.service.host

    @property
    def evacuated(self) -> list[Evacuation]:
        """Evacuated from it and now on another host."""
        return [
            e
            for e in self.evacuations
            if not e.instance_deleted and e.instance_host and e.instance_host != self.host
        ]

    @property
    def not_cleaned(self) -> list[Evacuation]:
        """Evacuations whose old guest nova-compute has not destroyed on this host yet."""
        return [e for e in self.evacuations if e.source_not_cleaned]

    def held_out(self) -> str:
        """How Nova holds it out of service: forced down, disabled, and by whom."""
        parts = ["forced down"] if self.service.forced_down else []
        if disabled_by_nova_audit(self.service):  # its reason says since when it was silent
            parts.append(f"disabled by nova-audit ({self.service.disabled_reason})")
        elif self.service.disabled:
            parts.append(f"disabled by an operator ({self.service.disabled_reason or 'no reason'})")
        return " and ".join(parts)

    def describe(self, now: dt.datetime, sighting: Sighting | None = None) -> str:
        """The finding's problem: which host, since when it reports, which instances."""
        silent = self.service.seconds_silent(now)
        when = f"last heartbeat {silent:.0f} s ago" if silent is not None else "heartbeat unknown"
        if sighting is not None:
            when += (
                f", reporting without a gap since at least {_utc(sighting.heartbeat)}"
                f" (first seen by nova-audit {_utc(sighting.seen_at)})"
            )
        text = f"nova-compute on {self.host} reports again ({when}) but is {self.held_out()}"
        text += f"; {_listed(list(self.claiming))} still claim it"
        evacuated = self.evacuated
        text += f"; {_listed([e.where() for e in evacuated])} were evacuated elsewhere"
        if self.not_cleaned:
            both = [e.instance_uuid for e in self.not_cleaned if e.instance_uuid in self.claiming]
            text += (
                f"; {_listed([e.where() for e in self.not_cleaned])} were evacuated but "
                f"nova-compute on {self.host} has not destroyed their old guests yet, which may "
                "run twice"
            )
            if both:
                text += f" ({_listed(both)} both on it and evacuated)"
        return text

    def fix(self) -> str:
        """What the operator does next, the command that returns it to service included."""
        command = f"`nova-audit run host_fault --recovered-hosts {self.host} --mode heal`"
        if self.not_cleaned:
            return (
                f"restart nova-compute on {self.host}: at start-up it destroys the guests of "
                "instances evacuated away and marks their evacuations completed; check that no "
                f"guest runs twice, then run {command}"
            )
        return (
            f"make sure {self.host} is healthy and none of its guests also runs elsewhere, then "
            f"run {command}"
        )


def returning_host(engine: Engine, service: ComputeService) -> ReturningHost:
    """The facts about a returning host: two indexed queries on its cell."""
    return ReturningHost(
        service,
        tuple(instances_claiming(engine, service.host)),
        tuple(evacuations_from(engine, service.host)),
    )


def _listed(items: list[str]) -> str:
    """ "2 instance(s): a, b" with at most LISTED items named."""
    if not items:
        return "no instances"
    named = ", ".join(items[:LISTED])
    more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return f"{len(items)} instance(s) ({named}{more})"


def _utc(moment: dt.datetime) -> str:
    """A naive-UTC or aware moment as "2026-12-02 05:00:00 UTC"."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
