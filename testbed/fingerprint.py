"""What a healing run leaves behind, comparable between two runs that started from one state.

Kill tests compare the state after "killed at point p, then rerun" with the state
after one uninterrupted run. Raw checksums cannot do that: a killed INSERT burns
AUTO_INCREMENT ids and every run writes its own clock values. So:

    base = baseline(bed)            # right after restoring the saved state, before a run
    ...run the task (once, or killed then rerun)...
    shot = fingerprint(bed, base)   # {"db.<role>.<table>": Table, "placement": ..., ...}
    assert not differences(expected, shot), report(expected, shot)

Per table, the sorted multiset of rows, where
- an AUTO_INCREMENT id of a row inserted by the run (id >= the table's counter
  in `base`) becomes "<new id>"; ids of rows that existed before keep their value;
- a foreign key pointing at such a new row becomes "<new:" + that row's own
  normalised content + ">" (e.g. instance_actions_events.action_id);
- a DATETIME at or after `base.since` (written by the run) becomes "<run time>";
- in a new row, a request id (`req-<uuid>`, e.g. instance_actions.request_id
  written by nova-api) becomes "<request id>": every request gets a fresh one.
Tables whose CHECKSUM TABLE still equals the baseline's are not read: they
hold exactly the rows the run started from, which no normalisation changes
(such a table is "as saved"; a changed table can never normalise to the saved
rows, since those hold no new id and no run time). One fingerprint of a small
bed costs one CHECKSUM per database plus the tables the run changed.

Placement (`placement_state`, read from its database): per provider its
aggregates and allocations (consumer -> resources), per consumer with
allocations its project, user and type; no generations (a retried write bumps
them). Cinder (`cinder_state`): attachments
by id (volume, instance, status, attach mode).

`report(a, b)` says which table, consumer or attachment differs, with up to five
rows that only one side has. Keep this API stable: other kill and fault tests
use it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from testbed.backends import run
from testbed.db import engine
from testbed.state import TestBed

RUN_TIME = "<run time>"
NEW_ID = "<new id>"
REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Table:
    """One table's normalised rows (sorted reprs) and their digest."""

    digest: str
    rows: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and self.digest == other.digest

    def __hash__(self) -> int:
        return hash(self.digest)


@dataclass
class Baseline:
    """The state a run starts from: per database, AUTO_INCREMENT counters and checksums."""

    since: dt.datetime
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    checksums: dict[str, dict[str, Any]] = field(default_factory=dict)


def databases(bed: TestBed) -> dict[str, str]:
    """{role: url} of the bed's Nova databases: "api" and one per cell name."""
    return {"api": bed.api_url, **{cell.name: cell.url for cell in bed.cells}}


def baseline(bed: TestBed) -> Baseline:
    """Record the state a run is about to start from (call it before the run)."""
    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    base = Baseline(since=since)
    for role, url in databases(bed).items():
        with _connection(url) as conn:
            base.counters[role] = _counters(conn)
            base.checksums[role] = _checksums(conn, list(base.counters[role]))
    return base


def fingerprint(bed: TestBed, base: Baseline, placement: bool = True) -> dict[str, Any]:
    """The normalised state of every Nova database (and Placement) of `bed` since `base`."""
    shot: dict[str, Any] = {}
    for role, url in databases(bed).items():
        with _connection(url) as conn:
            for table, value in _database(conn, base, role).items():
                shot[f"db.{role}.{table}"] = value
    if placement and bed.placement_url:
        shot["placement"] = placement_state(bed)
    return shot


@contextmanager
def _connection(url: str) -> Iterator[sa.Connection]:
    with engine(url) as eng, eng.connect() as conn:
        yield conn


def _counters(conn: sa.Connection) -> dict[str, int]:
    rows = run(
        conn,
        "SELECT table_name, auto_increment FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'",
    ).all()
    return {str(r[0]): int(r[1] or 0) for r in rows}


def _checksums(conn: sa.Connection, tables: list[str]) -> dict[str, Any]:
    if not tables:
        return {}
    rows = run(conn, "CHECKSUM TABLE " + ", ".join(f"`{t}`" for t in sorted(tables))).all()
    return {str(r[0]).split(".", 1)[1]: r[1] for r in rows}


def _database(conn: sa.Connection, base: Baseline, role: str) -> dict[str, Table]:
    tables = sorted(_counters(conn))
    sums = _checksums(conn, tables)
    schema = _Schema(conn, base.counters.get(role, {}), base.since)
    result = {}
    for table in tables:
        if sums[table] == base.checksums.get(role, {}).get(table):
            result[table] = Table(f"as saved (checksum {sums[table]})")
        else:
            result[table] = schema.table(table)
    return result


class _Schema:
    """Reads and normalises tables of one database (see the module docstring)."""

    def __init__(self, conn: sa.Connection, counters: dict[str, int], since: dt.datetime) -> None:
        self.conn = conn
        self.counters = counters
        self.since = since
        self.auto = {
            str(r[0]): str(r[1])
            for r in run(
                conn,
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND extra LIKE '%auto_increment%'",
            )
        }
        self.refs: dict[tuple[str, str], str] = {}
        for r in run(
            conn,
            "SELECT table_name, column_name, referenced_table_name, referenced_column_name "
            "FROM information_schema.key_column_usage WHERE table_schema = DATABASE() "
            "AND referenced_table_name IS NOT NULL",
        ):
            if self.auto.get(str(r[2])) == str(r[3]):
                self.refs[(str(r[0]), str(r[1]))] = str(r[2])
        self.new_rows: dict[str, dict[Any, str]] = {}

    def _is_new(self, table: str, value: Any) -> bool:
        return value is not None and int(value) >= self.counters.get(table, 1 << 62)

    def _rows(self, table: str) -> tuple[list[str], list[sa.Row[Any]]]:
        result = run(self.conn, f"SELECT * FROM `{table}`")
        return list(result.keys()), list(result.all())

    def _normalise(self, table: str, columns: list[str], row: sa.Row[Any]) -> str:
        auto = self.auto.get(table)
        new = auto in columns and self._is_new(table, row[columns.index(auto)])
        values = []
        for name, value in zip(columns, row, strict=True):
            if name == auto and new:
                value = NEW_ID
            elif new and isinstance(value, str) and REQUEST_ID.fullmatch(value):
                value = "<request id>"
            elif (table, name) in self.refs and self._is_new(self.refs[(table, name)], value):
                value = "<new:" + self._new_row(self.refs[(table, name)], value) + ">"
            elif isinstance(value, dt.datetime) and value >= self.since:
                value = RUN_TIME
            values.append(f"{name}={value!r}")
        return "(" + ", ".join(values) + ")"

    def _new_row(self, table: str, key: Any) -> str:
        if table not in self.new_rows:
            self.new_rows[table] = {}
            columns, rows = self._rows(table)
            auto = self.auto[table]
            for row in rows:
                ident = row[columns.index(auto)]
                if self._is_new(table, ident):
                    self.new_rows[table][ident] = self._normalise(table, columns, row)
        return self.new_rows[table].get(key, f"missing {table} id {key}")

    def table(self, table: str) -> Table:
        columns, rows = self._rows(table)
        lines = tuple(sorted(self._normalise(table, columns, row) for row in rows))
        digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        return Table(digest, lines)


def placement_state(bed: TestBed) -> dict[str, Any]:
    """Placement without generations: aggregates and allocations per provider, consumers.

    Read from the bed's Placement database in three queries (the API would take one
    request per provider and per consumer): the same facts GET /allocations/{c} and
    /resource_providers/{uuid}/aggregates give, resource classes by id.
    """
    providers: dict[str, Any] = {}
    consumers: dict[str, Any] = {}
    with _connection(bed.placement_db_url) as conn:
        for rp, aggregate in run(
            conn,
            "SELECT rp.uuid, pa.uuid FROM resource_providers rp "
            "LEFT JOIN resource_provider_aggregates rpa ON rpa.resource_provider_id = rp.id "
            "LEFT JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id",
        ):
            entry = providers.setdefault(rp, {"aggregates": [], "allocations": {}})
            if aggregate:
                entry["aggregates"] = sorted([*entry["aggregates"], aggregate])
        for rp, consumer, rc, used in run(
            conn,
            "SELECT rp.uuid, a.consumer_id, a.resource_class_id, a.used FROM allocations a "
            "JOIN resource_providers rp ON rp.id = a.resource_provider_id",
        ):
            allocations = providers[rp]["allocations"].setdefault(consumer, {})
            allocations[f"rc{rc}"] = used
        for uuid, project, user, kind in run(
            conn,
            "SELECT c.uuid, p.external_id, u.external_id, ct.name FROM consumers c "
            "JOIN projects p ON p.id = c.project_id JOIN users u ON u.id = c.user_id "
            "LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id "
            "WHERE c.uuid IN (SELECT consumer_id FROM allocations)",
        ):
            consumers[uuid] = {"project_id": project, "user_id": user, "type": kind}
    return {"providers": providers, "consumers": consumers}


def cinder_state(
    attachments: dict[str, dict[str, Any]], volumes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Cinder attachments (testbed.cinder.attachments) and volumes, as a heal may change them.

    `volumes` is Cinder's `/volumes/detail` list: each volume's status and attachment ids.
    """
    keep = ("volume_id", "instance", "status", "attach_mode")
    state: dict[str, Any] = {
        "attachments": {
            ident: {k: v for k, v in sorted(data.items()) if k in keep}
            for ident, data in sorted(attachments.items())
        }
    }
    state["volumes"] = {
        v["id"]: {
            "status": v["status"],
            "attachments": sorted(a.get("attachment_id", "") for a in v["attachments"]),
        }
        for v in volumes or []
    }
    return state


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Keys whose values differ ("db.cell1.instances", "placement", "cinder", ...)."""
    return [k for k in sorted(set(expected) | set(actual)) if expected.get(k) != actual.get(k)]


def report(expected: dict[str, Any], actual: dict[str, Any], limit: int = 5) -> str:
    """A readable account of what differs between two fingerprints."""
    lines = []
    for key in differences(expected, actual):
        a, b = expected.get(key), actual.get(key)
        if isinstance(a, Table) and isinstance(b, Table):
            only_a = Counter(a.rows) - Counter(b.rows)
            only_b = Counter(b.rows) - Counter(a.rows)
            lines.append(
                f"{key}: {sum(only_a.values())} row(s) only expected, "
                f"{sum(only_b.values())} only actual"
            )
            lines += [f"  - {row}" for row in list(only_a)[:limit]]
            lines += [f"  + {row}" for row in list(only_b)[:limit]]
        elif isinstance(a, dict) and isinstance(b, dict):
            for sub in differences(_flat(a), _flat(b))[: limit * 2]:
                lines.append(
                    f"{key}.{sub}: expected {_flat(a).get(sub)!r}, got {_flat(b).get(sub)!r}"
                )
        else:
            lines.append(f"{key}: expected {a!r}, got {b!r}")
    return "\n".join(lines)


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
