"""Exceptions that carry an operator-facing message: the problem and the fix.

Messages never contain a database password; URLs in them are masked first.
"""

from __future__ import annotations


class NovaAuditError(Exception):
    """Base: a problem the operator can act on (exit code 2, nothing written)."""


class ConfigError(NovaAuditError):
    """A setting, a param or a CLI option has a value that cannot be used."""


class UnknownCellError(NovaAuditError):
    """A requested cell is not in cell_mappings."""


class DatabaseUnreachableError(NovaAuditError):
    """A Nova database (API or cell) cannot be reached or queried."""


class ServiceUnreachableError(NovaAuditError):
    """A REST service (Placement, Cinder) cannot be reached.

    `timed_out`: the request was sent and its answer never came, so it may have
    landed (a refused or reset connection is assumed not to have).
    """

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class LockBusyError(NovaAuditError):
    """Another run holds the named lock that serializes this task."""


class ServiceError(NovaAuditError):
    """A REST service (Placement, Nova's API, Cinder) answered one request with an error.

    `status` is the HTTP status of the answer, None where the client library
    did not say.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
