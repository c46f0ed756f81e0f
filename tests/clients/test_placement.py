"""The Placement client's generation-guarded writes, against the test bed's own Placement.

A second client plays the concurrent writer: inside the `change` callback (after
our read, before our write) it bumps the generation, so our write gets a real 409.
"""

from __future__ import annotations

import configparser
import uuid
from typing import Any

import pytest

from nova_audit_ops.clients.placement import (
    AGGREGATES_MV,
    ALLOCATIONS_MV,
    GENERATION_CONFLICT_ATTEMPTS,
    PlacementClient,
    PlacementError,
)


def _client(bed: Any) -> PlacementClient:
    config = configparser.ConfigParser(interpolation=None)
    config.read(bed.config_path)
    return PlacementClient.from_options(dict(config["placement"]))


def _provider(client: PlacementClient) -> str:
    return str(sorted(rp["uuid"] for rp in client.resource_providers())[0])


def _bump_aggregates(writer: PlacementClient, rp: str, aggregate: str) -> None:
    """Another writer adds `aggregate` to the provider: its generation moves on."""
    current = writer.provider_aggregates(rp)
    body = {
        "aggregates": sorted({*current["aggregates"], aggregate}),
        "resource_provider_generation": current["resource_provider_generation"],
    }
    writer.put(f"/resource_providers/{rp}/aggregates", body, AGGREGATES_MV)


def _consumer(client: PlacementClient) -> str:
    """A consumer with allocations on a single provider of the bed."""
    for rp in client.resource_providers():
        for consumer in client.provider_allocations(rp["uuid"]):
            if len(client.consumer_allocations(consumer)["allocations"]) == 1:
                return str(consumer)
    raise AssertionError("the bed has no consumer with allocations")


def _bump_consumer(writer: PlacementClient, consumer: str) -> None:
    """Another writer rewrites the consumer unchanged: its generation moves on."""
    current = writer.consumer_allocations(consumer)
    body = {
        "allocations": {
            rp: {"resources": part["resources"]} for rp, part in current["allocations"].items()
        },
        "project_id": current["project_id"],
        "user_id": current["user_id"],
        "consumer_generation": current["consumer_generation"],
    }
    writer.put(f"/allocations/{consumer}", body, ALLOCATIONS_MV)


def test_aggregates_write_retries_after_a_real_conflict(nova_bed_placement: Any) -> None:
    client, writer = _client(nova_bed_placement), _client(nova_bed_placement)
    rp = _provider(client)
    theirs, ours = str(uuid.uuid4()), str(uuid.uuid4())
    calls: list[set[str]] = []

    def change(now: set[str]) -> set[str]:
        calls.append(set(now))
        if len(calls) == 1:
            _bump_aggregates(writer, rp, theirs)
        return now | {ours}

    before = client.requests
    written = client.change_provider_aggregates(rp, change)
    assert len(calls) == 2 and theirs not in calls[0] and theirs in calls[1]
    assert written == calls[1] | {ours}
    assert set(client.provider_aggregates(rp)["aggregates"]) == written
    assert client.requests - before == 4 + 1  # read, 409, read, write; and the check


def test_aggregates_write_gives_up_after_the_budget(nova_bed_placement: Any) -> None:
    client, writer = _client(nova_bed_placement), _client(nova_bed_placement)
    rp = _provider(client)
    ours = str(uuid.uuid4())
    calls = []

    def change(now: set[str]) -> set[str]:
        calls.append(1)
        _bump_aggregates(writer, rp, str(uuid.uuid4()))
        return now | {ours}

    before = client.requests
    with pytest.raises(PlacementError) as failed:
        client.change_provider_aggregates(rp, change)
    assert failed.value.status == 409
    assert len(calls) == GENERATION_CONFLICT_ATTEMPTS
    assert client.requests - before == 2 * GENERATION_CONFLICT_ATTEMPTS
    assert ours not in client.provider_aggregates(rp)["aggregates"]


def test_consumer_rewrite_retries_after_a_real_conflict(nova_bed_placement: Any) -> None:
    client, writer = _client(nova_bed_placement), _client(nova_bed_placement)
    consumer = _consumer(client)
    new_user = str(uuid.uuid4())
    seen_generations: list[int] = []

    def reown(current: dict[str, Any]) -> dict[str, Any] | None:
        seen_generations.append(current["consumer_generation"])
        if len(seen_generations) == 1:
            _bump_consumer(writer, consumer)
        return {
            "allocations": {
                rp: {"resources": part["resources"]} for rp, part in current["allocations"].items()
            },
            "project_id": current["project_id"],
            "user_id": new_user,
        }

    written = client.rewrite_consumer(consumer, reown)
    assert written is not None and written["consumer_generation"] == seen_generations[1]
    assert seen_generations[1] == seen_generations[0] + 1
    assert client.consumer_allocations(consumer)["user_id"] == new_user


def test_consumer_rewrite_gives_up_after_the_budget(nova_bed_placement: Any) -> None:
    client, writer = _client(nova_bed_placement), _client(nova_bed_placement)
    consumer = _consumer(client)
    calls = []

    def reown(current: dict[str, Any]) -> dict[str, Any] | None:
        calls.append(1)
        _bump_consumer(writer, consumer)
        return {"allocations": {}, "project_id": "p", "user_id": "u"}

    with pytest.raises(PlacementError) as failed:
        client.rewrite_consumer(consumer, reown)
    assert failed.value.status == 409 and len(calls) == GENERATION_CONFLICT_ATTEMPTS
    assert client.consumer_allocations(consumer)["allocations"]


def test_remove_provider_part_deletes_the_last_part_and_reports_nothing_left(
    nova_bed_placement: Any,
) -> None:
    client = _client(nova_bed_placement)
    consumer = _consumer(client)
    (rp,) = client.consumer_allocations(consumer)["allocations"]
    assert client.remove_provider_part(consumer, rp) is True
    assert client.consumer_allocations(consumer)["allocations"] == {}
    assert client.remove_provider_part(consumer, rp) is False


def test_max_microversion_reads_the_version_document(nova_bed_placement: Any) -> None:
    major, minor = _client(nova_bed_placement).max_microversion().split(".")
    assert (int(major), int(minor)) >= (1, 39)
