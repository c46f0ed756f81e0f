"""Nova's tables, reflected from the live database so any Nova release works."""

from __future__ import annotations

import threading
import weakref

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_lock = threading.Lock()
_metadata: weakref.WeakKeyDictionary[Engine, sa.MetaData] = weakref.WeakKeyDictionary()


def table(engine: Engine, name: str) -> sa.Table:
    """The reflected table `name` of this engine's database (cached per engine).

    Tables its foreign keys name are not reflected with it: a least-privilege
    account may read a table without reading the tables it references.
    """
    with _lock:
        metadata = _metadata.setdefault(engine, sa.MetaData())
        if name in metadata.tables:
            return metadata.tables[name]
    reflected = sa.Table(name, sa.MetaData(), autoload_with=engine, resolve_fks=False)
    with _lock:
        if name not in metadata.tables:
            reflected.to_metadata(metadata)
        return metadata.tables[name]


def schema_revision(engine: Engine) -> str | None:
    """The database's Alembic revision (None when the table is empty)."""
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
