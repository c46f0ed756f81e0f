"""SQLAlchemy plumbing for the bed: short-lived engines and multi-row inserts.

Seeding must scale to 100,000 instances per cell, so rows always go in with
executemany (PyMySQL turns that into multi-row INSERTs), never one statement
per row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

CHUNK = 2000


def make_engine(url: str) -> sa.Engine:
    """An engine that holds no idle connections (beds come and go per test)."""
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


@contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    """One transaction on `url`, committed when the block ends without error."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def insert_rows(conn: sa.Connection, table: str, rows: Sequence[dict[str, Any]]) -> int:
    """INSERT many rows (all with the same keys) in chunks; return how many.

    On MariaDB the DBAPI's executemany gets plain tuples (PyMySQL sends multi-row
    INSERTs; skipping SQLAlchemy's per-row parameter handling is ~35 % faster). On
    SQLite, SQLAlchemy's insert keeps datetimes in the text format Nova's own writes use.
    """
    if not rows:
        return 0
    columns = list(rows[0])
    if conn.dialect.name in ("mysql", "mariadb"):
        quote = conn.dialect.identifier_preparer.quote
        sql = (
            f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})"
        )
        cursor = conn.connection.cursor()
        try:
            for start in range(0, len(rows), CHUNK):
                cursor.executemany(
                    sql, [tuple(row[c] for c in columns) for row in rows[start : start + CHUNK]]
                )
        finally:
            cursor.close()
        return len(rows)
    target = sa.table(table, *(sa.column(c) for c in columns))
    statement = sa.insert(target)
    for start in range(0, len(rows), CHUNK):
        conn.execute(statement, list(rows[start : start + CHUNK]))
    return len(rows)


def next_id(conn: sa.Connection, table: str) -> int:
    """The next free primary key of `table` (the seeder and drift pick ids themselves)."""
    return int(conn.execute(sa.text(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")).scalar_one())
