"""Preflight's checks of the services nova-audit calls: Placement and Cinder."""

from __future__ import annotations

from keystoneauth1 import exceptions as ksa_exceptions

from nova_audit_ops.clients.cinder import CinderDiscoveryError
from nova_audit_ops.clients.placement import PlacementError
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Finding
from nova_audit_ops.settings.errors import NovaAuditError
from nova_audit_ops.tasks.preflight_checks.common import check_problem, version_tuple

# nova-status's minimums: Placement 1.36 (the scheduler's same_subtree) and Cinder 3.44
# (volume attachment records).
MIN_PLACEMENT_MICROVERSION = "1.36"
MIN_CINDER_MICROVERSION = "3.44"


def placement_check(ctx: RunContext) -> list[Finding]:
    """Placement reachable with our credentials and new enough for Nova."""
    name = "Placement API"
    fix = "check the [placement] section (auth, endpoint, region_name, valid_interfaces)"
    try:
        max_version = ctx.placement.max_microversion()
    except PlacementError as exc:  # before NovaAuditError, which it derives from
        return [check_problem(name, f"Placement refused the request: {exc}", fix, failure=True)]
    except NovaAuditError as exc:  # no [placement] section, or unreachable
        return [check_problem(name, str(exc), fix, failure=True)]
    except ksa_exceptions.ClientException as exc:
        problem = f"Placement cannot be used ({type(exc).__name__}: {exc})"
        return [check_problem(name, problem, fix, failure=True)]
    except (KeyError, IndexError, TypeError):
        problem = "Placement's version document has no max_version"
        return [check_problem(name, problem, fix, failure=True)]
    if version_tuple(max_version) < version_tuple(MIN_PLACEMENT_MICROVERSION):
        problem = (
            f"Placement API {MIN_PLACEMENT_MICROVERSION} needed, this Placement offers "
            f"{max_version}"
        )
        return [check_problem(name, problem, "upgrade Placement", failure=True)]
    return []


def cinder_check(ctx: RunContext) -> tuple[list[Finding], str]:
    """Cinder's volume API v3 at 3.44 or newer; skipped where Cinder is not configured.

    As in nova-status, an error reaching Cinder is a warning (the check could
    not decide) and a Cinder that is too old is a failure.
    """
    name = "Cinder API"
    if not ctx.config.cinder.get("auth_type") and not ctx.config.cinder.get("auth_plugin"):
        return [], "no [cinder] auth_type in the config"
    fix = "check the [cinder] section (auth, catalog_info or endpoint_override, region)"
    try:
        _, max_version = ctx.cinder.server_versions()
    except (ksa_exceptions.ClientException, CinderDiscoveryError) as exc:
        problem = f"unable to determine the Cinder API version ({type(exc).__name__}: {exc})"
        return [check_problem(name, problem, fix)], ""
    except NovaAuditError as exc:  # after CinderDiscoveryError, which derives from it
        return [check_problem(name, str(exc), fix, failure=True)], ""
    if version_tuple(max_version) < version_tuple(MIN_CINDER_MICROVERSION):
        problem = (
            f"Cinder API {MIN_CINDER_MICROVERSION} or newer is required, this Cinder offers "
            f"{max_version}"
        )
        return [check_problem(name, problem, "upgrade Cinder", failure=True)], ""
    return [], ""
