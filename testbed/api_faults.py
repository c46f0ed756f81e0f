"""The real nova-api and Cinder of a bed behind the fault proxy, for tests and the fault matrix.

    with api_faults.started(bed, "cinder") as (cinder, direct):
        with api_faults.behind_proxy(direct, **api_faults.FAULTS["500"]) as (proxy, section):
            ... write `section` as the config's [cinder], `audit_section("500")` as [audit] ...

`direct` is the config section that reaches the service itself (for a
fault-free run afterwards), `section` the one that goes through the proxy.
The proxy words its errors as Nova's API and Cinder do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from testbed import cinder as cinder_bed
from testbed import nova_api
from testbed.fault_proxy import FaultProxy
from testbed.state import TestBed

SERVICES = ("nova", "cinder")  # the config section of each service
# A retry budget for test beds: no doubling pause, Retry-After honoured up to 1 s.
FAST_RETRIES = {
    "service_retries": "3",
    "service_retry_delay_ms": "0",
    "service_retry_max_delay": "1",
}
# Every 2nd request: the few requests a run of host_fault or volume_attachments
# makes are enough to meet several faults.
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"fail_every": 2, "status": 500},
    "503-retry-after": {"fail_every": 2, "status": 503, "retry_after": 1},
    "reset": {"reset_every": 2},
    # The request lands, its answer comes after service_timeout: the client
    # retries a write that is already done (see audit_section).
    "timeout": {"delay_every": 2, "delay": 2.5, "hold": "answer"},
}
TIMEOUT = "1"  # service_timeout with the "timeout" fault: shorter than its delay


def audit_section(fault: str) -> dict[str, str]:
    """The [audit] keys that go with one fault kind of FAULTS."""
    if fault == "timeout":
        return {**FAST_RETRIES, "service_timeout": TIMEOUT}
    return dict(FAST_RETRIES)


@contextmanager
def started(bed: TestBed, service: str) -> Iterator[tuple[Any, dict[str, str]]]:
    """Start the bed's nova-api or Cinder (seeded from the bed); (handle, its config section)."""
    if service == "nova":
        api = nova_api.start(bed)
        try:
            yield api, nova_api.config_section(api)
        finally:
            nova_api.stop(api)
        return
    if service != "cinder":
        raise ValueError(f"service {service!r}: one of {', '.join(SERVICES)}")
    cinder = cinder_bed.start(bed)
    try:
        cinder_bed.seed(bed, cinder)
        yield cinder, cinder_bed.config_section(cinder)
    finally:
        cinder_bed.stop(cinder)


@contextmanager
def behind_proxy(
    direct: dict[str, str], **faults: Any
) -> Iterator[tuple[FaultProxy, dict[str, str]]]:
    """A FaultProxy in front of the service `direct` reaches; (proxy, section through it)."""
    with FaultProxy(direct["endpoint"], error_format="openstack", **faults) as proxy:
        yield proxy, {**direct, "endpoint": proxy.url}


def injected(proxy: FaultProxy) -> int:
    """Faults the proxy has made so far: errors, resets and held requests."""
    return proxy.faults + proxy.resets + proxy.delays
