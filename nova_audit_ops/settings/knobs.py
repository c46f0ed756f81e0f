"""Typed, validated knobs: one definition feeds the config file, DAG params and CLI.

A knob parses text from an INI file or a CLI flag, validates values coming from
a DAG's params, and describes itself as JSON schema for Airflow's Param.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nova_audit_ops.settings.errors import ConfigError

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Knob:
    """One setting an operator can change, with the rules its value must follow."""

    name: str
    kind: str  # "str", "int", "bool", "list", "choice"
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    param: bool = True  # also a DAG param and a CLI option
    check: Callable[[Any], str | None] | None = None  # extra rule; returns an error text
    # A fix command repeats the run's value of this knob (what to find and fix), unless
    # it only shapes how the run works (mode, batch size, budgets, lock waits).
    rerun: bool = True
    secret: bool = False  # its value holds passwords: errors never quote it

    @property
    def flag(self) -> str:
        """The CLI option of this knob ("--down-after"); `cells` is also `--cell`."""
        return "--" + self.name.replace("_", "-")

    def cli_args(self, value: Any) -> list[str]:
        """The CLI words that give this knob `value`, as an operator would type them."""
        if self.name == "cells":
            return [word for cell in value for word in ("--cell", str(cell))]
        if self.kind == "bool":
            return [self.flag if value else "--no-" + self.flag[2:]]
        if self.kind == "list":
            return [self.flag, ",".join(str(v) for v in value)]
        return [self.flag, str(value)]

    def parse(self, raw: Any, where: str) -> Any:
        """Turn text or a JSON value into this knob's type, or raise ConfigError."""
        shown = "<hidden>" if self.secret else repr(raw)
        try:
            value = _PARSERS[self.kind](self, raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{where}: {self.name} = {shown} is invalid: {exc}. {self.help}"
            ) from None
        problem = self._problem(value)
        if problem:
            raise ConfigError(f"{where}: {self.name} = {shown} is invalid: {problem}")
        return value

    def _problem(self, value: Any) -> str | None:
        if self.kind == "choice" and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if self.kind == "int":
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return f"must be at most {self.maximum}"
        return self.check(value) if self.check else None

    @property
    def title(self) -> str:
        """Its field label in Airflow's trigger form: "batch_size" → "Batch size"."""
        return self.name.replace("_", " ").capitalize()

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema Airflow validates this knob's param against."""
        schema: dict[str, Any] = {"title": self.title, "description": self.help}
        if self.kind == "int":
            schema["type"] = "integer"
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
        elif self.kind == "bool":
            schema["type"] = "boolean"
        elif self.kind == "list":  # empty is meaningful ("every cell"): not required
            schema["type"] = ["array", "null"]
            schema["items"] = {"type": "string", "minLength": 1}
        elif self.kind == "choice":
            schema["type"] = "string"
            schema["enum"] = list(self.choices)
        else:
            schema["type"] = ["null", "string"]
        return schema


def _parse_int(knob: Knob, raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(raw, int):
        return raw
    return int(str(raw).strip())


def _parse_bool(knob: Knob, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("expected true or false")


def _parse_list(knob: Knob, raw: Any) -> list[str]:
    if raw is None:
        return []
    items: Sequence[Any] = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    values = [str(item).strip() for item in items]
    if any(not v for v in values) and len(values) > 1:
        raise ValueError("empty item in the list")
    return [v for v in values if v]


def _parse_str(knob: Knob, raw: Any) -> str | None:
    if raw is None:
        return None
    return str(raw).strip()


def _parse_choice(knob: Knob, raw: Any) -> str:
    return str(raw).strip().lower()


_PARSERS: dict[str, Callable[[Knob, Any], Any]] = {
    "int": _parse_int,
    "bool": _parse_bool,
    "list": _parse_list,
    "str": _parse_str,
    "choice": _parse_choice,
}
