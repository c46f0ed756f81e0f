"""Shared fixtures: a real Nova on MariaDB, built once per session, copied per test.

- `nova_template` (session): `testbed.up` on MariaDB: 2 cells x 3 hosts x 10
  instances, own Placement; taken down at the end, even after failures.
- `nova_bed`: a private copy of the template whose config points at the
  template's Placement (read-only!). Copies are recycled between tests (reset to
  the template in ~0.3 s instead of a ~2 s fresh clone).
- `nova_bed_placement`: the same with its own Placement database and server, for
  tests that write to Placement.

After every test the template is checked: a test that wrote to it (e.g. healed
allocations through the shared Placement) fails with a message saying so, and
the template is rebuilt for the tests after it. MariaDB that does not answer is
an error with instructions, never a skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Airflow reads its settings on first import: give the test session its own home
# (SQLite metadata DB, no examples) before any test module imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="nova-audit-airflow-"))
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault(
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.pop("NOVA_AUDIT_CONFIG", None)

import pytest  # noqa: E402

import testbed  # noqa: E402
from testbed import TestBed  # noqa: E402
from testbed.airflow_env import airflow_env, migrate  # noqa: E402
from testbed.pool import ClonePool  # noqa: E402

TEMPLATE = {"cells": 2, "hosts_per_cell": 3, "instances_per_cell": 10}


def require_mariadb() -> None:
    problem = testbed.mariadb_available()
    if problem:
        pytest.fail(f"the Nova test bed needs MariaDB: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def nova_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestBed]:
    require_mariadb()
    testbed.gc()  # beds left behind by a killed session
    directory = tmp_path_factory.mktemp("nova-template")
    try:
        bed = testbed.up(directory, backend="mariadb", **TEMPLATE)
    except BaseException:
        testbed.down(directory)
        raise
    try:
        yield bed
    finally:
        testbed.down(bed.dir)


@pytest.fixture(scope="session")
def nova_pool(
    nova_template: TestBed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClonePool]:
    pool = ClonePool(nova_template, tmp_path_factory.mktemp("nova-clones"), **TEMPLATE)
    try:
        yield pool
    finally:
        pool.close()


def _bed(
    pool: ClonePool, request: pytest.FixtureRequest, with_placement: bool
) -> Iterator[TestBed]:
    bed = pool.acquire(with_placement=with_placement)
    try:
        yield bed
    finally:
        pool.release(bed)
        try:
            pool.check_template()
        except testbed.TestBedError as exc:
            pool.rebuild_template()
            pytest.fail(f"{request.node.nodeid}: {exc}", pytrace=False)


@pytest.fixture
def nova_bed(nova_pool: ClonePool, request: pytest.FixtureRequest) -> Iterator[TestBed]:
    """A private copy of the template; its Placement is the template's (do not write)."""
    yield from _bed(nova_pool, request, with_placement=False)


@pytest.fixture
def nova_bed_placement(nova_pool: ClonePool, request: pytest.FixtureRequest) -> Iterator[TestBed]:
    """A private copy of the template with its own Placement."""
    yield from _bed(nova_pool, request, with_placement=True)


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite metadata DB for `airflow dags test` runs (one per session)."""
    home = tmp_path_factory.mktemp("airflow-home")
    migrate(airflow_env(home))
    return home
