"""Engines for Nova's databases: passwords masked, registered and scrubbed from errors."""

from __future__ import annotations

import pytest

from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.db import Engines, mask_url, unreachable
from nova_audit_ops.nova.cells import CELL0_UUID, Cell

CELLS = [
    Cell(1, CELL0_UUID, "cell0", database_connection="mysql+pymysql://u:pw0@h/c0"),
    Cell(2, "11111111-1111-1111-1111-111111111111", "cell1", database_connection="sqlite://"),
    Cell(3, "22222222-2222-2222-2222-222222222222", None, database_connection="sqlite://"),
]


def test_mask_url_hides_password() -> None:
    masked = mask_url("mysql+pymysql://nova:Sup3rSecret@db:3306/nova?charset=utf8")
    assert "Sup3rSecret" not in masked and "nova@db" not in masked and "***" in masked


def test_engines_register_passwords_and_scrub_errors() -> None:
    url = "mysql+pymysql://nova:Pa55-word-xyz@127.0.0.1:1/nova_api"
    engines = Engines(url, {"cell1": "mysql+pymysql://n:0ther-pass-xyz@h/c1"})
    try:
        assert secrets.scrub("x Pa55-word-xyz y 0ther-pass-xyz") == "x *** y ***"
        error = unreachable("API", url, RuntimeError("login with Pa55-word-xyz failed"))
        assert "Pa55-word-xyz" not in str(error)
        assert "override its URL" in str(error)
        assert engines.cell_url(CELLS[1]) == "mysql+pymysql://n:0ther-pass-xyz@h/c1"
        assert engines.cell_url(CELLS[2]) == "sqlite://"
    finally:
        engines.dispose()


def test_listener_learns_known_and_future_secrets() -> None:
    seen: list[str] = []
    secrets.register("first-secret-abc")
    secrets.add_listener(seen.append)
    secrets.register("second-secret-abc")
    assert {"first-secret-abc", "second-secret-abc"} <= set(seen)


def test_templated_cell_urls_are_filled_from_database_connection() -> None:
    """Nova lets cell_mappings hold templates filled from [database] connection."""
    from nova_audit_ops.settings.errors import ConfigError

    template = Cell(
        4,
        "33333333-3333-3333-3333-333333333333",
        "cell3",
        database_connection="{scheme}://{username}:{password}@{hostname}/nova_cell3",
    )
    engines = Engines("sqlite://", None, "mysql+pymysql://nova:T3mpl-secret@db.example/nova")
    try:
        assert engines.cell_url(template) == (
            "mysql+pymysql://nova:T3mpl-secret@db.example/nova_cell3"
        )
        assert secrets.scrub("T3mpl-secret") == "***"
    finally:
        engines.dispose()
    bare = Engines("sqlite://")
    try:
        with pytest.raises(ConfigError, match=r"\[database\] connection"):
            bare.cell_url(template)
    finally:
        bare.dispose()


def test_devstack_dbcounter_plugin_is_ignored_when_not_installed() -> None:
    """Devstack's Nova URLs carry `plugin=dbcounter`; SQLAlchemy would refuse them here."""
    from nova_audit_ops.clients.db import make_engine

    url = "mysql+pymysql://nova:pw-devstack@127.0.0.1/nova_cell1?charset=utf8&plugin=dbcounter"
    engine = make_engine(url, "cell cell1")
    assert "plugin" not in engine.url.query
    assert engine.url.query["charset"] == "utf8"
    engine.dispose()


def test_the_account_replaces_the_user_of_the_api_and_cell_mappings_urls_only() -> None:
    """[audit] database_user/password: cell_mappings and the API URL; overrides keep theirs."""
    api = "mysql+pymysql://nova:nova-api-pw@db/nova_api"
    cells = [
        Cell(1, CELL0_UUID, "cell0", database_connection="mysql+pymysql://nova:pw0-abc@h/c0"),
        Cell(2, "11111111-1111-1111-1111-111111111111", "cell1", database_connection="sqlite://"),
        Cell(3, "33333333-3333-3333-3333-333333333333", "cell3", database_connection="x"),
    ]
    overrides = {"cell3": "mysql+pymysql://own:own-pw-xyz@h3/c3"}
    engines = Engines(api, overrides, account=("nova_audit", "audit-pw-4242"))
    try:
        assert engines.api_url == "mysql+pymysql://nova_audit:audit-pw-4242@db/nova_api"
        assert engines.cell_url(cells[0]) == "mysql+pymysql://nova_audit:audit-pw-4242@h/c0"
        assert engines.cell_url(cells[1]) == "sqlite://"  # SQLite has no accounts
        assert engines.cell_url(cells[2]) == overrides["cell3"]  # a per-cell override wins
        assert secrets.scrub("audit-pw-4242") == "***"
        assert "audit-pw-4242" not in mask_url(engines.cell_url(cells[0]))
    finally:
        engines.dispose()


def test_the_account_fills_templated_cell_urls_too() -> None:
    cell = Cell(
        1, CELL0_UUID, "cell0", database_connection="{scheme}://{username}:{password}@{hostname}/c0"
    )
    engines = Engines(
        "mysql+pymysql://nova:p-api-123@db/api",
        template_default="mysql+pymysql://nova:tmpl-pw-123@dbhost/nova",
        account=("nova_audit", "audit-pw-4242"),
    )
    try:
        assert engines.cell_url(cell) == "mysql+pymysql://nova_audit:audit-pw-4242@dbhost/c0"
    finally:
        engines.dispose()
