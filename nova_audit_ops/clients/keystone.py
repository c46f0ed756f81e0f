"""keystoneauth1 sessions from nova.conf-style sections ([placement], [cinder]).

Any keystoneauth1 plugin works: `password` for real clouds, `admin_token`
(endpoint + token) for noauth set-ups. Options marked secret by their plugin
(passwords, tokens) are registered with the secrets module before use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keystoneauth1 import adapter, exceptions, loading, session

from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.retry import RetryPolicy
from nova_audit_ops.settings.errors import ConfigError

SESSION_OPTIONS = ("cafile", "certfile", "keyfile", "insecure", "timeout")


def _lookup(options: Mapping[str, str], opt: Any) -> str | None:
    names = [opt.dest, opt.name.replace("-", "_")]
    names += [d.dest for d in getattr(opt, "deprecated", [])]
    for name in names:
        if name in options and options[name] != "":
            return options[name]
    return None


def make_session(
    section: str, options: Mapping[str, str], policy: RetryPolicy | None = None
) -> session.Session:
    """A Session for one config section; errors name the section and the key.

    `policy` sets the default timeout and connection retries (connection
    refused or reset, read timeout); the section's `timeout` and
    `connect_retries` override them.
    """
    auth_type = options.get("auth_type") or options.get("auth_plugin")
    if not auth_type:
        raise ConfigError(
            f"[{section}] has no auth_type: use `password` (with auth_url, username, password, "
            "project_name, ...) or `admin_token` (with endpoint and token) for noauth services."
        )
    try:
        loader: Any = loading.get_plugin_loader(auth_type)
    except exceptions.NoMatchingPlugin:
        raise ConfigError(
            f"[{section}] auth_type = {auth_type!r} is not a keystoneauth1 plugin"
        ) from None
    values: dict[str, Any] = {}
    for opt in loader.get_options():
        raw = _lookup(options, opt)
        if raw is None:
            continue
        if opt.secret:
            secrets.register(raw)
        values[opt.dest] = opt.type(raw) if opt.type else raw
    try:
        auth = loader.load_from_options(**values)
    except exceptions.MissingRequiredOptions as exc:
        missing = ", ".join(o.dest for o in exc.options)
        raise ConfigError(f"[{section}] auth_type {auth_type} needs: {missing}") from None
    verify: bool | str = True
    if options.get("insecure", "").lower() in ("1", "true", "yes"):
        verify = False
    elif options.get("cafile"):
        verify = options["cafile"]
    cert = options.get("certfile")
    if cert and options.get("keyfile"):
        cert = (cert, options["keyfile"])  # type: ignore[assignment]
    policy = policy or RetryPolicy()
    timeout = float(options.get("timeout") or policy.timeout)
    return session.Session(
        auth=auth,
        verify=verify,
        cert=cert,
        timeout=timeout,
        connect_retries=connect_retries(options, policy),
    )


def connect_retries(options: Mapping[str, str], policy: RetryPolicy) -> int:
    """Connection retries: the section's `connect_retries`, else the policy's budget."""
    raw = options.get("connect_retries")
    return int(raw) if raw not in (None, "") else policy.retries


def make_adapter(
    section: str,
    options: Mapping[str, str],
    service_type: str,
    microversion: str | None = None,
    policy: RetryPolicy | None = None,
) -> adapter.Adapter:
    """An Adapter on the section's session, honouring Nova's endpoint options.

    keystoneauth1 retries connection failures and read timeouts (for every
    method: the callers' writes are guarded or idempotent, see retry.py);
    HTTP statuses are retried by the clients through retry.with_retries,
    which knows which requests are safe to repeat, unless the section sets
    `status_code_retries` itself.
    """
    policy = policy or RetryPolicy()
    # os_interface and os_region_name: the older nova.conf names of the same options.
    interfaces = options.get("valid_interfaces") or options.get("os_interface") or "internal,public"
    return adapter.Adapter(
        make_session(section, options, policy),
        service_type=options.get("service_type", service_type),
        service_name=options.get("service_name") or None,
        interface=[i.strip() for i in interfaces.split(",") if i.strip()],
        region_name=options.get("region_name") or options.get("os_region_name") or None,
        endpoint_override=options.get("endpoint_override") or None,
        default_microversion=microversion,
        connect_retries=connect_retries(options, policy),
        connect_retry_delay=max(policy.delay, 0.001),  # fixed; 0 would mean doubling
        status_code_retries=int(options.get("status_code_retries", 0)),
    )


def version_tuple(text: str) -> tuple[int, int]:
    """'1.36' → (1, 36); a malformed version sorts lowest (Placement and Cinder microversions)."""
    try:
        major, minor = text.split(".", 1)
        return int(major), int(minor)
    except ValueError:
        return (0, 0)
