"""The config files a bed writes: nova.conf (+ one per cell), placement.conf, nova-audit.conf.

nova.conf is what an operator's API/conductor host has: `[api_database]`, a
`[database]` pointing at cell1 (so plain `nova-manage db ...` acts on cell1, as on
a single-cell conductor), and a noauth `[placement]` section. The per-cell files
only exist so `nova-manage db sync --local_cell` can migrate every cell at once.
"""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any


def _placement_section(endpoint: str | None) -> str:
    if not endpoint:
        return ""
    return f"[placement]\nauth_type = admin_token\nendpoint = {endpoint}\ntoken = admin\n"


def nova_conf(api_url: str, cell_url: str, placement_endpoint: str | None, state: Path) -> str:
    return (
        "[DEFAULT]\n"
        f"state_path = {state}\n"
        "transport_url = fake://\n"
        "use_stderr = true\n"
        "debug = false\n"
        "\n[api_database]\n"
        f"connection = {api_url}\n"
        "\n[database]\n"
        f"connection = {cell_url}\n"
        "\n[oslo_concurrency]\n"
        f"lock_path = {state / 'locks'}\n"
        "\n" + _placement_section(placement_endpoint)
    )


def placement_conf(db_url: str) -> str:
    return (
        "[DEFAULT]\n"
        "debug = false\n"
        "\n[api]\n"
        "auth_strategy = noauth2\n"
        "\n[placement_database]\n"
        f"connection = {db_url}\n"
        "sync_on_startup = false\n"
    )


def audit_conf(api_url: str, placement_endpoint: str | None, state_dir: Path) -> str:
    """The nova-audit config file: nova.conf section names plus [audit]."""
    text = f"[api_database]\nconnection = {api_url}\n\n"
    placement = _placement_section(placement_endpoint)
    if placement:
        text += placement + "\n"
    # Short retry delay: a test bed's failures are deliberate, waiting helps nothing.
    text += f"[audit]\nmode = audit\nstate_dir = {state_dir}\nretry_delay = 2\n"
    return text


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)  # holds the database password
    return path


def config_with(bed: Any, directory: Path, **sections: dict[str, str]) -> str:
    """A copy of the bed's nova-audit.conf in `directory`, some sections' keys replaced."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(bed.config_path)
    for section, values in sections.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, value)
    path = Path(directory) / "nova-audit.conf"
    with path.open("w") as handle:
        parser.write(handle)
    return str(path)
