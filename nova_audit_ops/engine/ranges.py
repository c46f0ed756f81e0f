"""An id range of one cell: the unit a big cell is split into for fan-out.

`lo` is exclusive and `hi` inclusive, so consecutive ranges share their
boundary and cover every id once; the last range has no `hi`, so rows created
after the plan was made still belong to a batch. The whole cell is (0, None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IdRange:
    """Ids `lo < id <= hi` of one table (hi None: no upper end)."""

    lo: int = 0
    hi: int | None = None

    @property
    def whole(self) -> bool:
        """True for the whole table: exactly today's per-cell run."""
        return self.lo == 0 and self.hi is None

    @property
    def label(self) -> str:
        """How the range reads in task names and findings: "ids 501-1000", "ids 1001-end"."""
        return f"ids {self.lo + 1}-{'end' if self.hi is None else self.hi}"

    @property
    def scope_suffix(self) -> str:
        """What the range adds to a marker key, so each batch resumes on its own."""
        return f"@{self.lo}-{'' if self.hi is None else self.hi}"

    def contains(self, value: int) -> bool:
        return value > self.lo and (self.hi is None or value <= self.hi)

    def public(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IdRange:
        data = data or {}
        hi = data.get("hi")
        return cls(int(data.get("lo") or 0), None if hi is None else int(hi))
