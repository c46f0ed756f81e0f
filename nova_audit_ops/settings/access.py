"""What a task may touch: its tables per database and the Keystone roles it needs.

Each task's SPEC declares this once; `nova-audit grants` prints GRANT statements
from it and a heal run checks the account's privileges against it before its
first write. Tests run every task under exactly these grants (tests/test_grants.py),
so a table the code uses but the declaration lacks fails there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SELECT, INSERT, UPDATE, DELETE = "SELECT", "INSERT", "UPDATE", "DELETE"
WRITES = (INSERT, UPDATE, DELETE)
PRIVILEGE_ORDER = (SELECT, INSERT, UPDATE, DELETE)
# Tables that come from the live schema, not from a list (nova/shadow.py).
ARCHIVE = "archive"  # every archivable table: SELECT+DELETE; its shadow: SELECT+INSERT
PURGE = "purge"  # every shadow table: SELECT+DELETE
PLACEMENT, NOVA, CINDER = "placement", "nova", "cinder"


@dataclass(frozen=True)
class DbAccess:
    """The tables one task reads, and in heal mode writes, in one kind of database."""

    reads: tuple[str, ...] = ()  # every table read, in either mode
    writes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # table -> privileges
    reflected: str | None = None  # ARCHIVE or PURGE: tables from the live schema

    def privileges(self, heal: bool) -> dict[str, set[str]]:
        """Table -> privileges of the listed tables (reflected ones are added by the caller).

        A heal run reads what an audit reads; UPDATE and DELETE with a WHERE also
        need SELECT on the table (MariaDB), so every written table is readable.
        """
        wanted: dict[str, set[str]] = {name: {SELECT} for name in self.reads}
        if heal:
            for name, privileges in self.writes.items():
                wanted.setdefault(name, {SELECT}).update(privileges)
        return wanted


@dataclass(frozen=True)
class ServiceRole:
    """The Keystone role a task's account needs on one service, per mode (None: no call)."""

    service: str  # PLACEMENT, NOVA or CINDER
    audit: str | None
    heal: str | None
    why: str  # the default policy rules that decide it

    def role(self, heal: bool) -> str | None:
        return self.heal if heal else self.audit


def sorted_privileges(privileges: set[str]) -> list[str]:
    """Privileges in the order GRANT statements conventionally list them."""
    rank = {name: index for index, name in enumerate(PRIVILEGE_ORDER)}
    return sorted(privileges, key=lambda p: (rank.get(p, len(rank)), p))


PLACEMENT_POLICY = (
    "Placement's default policy allows every call nova-audit makes (providers, their "
    "allocations and aggregates, every project's usages) to admin or service only "
    "(rule admin_or_service_api); it has no reader rule, so `service` is the narrower choice"
)


def placement_role(audit: str | None = "admin", heal: str | None = "admin") -> ServiceRole:
    """Placement's role: admin (or service) for reads and writes alike."""
    return ServiceRole(PLACEMENT, audit, heal, PLACEMENT_POLICY)


# Cinder's versions document has no policy: any role of the account reads it.
CINDER_VERSIONS_ONLY = ServiceRole(CINDER, "reader", None, "its versions document only: any role")
