"""Plain SQL on the bed's databases: short-lived engines, one-shot statements, bulk inserts.

`query`, `scalar` and `execute` run one statement on a URL (what the tests use);
`connect` gives one transaction. Seeding must scale to 100,000 instances per
cell, so rows always go in with executemany (PyMySQL turns that into multi-row
INSERTs), never one statement per row.
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
def engine(url: str) -> Iterator[sa.Engine]:
    """An engine on `url` for the block, disposed when it ends."""
    eng = make_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()


@contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    """One transaction on `url`, committed when the block ends without error."""
    with engine(url) as eng, eng.begin() as conn:
        yield conn


def query(url: str, sql: str, **params: Any) -> list[sa.Row[Any]]:
    """The rows one SQL statement returns on `url`."""
    with engine(url) as eng, eng.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def scalar(url: str, sql: str, **params: Any) -> Any:
    """The first column of the first row one SQL statement returns on `url`."""
    return query(url, sql, **params)[0][0]


def execute(url: str, sql: str, **params: Any) -> None:
    """Run one SQL statement on `url` and commit it."""
    with connect(url) as conn:
        conn.execute(sa.text(sql), params)


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
