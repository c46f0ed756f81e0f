"""SHOW GRANTS lines read into table privileges, as the up-front heal check sees them."""

from __future__ import annotations

import pytest

from nova_audit_ops.clients.privileges import Held, is_denied, parse

LINES = [
    "GRANT `nova_audit_role` TO `nova_audit`@`%`",
    "GRANT USAGE ON *.* TO `nova_audit`@`%` IDENTIFIED BY PASSWORD '*3E37AF99C40'",
    "GRANT SELECT, INSERT ON `nova_api`.`host_mappings` TO `nova_audit`@`%`",
    "GRANT SELECT (`uuid`), UPDATE (`mapped`) ON `nova_cell1`.`compute_nodes` TO `nova_audit`@`%`",
    "GRANT SELECT, DELETE ON `nova\\_cell%`.* TO `nova_audit_role`",
    "GRANT EXECUTE ON PROCEDURE `nova_api`.`p` TO `nova_audit`@`%`",
]


@pytest.mark.parametrize(
    ("schema", "table", "privilege", "allowed"),
    [
        pytest.param("nova_api", "host_mappings", "INSERT", True, id="table grant"),
        pytest.param("nova_api", "host_mappings", "DELETE", False, id="not that privilege"),
        pytest.param("nova_api", "cell_mappings", "SELECT", False, id="not that table"),
        pytest.param("nova_cell1", "compute_nodes", "DELETE", True, id="schema pattern (a role)"),
        pytest.param("nova_cell1", "compute_nodes", "UPDATE", False, id="column grant not counted"),
        pytest.param("novaXcell1", "instances", "SELECT", False, id="escaped _ is literal"),
        pytest.param("nova_cell10", "instances", "SELECT", True, id="% matches the rest"),
    ],
)
def test_what_the_grants_allow(schema: str, table: str, privilege: str, allowed: bool) -> None:
    assert parse(LINES).allows(schema, table, privilege) is allowed


def test_all_privileges_everywhere_allows_anything() -> None:
    held = parse(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"])
    assert held.allows("any_db", "any_table", "DELETE")
    assert not Held().allows("any_db", "any_table", "SELECT")


class _Orig(Exception):
    pass


@pytest.mark.parametrize(("code", "denied"), [(1142, True), (1143, True), (1792, False)])
def test_denied_errors_are_1142_and_1143(code: int, denied: bool) -> None:
    error = Exception("wrapped")
    error.orig = _Orig(code, "INSERT command denied to user")  # type: ignore[attr-defined]
    assert is_denied(error) is denied
