"""The nova-audit config file: nova.conf-compatible INI plus [audit] sections.

An operator can point nova-audit at an existing nova.conf: `[api_database]
connection`, `[placement]` and `[cinder]` are read exactly as Nova reads them.
`[audit]` holds global defaults, `[audit.<task>]` one task's settings, and
`[audit.cells]` per-cell database URL overrides. Every value is validated on
load, with an error that names the section, the key and the fix.

The caller hands in the task specs (the registry knows them); this floor never
imports the tasks.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nova_audit_ops.settings.errors import ConfigError
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import COMMON_KNOBS, GLOBAL_KNOBS, SCHEDULE_KNOBS, TaskSpec

Specs = Mapping[str, TaskSpec]

DEFAULT_CONFIG_PATH = "/etc/nova-audit/nova-audit.conf"
CONFIG_ENV = "NOVA_AUDIT_CONFIG"

TASK_SECTION_PREFIX = "audit."
CELLS_SECTION = "audit.cells"
REPLICAS_SECTION = "audit.replicas"  # <cell name or uuid> = replica URLs of that cell
GLOBAL_SECTION = "audit"
KNOWN_SECTIONS = {
    "api_database",
    "placement",
    "cinder",
    "nova",
    "database",
    GLOBAL_SECTION,
    CELLS_SECTION,
    REPLICAS_SECTION,
}


@dataclass
class AuditConfig:
    """Everything read from one config file, validated."""

    path: str | None = None
    api_connection: str | None = None
    database_connection: str | None = None  # fills templated cell_mappings URLs, as in Nova
    placement: dict[str, str] = field(default_factory=dict)
    cinder: dict[str, str] = field(default_factory=dict)
    nova: dict[str, str] = field(default_factory=dict)  # Nova's compute API, for host_fault
    cell_connections: dict[str, str] = field(default_factory=dict)
    cell_replicas: dict[str, list[str]] = field(default_factory=dict)  # lower-cased cell key
    global_values: dict[str, Any] = field(default_factory=dict)
    task_values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def settings(self, spec: TaskSpec) -> dict[str, Any]:
        """One task's knob values: its section, then [audit], then the shipped default."""
        values = {knob.name: knob.default for knob in spec.all_knobs()}
        values.update({k: v for k, v in spec.defaults.items() if k in values})
        for name, value in self.global_values.items():
            if name == "mode" and spec.read_only:
                continue  # a global `mode = heal` does not concern a task that only reports
            if name in values:
                values[name] = value
        values.update(self.task_values.get(spec.name, {}))
        return values

    @property
    def state_dir(self) -> str:
        """Where the CLI keeps resume markers."""
        return str(self.global_values.get("state_dir") or GLOBAL_KNOBS[0].default)

    @property
    def database_account(self) -> tuple[str | None, str | None]:
        """`[audit] database_user` and `database_password`: nova-audit's own account."""
        user = self.global_values.get("database_user") or None
        password = self.global_values.get("database_password") or None
        if password and not user:
            where = self.path or "the config file"
            raise ConfigError(
                f"{where}: [audit] database_password is set without database_user: set "
                "database_user to the account the password belongs to (docs/security.md)."
            )
        return user, password

    def replica_urls(self, *cell_keys: str | None) -> list[str]:
        """Replicas watched for a cell (its uuid and name): [audit] replica_connections
        plus its own [audit.replicas] line; with no keys, every configured replica."""
        urls = list(self.global_values.get("replica_connections") or [])
        keys = [k for k in cell_keys if k] if cell_keys else list(self.cell_replicas)
        for key in keys:
            urls += [u for u in self.cell_replicas.get(key.lower(), []) if u not in urls]
        return urls

    def require_api_connection(self) -> str:
        if not self.api_connection:
            where = self.path or "the config file"
            raise ConfigError(
                f"{where} has no [api_database] connection: set it to the Nova API "
                "database URL (the same value as in nova.conf)."
            )
        return self.api_connection


def config_path(explicit: str | None = None) -> str:
    """The file to read: the explicit path, $NOVA_AUDIT_CONFIG, or the default."""
    return explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH


def load(path: str | None, specs: Specs, *, must_exist: bool = True) -> AuditConfig:
    """Read and validate a config file against the tasks' specs; a missing file is an
    error unless allowed."""
    resolved = config_path(path)
    # strict=False: oslo.config allows a key to repeat (MultiStrOpt, e.g. [pci] alias) and
    # a section to appear twice; nova.conf files that do so must load here too.
    parser = configparser.ConfigParser(interpolation=None, default_section="DEFAULT", strict=False)
    try:
        with open(resolved, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(
                f"config file {resolved} does not exist: pass --config-file or set "
                f"${CONFIG_ENV} (see docs/configuration.md)."
            ) from None
        return AuditConfig(path=None)
    except configparser.Error as exc:
        raise ConfigError(f"config file {resolved} cannot be parsed: {exc}") from None
    return from_parser(parser, resolved, specs)


def from_parser(parser: configparser.ConfigParser, path: str | None, specs: Specs) -> AuditConfig:
    """Validate a parsed INI file into an AuditConfig."""
    aliases = {alias: name for name, spec in specs.items() for alias in spec.aliases}
    cfg = AuditConfig(path=path)
    if parser.has_section("api_database"):
        cfg.api_connection = parser.get("api_database", "connection", fallback=None) or None
    if parser.has_section("database"):
        cfg.database_connection = parser.get("database", "connection", fallback=None) or None
    cfg.placement = _section(parser, "placement")
    cfg.cinder = _section(parser, "cinder")
    cfg.nova = _section(parser, "nova")
    cfg.cell_connections = _section(parser, CELLS_SECTION)
    cfg.cell_replicas = _replicas(parser, path)
    global_knobs = {k.name: k for k in COMMON_KNOBS + SCHEDULE_KNOBS + GLOBAL_KNOBS}
    cfg.global_values = _knob_values(parser, GLOBAL_SECTION, global_knobs, path)
    for section in parser.sections():
        if section in KNOWN_SECTIONS or not section.startswith(TASK_SECTION_PREFIX):
            continue
        task = section[len(TASK_SECTION_PREFIX) :]
        task = aliases.get(task, task)
        spec = specs.get(task)
        if spec is None:
            raise ConfigError(
                f"{path}: unknown section [{section}]: tasks are {', '.join(sorted(specs))}."
            )
        knobs = {k.name: k for k in spec.all_knobs()}
        cfg.task_values[task] = _knob_values(parser, section, knobs, path)
    return cfg


def _section(parser: configparser.ConfigParser, name: str) -> dict[str, str]:
    if not parser.has_section(name):
        return {}
    return {key: value for key, value in parser.items(name) if key not in parser.defaults()}


def _replicas(parser: configparser.ConfigParser, path: str | None) -> dict[str, list[str]]:
    """[audit.replicas]: `<cell name or uuid> = url, url`, checked like replica_connections."""
    knob = next(k for k in GLOBAL_KNOBS if k.name == "replica_connections")
    return {
        cell: knob.parse(raw, f"{path} [{REPLICAS_SECTION}] {cell}")
        for cell, raw in _section(parser, REPLICAS_SECTION).items()
    }


def _knob_values(
    parser: configparser.ConfigParser, section: str, knobs: Mapping[str, Knob], path: str | None
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in _section(parser, section).items():
        knob = knobs.get(key)
        if knob is None:
            raise ConfigError(
                f"{path}: [{section}] has unknown key {key!r}: known keys are "
                f"{', '.join(sorted(knobs))} (see docs/configuration.md)."
            )
        values[key] = knob.parse(raw, f"{path} [{section}]")
    return values
