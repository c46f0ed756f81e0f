"""What a bed is, as recorded in DIR/testbed.json: URLs, cells, Placement, files.

Everything else (the CLI, clone, drift, tests) starts from `load(dir)`, so a bed
built by `python -m testbed up` in one process is usable from any other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

from testbed.errors import TestBedError

STATE_FILE = "testbed.json"
CELL0_UUID = "00000000-0000-0000-0000-000000000000"


class Cell(NamedTuple):
    """One cell mapping: name, uuid and database URL (with the password)."""

    name: str
    uuid: str
    url: str

    @property
    def is_cell0(self) -> bool:
        return self.uuid == CELL0_UUID


@dataclass
class TestBed:
    """A running bed: its databases, its Placement and its config files."""

    __test__ = False  # not a pytest test class, despite the name

    dir: Path
    backend: str
    prefix: str
    api_url: str
    cells: list[Cell]
    placement_url: str | None
    placement_pid: int | None
    placement_db_url: str
    config_path: Path
    nova_conf_path: Path
    owns_placement: bool = True
    source: str | None = None
    seed: int = 0
    anchor: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    # API services started with the bed (`up --with-apis`, testbed/services.py): pids, URLs.
    services: dict[str, Any] = field(default_factory=dict)

    @property
    def cell_map(self) -> dict[str, Cell]:
        return {c.name: c for c in self.cells}

    def cell(self, name: str) -> Cell:
        try:
            return self.cell_map[name]
        except KeyError:
            raise TestBedError(
                f"no cell {name!r} in {self.dir}: cells are {sorted(self.cell_map)}"
            ) from None

    @property
    def compute_cells(self) -> list[Cell]:
        """Every cell except cell0 (which never has hosts)."""
        return [c for c in self.cells if not c.is_cell0]

    @staticmethod
    def engine(url: str) -> sa.Engine:
        """A pool-less SQLAlchemy engine for one of the bed's URLs; dispose() it after use."""
        return sa.create_engine(url, poolclass=sa.pool.NullPool)

    def save(self) -> None:
        data = asdict(self)
        data["cells"] = [cell._asdict() for cell in self.cells]
        data["dir"] = str(self.dir)
        data["config_path"] = str(self.config_path)
        data["nova_conf_path"] = str(self.nova_conf_path)
        path = self.dir / STATE_FILE
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        path.chmod(0o600)
        register(self)


def registry() -> Path:
    """Where beds are listed by database prefix, so crashed sessions can be cleaned up."""
    from testbed.backends import state_dir

    return state_dir() / "beds"


def register(bed: TestBed) -> None:
    path = registry() / f"{bed.prefix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"dir": str(bed.dir), "backend": bed.backend}) + "\n")


def unregister(prefix: str) -> None:
    (registry() / f"{prefix}.json").unlink(missing_ok=True)


def load(directory: str | Path) -> TestBed:
    """The bed recorded in DIR/testbed.json."""
    directory = Path(directory).resolve()
    path = directory / STATE_FILE
    if not path.exists():
        raise TestBedError(f"no test bed in {directory} ({STATE_FILE} is missing): run `up` first")
    data = json.loads(path.read_text())
    data["dir"] = Path(data["dir"])
    data["config_path"] = Path(data["config_path"])
    data["nova_conf_path"] = Path(data["nova_conf_path"])
    data["cells"] = [Cell(**c) for c in data["cells"]]
    return TestBed(**data)
