"""The table privileges the current MariaDB/MySQL account holds, from SHOW GRANTS.

A heal run compares them with what its task needs before its first write
(nova_audit_ops/grants.py), so an account lacking a grant is refused with the
fix named and nothing of the cell written. SHOW GRANTS needs no privilege and
lists the grants of the session's enabled roles too. Column-level grants and
grants nova-audit cannot read are not counted: `nova-audit grants` prints
table-level ones, and a write the server refuses anyway is still caught
(error 1142/1143) with the same fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

TABLE_ACCESS_DENIED = 1142  # ER_TABLEACCESS_DENIED_ERROR: "INSERT command denied to user"
COLUMN_ACCESS_DENIED = 1143  # ER_COLUMNACCESS_DENIED_ERROR
DENIED_CODES = frozenset({TABLE_ACCESS_DENIED, COLUMN_ACCESS_DENIED})
ALL = "ALL PRIVILEGES"
_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON (?P<target>\S+) TO ", re.IGNORECASE)
_TARGET = re.compile(r"^(?P<schema>\*|`(?:[^`]|``)+`)\.(?P<table>\*|`(?:[^`]|``)+`)$")


@dataclass
class Held:
    """Privileges by scope: everywhere (*.*), per schema pattern, per table."""

    everywhere: set[str] = field(default_factory=set)
    schemas: dict[str, set[str]] = field(default_factory=dict)  # LIKE pattern -> privileges
    tables: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    account: str = ""  # CURRENT_USER(): NAME@HOST as GRANT names it

    def allows(self, schema: str, table: str, privilege: str) -> bool:
        """Whether `privilege` on schema.table is granted at any scope."""
        if _covers(self.everywhere, privilege):
            return True
        if _covers(self.tables.get((schema, table), set()), privilege):
            return True
        return any(
            _covers(held, privilege) and _like(pattern, schema)
            for pattern, held in self.schemas.items()
        )


def held(engine: Engine) -> Held | None:
    """The account's privileges, or None where they cannot be known (SQLite, no SHOW GRANTS)."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return None
    try:
        with engine.connect() as conn:
            lines = [str(row[0]) for row in conn.execute(sa.text("SHOW GRANTS"))]
            current = conn.execute(sa.text("SELECT CURRENT_USER()")).scalar()
    except SQLAlchemyError:
        return None
    result = parse(lines)
    result.account = str(current or "")
    return result


def parse(lines: list[str]) -> Held:
    """Table-level privileges of SHOW GRANTS lines (role grants and the like are skipped)."""
    result = Held()
    for line in lines:
        match = _GRANT.match(line.strip())
        target = _TARGET.match(match["target"]) if match else None
        if not match or not target:
            continue
        privileges = {p.strip().upper() for p in match["privileges"].split(",") if "(" not in p} - {
            "USAGE"
        }
        schema, table = _name(target["schema"]), _name(target["table"])
        if schema == "*":
            result.everywhere |= privileges
        elif table == "*":
            result.schemas.setdefault(schema, set()).update(privileges)
        else:
            result.tables.setdefault((schema, table), set()).update(privileges)
    return result


def is_denied(exc: BaseException) -> bool:
    """Whether a database error is the server refusing a statement for want of a privilege."""
    orig = getattr(exc, "orig", exc)
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    return bool(args) and args[0] in DENIED_CODES


def _covers(held: set[str], privilege: str) -> bool:
    return privilege in held or ALL in held


def _name(quoted: str) -> str:
    return quoted if quoted == "*" else quoted[1:-1].replace("``", "`")


def _like(pattern: str, name: str) -> bool:
    """MySQL's LIKE-style schema patterns of GRANT (`nova\\_cell%`.*)."""
    regex = ""
    escaped = False
    for char in pattern:
        if escaped:
            regex += re.escape(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            regex += ".*"
        elif char == "_":
            regex += "."
        else:
            regex += re.escape(char)
    return re.fullmatch(regex, name) is not None
