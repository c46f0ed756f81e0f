"""`nova-audit grants` without a database: accounts, statements, roles, declarations."""

from __future__ import annotations

import pytest

from nova_audit_ops import cli, grants, registry
from nova_audit_ops.settings.access import DELETE, INSERT, SELECT, UPDATE
from nova_audit_ops.settings.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("nova_audit@%", ("nova_audit", "%")), ("a@10.0.0.%", ("a", "10.0.0.%"))],
)
def test_user_at_host(text: str, parsed: tuple[str, str]) -> None:
    assert grants.account(text) == parsed


@pytest.mark.parametrize("text", ["nova_audit", "'a'@'%'", "a@b@c", "a @%", ""])
def test_a_bad_user_names_the_form(text: str) -> None:
    with pytest.raises(ConfigError, match="NAME@HOST"):
        grants.account(text)


def test_statements_are_table_by_table_in_grant_order() -> None:
    db = grants.Database("API", "nova_api", "mysql+pymysql://nova:***@db/nova_api")
    db.privileges = {"host_mappings": {INSERT, SELECT}, "cell_mappings": {SELECT}}
    lines = grants.statements([db], "nova_audit", "%")
    assert lines == [
        "-- API: database nova_api (mysql+pymysql://nova:***@db/nova_api)",
        "GRANT SELECT ON `nova_api`.`cell_mappings` TO 'nova_audit'@'%';",
        "GRANT SELECT, INSERT ON `nova_api`.`host_mappings` TO 'nova_audit'@'%';",
    ]


def test_audit_declarations_are_select_only_and_heal_adds_the_declared_writes() -> None:
    for spec in registry.TASKS.values():
        for access in (spec.api_tables, spec.cell_tables):
            assert set().union(*access.privileges(False).values() or [set()]) <= {SELECT}
            heal = access.privileges(not spec.read_only)
            for table, privileges in access.writes.items():
                assert heal[table] == {SELECT, *privileges} <= {SELECT, INSERT, UPDATE, DELETE}
    assert not registry.spec("preflight").api_tables.writes  # read-only tasks write nothing


def test_roles_name_admin_for_writes_and_none_where_audit_calls_nothing() -> None:
    heal = "\n".join(grants.role_lines(grants.all_tasks(), heal=True))
    audit = "\n".join(grants.role_lines(grants.all_tasks(), heal=False))
    assert "host_fault: nova role 'admin'" in heal and "host_fault" not in audit
    assert "preflight: cinder role 'reader'" in audit and "preflight: cinder role 'reader'" in heal
    assert "heal_allocations: placement role 'admin'" in audit


def test_the_cli_refuses_a_bad_user_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["grants", "--config-file", "/nonexistent.conf", "--user", "nobody"]) == 2
    assert "NAME@HOST" in capsys.readouterr().err
