"""Benchmark: Placement's per-provider allocation listing, the request orphaned_allocations repeats.

    .venv/bin/python -m benchmarks.placement_listing CONFIG_FILE [--placement-db URL]

Sends GET /resource_providers/{uuid}/allocations once per provider, one after
another, with nova-audit's own client and the [placement] section of CONFIG_FILE,
and prints the time per request against the consumers per provider. Nearly all of
that time is Placement's (its process and its database), so a time per request that
grows while the consumers per provider stay the same is the server's, not
nova-audit's. With --placement-db (a SQLAlchemy URL of Placement's database) it also
prints MariaDB's plan of the listing's join for one provider: the join should start
at `allocations` (a ref on resource_provider_id); starting at `projects` reads every
consumer of every project for each provider (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import sqlalchemy as sa

from nova_audit_ops.clients.placement import PlacementClient
from nova_audit_ops.registry import load_config

# The join Placement's _get_allocations_by_provider_id sends (placement/objects/allocation.py).
LISTING_JOIN = (
    "SELECT a.id, a.resource_class_id, a.used, a.updated_at, a.created_at, c.id, "
    "c.generation, c.uuid, p.id, p.external_id, u.id, u.external_id "
    "FROM allocations a JOIN consumers c ON a.consumer_id = c.uuid "
    "JOIN projects p ON c.project_id = p.id JOIN users u ON c.user_id = u.id "
    "WHERE a.resource_provider_id = {rp_id}"
)


def time_listings(client: PlacementClient) -> dict[str, Any]:
    """Time per listing and consumers per provider, over every provider."""
    providers = client.resource_providers()
    seconds: list[float] = []
    consumers: list[int] = []
    for rp in providers:
        start = time.perf_counter()
        allocations = client.provider_allocations(rp["uuid"])
        seconds.append(time.perf_counter() - start)
        consumers.append(len(allocations))
    if not providers:
        return {"providers": 0}
    return {
        "providers": len(providers),
        "consumers_per_provider_median": statistics.median(consumers),
        "ms_per_request_median": round(1000 * statistics.median(seconds), 1),
        "ms_per_request_mean": round(1000 * statistics.mean(seconds), 1),
        "seconds_total": round(sum(seconds), 2),
    }


def listing_plan(url: str) -> list[dict[str, Any]]:
    """MariaDB's EXPLAIN of the listing join for the provider with the most allocations."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rp_id = conn.execute(
                sa.text(
                    "SELECT resource_provider_id FROM allocations "
                    "GROUP BY resource_provider_id ORDER BY COUNT(*) DESC LIMIT 1"
                )
            ).scalar()
            if rp_id is None:
                return []
            rows = conn.execute(sa.text("EXPLAIN " + LISTING_JOIN.format(rp_id=int(rp_id))))
            return [
                {"table": r.table, "type": r.type, "key": r.key, "rows": r.rows}
                for r in rows.mappings()
            ]
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("config_file", help="a nova-audit config file with a [placement] section")
    parser.add_argument("--placement-db", help="SQLAlchemy URL of Placement's database")
    args = parser.parse_args()
    config = load_config(args.config_file)
    result = time_listings(PlacementClient.from_options(config.placement))
    if args.placement_db:
        result["plan"] = listing_plan(args.placement_db)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
