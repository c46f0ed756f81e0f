"""Instance mappings whose cell_id names no cell_mappings row (a cell deleted under them).

Nova's foreign key forbids them, but a cell removed with the key checks off,
or an API database restored apart from its cells, leaves them behind. Every
task that follows instance_mappings to a cell would skip such a mapping
without a word; they use this to report it once, with the fix.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nova_audit_ops.nova.schema import table

CHUNK = 1000  # uuids per IN (...) list


@dataclass(frozen=True)
class LostMapping:
    """One instance mapping pointing at a cell id that cell_mappings does not have."""

    instance_uuid: str
    cell_id: int

    @property
    def problem(self) -> str:
        return (
            f"instance mapping of {self.instance_uuid} points to cell id {self.cell_id}, "
            "which is not in cell_mappings"
        )

    @property
    def fix(self) -> str:
        return (
            f"find the instance's cell (`nova-manage cell_v2 verify_instance --uuid "
            f"{self.instance_uuid}`): if its cell was removed by mistake, restore its "
            "cell_mappings row (`nova-manage cell_v2 create_cell`); otherwise point the "
            "mapping's cell_id at the cell that has the instance"
        )


def lost_mappings(
    api: Engine, known_cell_ids: Collection[int], uuids: Sequence[str] | None = None
) -> list[LostMapping]:
    """Mappings (of `uuids`, or all) whose non-NULL cell_id is none of `known_cell_ids`."""
    im = table(api, "instance_mappings")
    query = (
        sa.select(im.c.instance_uuid, im.c.cell_id)
        .where(im.c.cell_id.is_not(None), im.c.cell_id.not_in(sorted(known_cell_ids)))
        .order_by(im.c.id)
    )
    chunks = (
        [None] if uuids is None else [uuids[i : i + CHUNK] for i in range(0, len(uuids), CHUNK)]
    )
    found: list[LostMapping] = []
    with api.connect() as conn:
        for chunk in chunks:
            select = query if chunk is None else query.where(im.c.instance_uuid.in_(chunk))
            found += [LostMapping(r.instance_uuid, int(r.cell_id)) for r in conn.execute(select)]
    return found
