"""host_fault's returning hosts: report them in every run, return named ones to service.

A compute service that is held out of service (forced down, or disabled by
nova-audit) and reports again is a finding in every run, audit included. Heal
mode returns a host to service only when

1. the operator names it in `recovered_hosts` (only they can know its guests
   are not also running where they were evacuated to);
2. it has reported without a gap for `recovered_after` seconds, as far as the
   database tells (nova-audit's sightings, kept in the state store by audit
   runs too, checked against `report_count`);
3. no evacuation from it still waits for nova-compute's start-up cleanup
   (migration 'accepted', 'pre-migrating' or 'done'): the old guests may run.

Then one `PUT /os-services/{uuid}` clears forced_down and, if nova-audit
disabled the host, enables it; a host an operator disabled stays disabled
(docs/decisions/0010-returning-hosts.md). A rerun finds nothing to do.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from nova_audit_ops.clients.compute import ComputeAPIError
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding, Status
from nova_audit_ops.engine.state import MarkerKind
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.returning_hosts import (
    ReturningHost,
    continued,
    disabled_by_nova_audit,
    is_returning,
    returning_host,
)
from nova_audit_ops.nova.services import ComputeService
from nova_audit_ops.settings.errors import ConfigError, NovaAuditError
from nova_audit_ops.settings.knobs import Knob

KNOBS = (
    Knob(
        "recovered_hosts",
        "list",
        [],
        "Hosts that report again and that heal mode may return to service (clear forced_down, "
        "re-enable what nova-audit disabled); name one only once its guests cannot also run "
        "where they were evacuated to.",
        rerun=False,  # a fix names the host it is about; other names would assert too much
    ),
    Knob(
        "recovered_after",
        "int",
        600,
        "Seconds a returning host must have reported without a gap before heal mode returns "
        "it to service (0: at once).",
        minimum=0,
        maximum=7 * 24 * 3600,
    ),
)
COMMAND = "nova-audit run host_fault --recovered-hosts {host} --mode heal"


class ReturningHosts:
    """One cell's returning hosts in one run, with the sightings kept between runs."""

    def __init__(self, ctx: RunContext, cell: Cell, engine: Engine) -> None:
        self.ctx, self.cell, self.engine = ctx, cell, engine
        self.failed = set(ctx.options["hosts"])
        self.recovered = set(ctx.options["recovered_hosts"])
        both = sorted(self.failed & self.recovered)
        if both:
            raise ConfigError(
                f"host_fault: {', '.join(both)} named both in `hosts` (failed) and in "
                "`recovered_hosts`: name each host in one of them"
            )
        self.down_after = int(ctx.options["down_after"])
        self.stored: dict[str, Any] = dict(ctx.load_marker(cell.uuid, MarkerKind.SIGHTINGS) or {})
        self.kept: dict[str, dict[str, Any]] = {}

    def handles(self, service: ComputeService, silent: bool) -> bool:
        """Whether this step owns the service: it reports again, or is named recovered."""
        if silent:
            return service.host in self.recovered
        return is_returning(service, self.ctx.reference_time, self.down_after)

    def handle(self, service: ComputeService, silent: bool) -> Finding:
        """The service's finding; in heal mode a named, ready host is returned to service."""
        if silent:
            return self._still_silent(service)
        facts = returning_host(self.engine, service)
        now = self.ctx.reference_time
        sighting = continued(self.stored.get(service.host), service, now, self.down_after)
        self.kept[service.host] = sighting.to_dict()
        problem = facts.describe(now, sighting)
        if service.host in self.failed:
            return self._finding(
                facts,
                f"{service.host} was named as failed in `hosts`, but {problem}",
                "nothing: a host that reports is never forced down",
                Status.MUST_NOT_FIX,
                f"leave {service.host} out of `hosts`; {facts.fix()}",
            )
        if service.host not in self.recovered:
            action = "nothing: a host returns to service only when named in `recovered_hosts`"
            return self._finding(facts, problem, action, Status.LEFT, facts.fix())
        if facts.not_cleaned:
            action = "nothing: instances evacuated from it may still run there"
            return self._finding(facts, problem, action, Status.MUST_NOT_FIX, facts.fix())
        waited = sighting.reporting_for(service)
        wanted = int(self.ctx.options["recovered_after"])
        if waited < wanted:
            return self._finding(
                facts,
                problem,
                f"not yet: it has reported for {waited:.0f} s of the {wanted} s "
                "`recovered_after` asks",
                Status.LEFT,
                f"rerun `{COMMAND.format(host=service.host)}` in {wanted - waited:.0f} s or later",
            )
        return self._return_to_service(facts, problem)

    def _return_to_service(self, facts: ReturningHost, problem: str) -> Finding:
        service = facts.service
        enable = disabled_by_nova_audit(service)
        action = "clear forced_down" if service.forced_down else ""
        if enable:
            action += " and enable it" if action else "enable it"
        elif service.disabled:
            action += "; it stays disabled: an operator disabled it"
        if not self.ctx.heal:
            return self._finding(facts, problem, f"would {action}", Status.WOULD_FIX, None)
        if not service.uuid:
            raise NovaAuditError(f"service of {service.host} has no uuid: Nova cannot address it")
        try:
            self.ctx.compute.return_to_service(service.uuid, enable=enable)
        except ComputeAPIError as exc:
            retry = f"check Nova's API log, then rerun `{COMMAND.format(host=service.host)}`"
            return self._finding(facts, problem, f"{action} failed: {exc}", Status.FAILED, retry)
        self.kept.pop(service.host, None)  # back in service: no longer returning
        fix: str | None = None
        if service.disabled and not enable:
            fix = (
                f"enable it when it should take instances again: `openstack compute service "
                f"set --enable {service.host} nova-compute`"
            )
        return self._finding(facts, problem, f"{action}: done", Status.FIXED, fix)

    def _still_silent(self, service: ComputeService) -> Finding:
        seconds = service.seconds_silent(self.ctx.reference_time)
        silence = "never reported" if seconds is None else f"has not reported for {seconds:.0f} s"
        return Finding(
            kind="host",
            object_id=service.host,
            cell=self.cell.label,
            problem=f"{service.host} was named as recovered, but its nova-compute {silence} "
            f"(down_after {self.down_after} s)",
            action="nothing: only a host that reports is returned to service",
            status=Status.MUST_NOT_FIX,
            fix=f"start nova-compute on {service.host} and check it reports "
            "(`openstack compute service list --service nova-compute`), then rerun "
            f"`{COMMAND.format(host=service.host)}`",
        )

    def _finding(
        self, facts: ReturningHost, problem: str, action: str, status: Status, fix: str | None
    ) -> Finding:
        return Finding(
            kind="host",
            object_id=facts.host,
            cell=self.cell.label,
            problem=problem,
            action=action,
            status=status,
            fix=fix,
        )

    def save(self) -> None:
        """Keep the sightings of hosts still returning; forget the others."""
        if self.kept != self.stored:
            self.ctx.save_marker(self.cell.uuid, self.kept or None, MarkerKind.SIGHTINGS)
