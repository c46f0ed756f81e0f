"""Nova's compute API, for the state changes Nova wants made through its API.

Forcing a service down and resetting an instance's state are API operations
in Nova: the API records an instance action, checks policy and targets the
right cell. host_fault uses them instead of writing the rows itself. The
section is `[nova]`, as other services' config files name it, with the same
keystoneauth1 options as `[placement]`.
"""

from __future__ import annotations

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
from nova_audit_ops.settings.errors import ConfigError, ServiceError

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

    def _request(self, method: str, path: str, body: Any) -> Any:
        """Send one request, retrying transient answers (both calls are idempotent in effect).

        `PUT /os-services/{id}` sets absolute values; `os-resetState` sets
        vm_state to a given value and clears task_state, so a repeat whose
        first attempt landed changes nothing but adds one more instance
        action record. Any other POST would be repeated only on 429/503.
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

    def reset_state(self, instance_uuid: str, state: str) -> None:
        """`os-resetState`: vm_state to `state`, task_state cleared, action recorded."""
        self._request(
            "POST", f"/servers/{instance_uuid}/action", {"os-resetState": {"state": state}}
        )


def _error_text(data: Any, default: str) -> str:
    """Nova wraps errors as {"badRequest": {"message": ...}} and similar."""
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
    return str(default)
