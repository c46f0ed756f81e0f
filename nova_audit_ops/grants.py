"""The MariaDB grants and Keystone roles each task needs, from the tasks' own declarations.

`nova-audit grants` prints them; a heal run checks its account against them
before the first write of each cell (runner.py), so an account lacking one is
refused with this command named and nothing written. Table lists come from each
SPEC's `api_tables`/`cell_tables`; archive's and purge's from the live schema
(nova/shadow.py), the same reflection the tasks run, so printing them reads
every cell database. Every run also reads `cell_mappings`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine, make_url

from nova_audit_ops.clients.db import Engines, mask_url
from nova_audit_ops.clients.privileges import held
from nova_audit_ops.nova.cells import CELL_MAPPINGS, Cell
from nova_audit_ops.nova.shadow import SHADOW_PREFIX, purgeable, reflect_plan
from nova_audit_ops.registry import TASKS
from nova_audit_ops.settings.access import (
    ARCHIVE,
    DELETE,
    INSERT,
    PURGE,
    SELECT,
    DbAccess,
    sorted_privileges,
)
from nova_audit_ops.settings.errors import ConfigError
from nova_audit_ops.settings.spec import TaskSpec

API, CELL = "api", "cell"
Privileges = dict[str, set[str]]  # table -> privileges
_ACCOUNT = re.compile(r"^(?P<user>[^@'`\s]+)@(?P<host>[^@'`\s]+)$")


@dataclass
class Database:
    """One database and the privileges the chosen tasks need in it."""

    label: str  # "API" or "cell <name>"
    name: str  # the database (schema) name
    url: str  # masked
    privileges: Privileges = field(default_factory=dict)
    accounts: bool = True  # False for SQLite, which has none


def account(text: str) -> tuple[str, str]:
    """`NAME@HOST` → (name, host), or a ConfigError saying how to write it."""
    match = _ACCOUNT.match(text or "")
    if not match:
        raise ConfigError(
            f"--user {text!r} is not NAME@HOST: e.g. --user nova_audit@10.0.0.% or "
            "--user nova_audit@% (no quotes, one @)"
        )
    return match["user"], match["host"]


def needed(spec: TaskSpec, heal: bool, kind: str, engine: Engine) -> Privileges:
    """The privileges one task needs in one database (API or a cell), in this mode."""
    heal = heal and not spec.read_only
    access: DbAccess = spec.api_tables if kind == API else spec.cell_tables
    wanted = access.privileges(heal)
    if kind == API:
        wanted.setdefault(CELL_MAPPINGS, set()).add(SELECT)
    if access.reflected == ARCHIVE:
        _merge(wanted, archive_privileges(engine, heal))
    elif access.reflected == PURGE:
        _merge(
            wanted, {t.name: {SELECT, DELETE} if heal else {SELECT} for t, _ in purgeable(engine)}
        )
    return wanted


def archive_privileges(engine: Engine, heal: bool) -> Privileges:
    """Archive: read every archivable table, its shadow and the tables its foreign keys
    name (reflection follows them); heal deletes from the tables and inserts into the shadows."""
    plan = reflect_plan(engine)
    wanted: Privileges = {}
    for table in plan.tables:
        wanted.setdefault(table.name, set()).update({SELECT, DELETE} if heal else {SELECT})
        wanted.setdefault(plan.shadow_of(table).name, set()).update(
            {SELECT, INSERT} if heal else {SELECT}
        )
        for fk in table.foreign_keys:
            wanted.setdefault(fk.column.table.name, set()).add(SELECT)
    for name in plan.problems:  # reported, not archived: read only
        wanted.setdefault(name, set()).add(SELECT)
        wanted.setdefault(SHADOW_PREFIX + name, set()).add(SELECT)
    return wanted


def plan(
    engines: Engines, cells: Sequence[Cell], tasks: Iterable[TaskSpec], heal: bool
) -> list[Database]:
    """Every database the tasks touch (the API's, then each cell's) and what they need there."""
    tasks = list(tasks)
    databases: dict[tuple[str, str], Database] = {}
    targets = [("API", API, engines.api, engines.api_url, tasks)]
    for cell in cells:
        chosen = [t for t in tasks if not (t.skips_cell0 and cell.is_cell0)]
        url = engines.cell_url(cell)
        targets.append((f"cell {cell.label}", CELL, engines.cell(cell), url, chosen))
    for label, kind, engine, url, specs in targets:
        parsed = make_url(url)
        key = (f"{parsed.host}:{parsed.port}", parsed.database or "")
        if key not in databases:
            accounts = parsed.get_backend_name() != "sqlite"
            databases[key] = Database(
                label, parsed.database or "", mask_url(url), accounts=accounts
            )
        else:
            databases[key].label += f", {label}"
        for spec in specs:
            _merge(databases[key].privileges, needed(spec, heal, kind, engine))
    return list(databases.values())


def statements(databases: Sequence[Database], user: str, host: str) -> list[str]:
    """GRANT statements, table by table, each database under a comment naming it."""
    grantee = f"'{user}'@'{host}'"
    lines: list[str] = []
    for db in databases:
        lines.append(f"-- {db.label}: database {db.name} ({db.url})")
        if not db.accounts:
            lines.append("-- SQLite has no accounts: nothing to grant")
            continue
        for table, privileges in sorted(db.privileges.items()):
            names = ", ".join(sorted_privileges(privileges))
            lines.append(f"GRANT {names} ON `{db.name}`.`{table}` TO {grantee};")
    return lines


def role_lines(tasks: Iterable[TaskSpec], heal: bool) -> list[str]:
    """The Keystone role each task needs on Placement, Nova and Cinder (default policies),
    one line per task and service, then each reason once."""
    lines: list[str] = []
    reasons: dict[str, None] = {}  # in order, each once
    for spec in tasks:
        for need in spec.roles:
            role = need.role(heal and not spec.read_only)
            if role:
                lines.append(f"--   {spec.name}: {need.service} role {role!r}")
                reasons.setdefault(f"{need.service} {role!r}: {need.why}", None)
    return lines + [f"--   why {reason}" for reason in reasons]


def fix_command(config_path: str | None, task: str, mode: str, grantee: str) -> str:
    """The `nova-audit grants` command that prints what this account lacks."""
    config = f" --config-file {config_path}" if config_path else ""
    return f"nova-audit grants{config} --mode {mode} --task {task} --user {grantee}"


def missing(spec: TaskSpec, engines: Engines, cell: Cell | None) -> tuple[list[str], str]:
    """What a heal run of `spec` needs in the API database (and the cell's) and the account
    lacks, as `PRIVILEGE on db.table`, with the account; nothing when it cannot be known."""
    targets = [(API, engines.api)] + ([(CELL, engines.cell(cell))] if cell else [])
    lacking: list[str] = []
    grantee = ""
    for kind, engine in targets:
        have = held(engine)
        if have is None:
            continue
        grantee = grantee or have.account
        schema = engine.url.database or ""
        for table, privileges in sorted(needed(spec, True, kind, engine).items()):
            for privilege in sorted_privileges(privileges):
                if not have.allows(schema, table, privilege):
                    lacking.append(f"{privilege} on {schema}.{table}")
    return lacking, grantee


def _merge(into: Privileges, more: Privileges) -> None:
    for table, privileges in more.items():
        into.setdefault(table, set()).update(privileges)


def all_tasks() -> list[TaskSpec]:
    return [TASKS[name] for name in sorted(TASKS)]
