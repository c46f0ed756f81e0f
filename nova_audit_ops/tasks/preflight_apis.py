"""preflight's API checks: Placement and Cinder answer, at the microversions Nova needs.

The minimums are nova-status's: Placement 1.36 (the scheduler's same_subtree)
and Cinder 3.44 (volume attachment records).
"""

from __future__ import annotations

from keystoneauth1 import exceptions as ksa_exceptions

from nova_audit_ops import secrets
from nova_audit_ops.clients.cinder import server_versions
from nova_audit_ops.clients.placement import PlacementError
from nova_audit_ops.errors import NovaAuditError
from nova_audit_ops.report import Finding, Status
from nova_audit_ops.tasks.context import RunContext

MIN_PLACEMENT_MICROVERSION = "1.36"
MIN_CINDER_MICROVERSION = "3.44"


def version_tuple(text: str) -> tuple[int, int]:
    """'1.36' → (1, 36); a malformed version sorts lowest."""
    try:
        major, minor = text.split(".", 1)
        return int(major), int(minor)
    except ValueError:
        return (0, 0)


def check_problem(
    name: str, problem: str, fix: str, *, failure: bool = False, cell: str | None = None
) -> Finding:
    """A preflight finding: the check's name, what is wrong, and the command that fixes it."""
    return Finding(
        kind="check",
        object_id=name,
        cell=cell,
        problem=secrets.scrub(problem),
        action="nothing: preflight only reports",
        status=Status.FAILED if failure else Status.LEFT,
        fix=fix,
    )


def placement_check(ctx: RunContext) -> list[Finding]:
    """Placement reachable with our credentials and new enough for Nova."""
    name = "Placement API"
    fix = "check the [placement] section (auth, endpoint, region_name, valid_interfaces)"
    try:
        document = ctx.placement.get("/", "1.0")
        max_version = str(document["versions"][0]["max_version"])
    except NovaAuditError as exc:  # no [placement] section, or unreachable
        return [check_problem(name, str(exc), fix, failure=True)]
    except PlacementError as exc:
        return [check_problem(name, f"Placement refused the request: {exc}", fix, failure=True)]
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
        _, max_version = server_versions(ctx.config.cinder)
    except NovaAuditError as exc:
        return [check_problem(name, str(exc), fix, failure=True)], ""
    except (ksa_exceptions.ClientException, LookupError) as exc:
        problem = f"unable to determine the Cinder API version ({type(exc).__name__}: {exc})"
        return [check_problem(name, problem, fix)], ""
    if version_tuple(max_version) < version_tuple(MIN_CINDER_MICROVERSION):
        problem = (
            f"Cinder API {MIN_CINDER_MICROVERSION} or newer is required, this Cinder offers "
            f"{max_version}"
        )
        return [check_problem(name, problem, "upgrade Cinder", failure=True)], ""
    return [], ""
