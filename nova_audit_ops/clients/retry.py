"""Bounded retries of one service request after a transient fault, written once.

Placement, Nova's API and Cinder share this policy. Only faults that say
"try again" are retried: 429, 500, 502, 503 and 504 (requests that may
have been processed are retried only when the caller says the request is safe
to repeat: a read, a write guarded by a generation, an idempotent write).
The pause before each retry is the server's Retry-After when it sends one,
else `delay` doubling, never more than `max_delay`, so a service that stays
down costs at most `retries * max_delay` seconds per request. Connection
failures and read timeouts are retried by keystoneauth1 itself
(`connect_retries`, see keystone.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

from keystoneauth1 import adapter, exceptions

from nova_audit_ops.settings.errors import ServiceUnreachableError

# Answers that mean "not now": overloaded, restarting, behind a failing gateway.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# Answers that also mean "not processed": safe to repeat even for an unguarded write.
UNPROCESSED_STATUSES = frozenset({429, 503})

T = TypeVar("T")
LOG = logging.getLogger("nova_audit.retry")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one request is repeated after a transient fault."""

    retries: int = 3
    delay: float = 0.5
    max_delay: float = 10.0
    timeout: float = 60.0  # seconds one request may take (connect and each read)
    # Told of every request sent (retries too): the run's pacer counts them for
    # max_requests_per_second. A callback, so this floor imports nothing above it.
    on_request: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def pause(self, retry: int, retry_after: str | float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based), never over max_delay.

        A Retry-After in seconds is honoured (an HTTP date or garbage falls back
        to the doubling delay); a negative value counts as 0.
        """
        wait = self.delay * 2 ** (retry - 1)
        if retry_after is not None:
            with contextlib.suppress(TypeError, ValueError):
                wait = float(retry_after)
        return max(0.0, min(wait, self.max_delay))

    def worst_case(self) -> float:
        """The longest this policy sleeps for one request (timeouts not counted)."""
        return sum(self.pause(n, self.max_delay) for n in range(1, self.retries + 1))


NO_RETRIES = RetryPolicy(retries=0)


def with_retries(
    attempt: Callable[[], T],
    retry_after: Callable[[T], tuple[bool, str | float | None]],
    policy: RetryPolicy,
    *,
    what: str = "request",
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """Call `attempt` until `retry_after` says its result is final; (result, attempts made).

    `retry_after(result)` returns (transient, Retry-After value or None). The
    last result is returned as it is when the budget is spent.
    """
    retries_done = 0
    while True:
        result = attempt()
        transient, after = retry_after(result)
        if not transient or retries_done >= policy.retries:
            return result, retries_done + 1
        retries_done += 1
        wait = policy.pause(retries_done, after)
        LOG.warning(
            "%s failed transiently; retry %d of %d in %.1f s",
            what,
            retries_done,
            policy.retries,
            wait,
        )
        sleep(wait)


def status_verdict(
    statuses: Collection[int],
) -> Callable[[object], tuple[bool, str | None]]:
    """A `retry_after` for HTTP responses: transient when the status is in `statuses`."""

    def judge(response: object) -> tuple[bool, str | None]:
        status = getattr(response, "status_code", None)
        if status not in statuses:
            return False, None
        headers = getattr(response, "headers", None) or {}
        return True, headers.get("Retry-After")

    return judge


def send_with_retries(
    api: adapter.Adapter,
    method: str,
    path: str,
    *,
    statuses: Collection[int],
    policy: RetryPolicy,
    service: str,
    section: str,
    on_attempt: Callable[[], None] | None = None,
    **request: Any,
) -> tuple[Any, int]:
    """Send one REST request, retrying answers in `statuses`; (response, attempts made).

    A connection that cannot be made is a ServiceUnreachableError naming the
    service and the config section to check.
    """

    def send() -> Any:
        if on_attempt is not None:
            on_attempt()
        if policy.on_request is not None:
            policy.on_request()
        try:
            return api.request(path, method, raise_exc=False, **request)
        except (exceptions.ConnectionError, exceptions.EndpointNotFound) as exc:
            raise ServiceUnreachableError(
                f"{service} cannot be reached ({type(exc).__name__}): check the [{section}] "
                "section (endpoint, auth_url, region_name, valid_interfaces).",
                timed_out=isinstance(exc, exceptions.ConnectTimeout),
            ) from None

    return with_retries(send, status_verdict(statuses), policy, what=f"{service} {method} {path}")
