"""Nova's compute API, for the state changes Nova wants made through its API.

Forcing a service down and resetting an instance's state are API operations
in Nova: the API records an instance action, checks policy and targets the
right cell. host_fault uses them instead of writing the rows itself. The
section is `[nova]`, as other services' config files name it, with the same
keystoneauth1 options as `[placement]`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from keystoneauth1 import adapter

from nova_audit_ops.clients.keystone import make_adapter
from nova_audit_ops.clients.retry import (
    NO_RETRIES,
    TRANSIENT_STATUSES,
    UNPROCESSED_STATUSES,
    RetryPolicy,
    send_with_retries,
)
from nova_audit_ops.settings.errors import ConfigError, ServiceError, ServiceUnreachableError

LOG = logging.getLogger("nova_audit")

# 2.53: services addressed by uuid, forced_down and status in one PUT.
SERVICES_MV = "2.53"


class ComputeAPIError(ServiceError):
    """Nova's API answered one request with an error."""

    status: int

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Nova API returned {status}: {message}", status)


class ComputeClient:
    """The few compute API calls nova-audit makes, with explicit microversions."""

    def __init__(self, api: adapter.Adapter, policy: RetryPolicy = NO_RETRIES) -> None:
        self._api = api
        self._policy = policy

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], policy: RetryPolicy | None = None
    ) -> ComputeClient:
        if not options:
            raise ConfigError(
                "this task changes Nova through its API: add a [nova] section with "
                "keystoneauth1 options (auth_type, auth_url, ... or endpoint and token) to the "
                "config file (see docs/configuration.md)"
            )
        policy = policy or RetryPolicy()
        return cls(make_adapter("nova", options, "compute", SERVICES_MV, policy), policy)

    def _request(self, method: str, path: str, body: Any = None, **request: Any) -> Any:
        """Send one request, retrying transient answers (both calls are idempotent in effect).

        `PUT /os-services/{id}` sets absolute values; `os-resetState` sets
        vm_state to a given value and clears task_state (its repeat after a lost
        answer is guarded by `reset_state`). Any other POST would be repeated
        only on 429/503.
        """
        reset = isinstance(body, dict) and "os-resetState" in body
        idempotent = method in ("GET", "PUT") or reset
        statuses = TRANSIENT_STATUSES if idempotent else UNPROCESSED_STATUSES
        response, _ = send_with_retries(
            self._api,
            method,
            path,
            statuses=statuses,
            policy=self._policy,
            service="Nova's API",
            section="nova",
            json=body,
            **request,
        )
        data = response.json() if response.content else None
        if response.status_code >= 400:
            raise ComputeAPIError(response.status_code, _error_text(data, response.reason))
        return data

    def force_down(self, service_uuid: str, disabled_reason: str | None) -> None:
        """Mark a nova-compute service forced down (and disabled, when a reason is given)."""
        body: dict[str, Any] = {"forced_down": True}
        if disabled_reason is not None:
            body.update(status="disabled", disabled_reason=disabled_reason)
        self._request("PUT", f"/os-services/{service_uuid}", body)

    def return_to_service(self, service_uuid: str, *, enable: bool) -> None:
        """Clear forced_down of a nova-compute service (and enable it, when `enable`).

        One PUT: Nova applies both or neither, and refuses (400) while 'done'
        evacuations from the host remain.
        """
        body: dict[str, Any] = {"forced_down": False}
        if enable:
            body["status"] = "enabled"
        self._request("PUT", f"/os-services/{service_uuid}", body)

    def reset_state(self, instance_uuid: str, state: str) -> None:
        """`os-resetState`: vm_state to `state`, task_state cleared, action recorded.

        A reset whose answer timed out may have landed: repeating it blindly
        records a second resetState action. So the transport's own retries are
        off for it; the instance's resetState actions are counted first (one
        GET, no Neutron involved, unlike a server show) and, after a timeout,
        counted again: a reset that landed is not sent again. A refused or reset
        connection is simply retried.
        """
        path, body = f"/servers/{instance_uuid}/action", {"os-resetState": {"state": state}}
        before = self._resets(instance_uuid)
        for attempt in range(self._policy.retries + 1):
            try:
                self._request("POST", path, body, connect_retries=0)
                return
            except ServiceUnreachableError as exc:
                if attempt == self._policy.retries:
                    raise
                time.sleep(self._policy.pause(attempt + 1, None))
                if exc.timed_out and self._resets(instance_uuid) > before:
                    LOG.warning("Nova's API: resetting %s timed out but landed", instance_uuid)
                    return

    def _resets(self, instance_uuid: str) -> int:
        """How many resetState actions Nova has recorded for the instance."""
        data = self._request("GET", f"/servers/{instance_uuid}/os-instance-actions")
        return sum(1 for a in data.get("instanceActions", []) if a.get("action") == "resetState")


def _error_text(data: Any, default: str) -> str:
    """Nova wraps errors as {"badRequest": {"message": ...}} and similar."""
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
    return str(default)
