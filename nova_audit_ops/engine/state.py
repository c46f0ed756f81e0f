"""Resume markers kept between runs, per task and cell.

Every key is built by `marker_key`: `nova_audit.<task>.<scope>` for where a
walk resumes, `nova_audit.<task>.<kind>.<scope>` for the other kinds. The
strings are the ones earlier releases wrote, so a deployment's markers are
still found after an upgrade. The CLI keeps them as small JSON files under
`[audit] state_dir`; Airflow runs keep them in Airflow Variables (see
glue/variables.py) so every worker sees them. Nova's own trick — a fake
instance_mappings row — is not used.
"""

from __future__ import annotations

import json
import os
import tempfile
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from nova_audit_ops.settings.errors import ConfigError


class StateStore(Protocol):
    """Where a task's resume markers live."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any] | None) -> None: ...


class MarkerKind(str, Enum):
    """What a marker remembers; the value is its segment in the key."""

    RESUME = ""  # where the next run of a walk starts
    SIGHTINGS = "seen"  # when drift waiting for a grace period was first seen
    API_CLEANUP = "api-cleanup"  # archived instances whose API rows are still to go


def marker_key(task: str, scope: str, kind: MarkerKind = MarkerKind.RESUME) -> str:
    """The state store key of `task`'s marker of `kind` for `scope` (a cell uuid, "global")."""
    if kind is MarkerKind.RESUME:
        return f"nova_audit.{task}.{scope}"
    return f"nova_audit.{task}.{kind.value}.{scope}"


class MemoryStateStore:
    """Markers that live as long as the process (tests, one-off runs)."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.values.get(key)

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = dict(value)


class FileStateStore:
    """One JSON file per key, replaced atomically so a crash never tears it."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"resume marker {self._path(key)} cannot be read ({exc}): delete it to start over"
            ) from None
        return data if isinstance(data, dict) else None

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        path = self._path(key)
        if value is None:
            path.unlink(missing_ok=True)
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".marker-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(value, handle)
            os.replace(tmp, path)
        except OSError as exc:
            raise ConfigError(
                f"cannot write resume marker in {self.directory} ({exc}): set [audit] state_dir "
                "to a writable directory"
            ) from None
