"""The one retry helper of clients/: pauses, budget, and which requests each client repeats.

The clients are driven through a scripted adapter (a list of answers), so the
tests see exactly how many requests a fault costs; the real fault proxy in
front of the real Placement is exercised in tests/tasks/test_service_retries.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cinderclient import exceptions as cinder_exceptions

from nova_audit_ops.clients import cinder, retry
from nova_audit_ops.clients.compute import ComputeAPIError, ComputeClient
from nova_audit_ops.clients.placement import PlacementClient, PlacementError
from nova_audit_ops.clients.retry import RetryPolicy, status_verdict, with_retries

FAST = RetryPolicy(retries=3, delay=0.0, max_delay=0.0)


class Answer:
    """What a keystoneauth1 Adapter returns with raise_exc=False, reduced to what we read."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status_code = status
        self.headers = headers or {}
        self.content = json.dumps(body).encode() if body is not None else b""
        self.reason = "scripted"
        self._body = body

    def json(self) -> Any:
        return self._body


class Script:
    """An adapter answering from a list, recording the methods it was asked."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.methods: list[str] = []

    def request(self, path: str, method: str, **kwargs: Any) -> Answer:
        self.methods.append(method)
        return self.answers.pop(0)


def test_pause_doubles_honours_retry_after_and_is_capped() -> None:
    policy = RetryPolicy(retries=5, delay=0.5, max_delay=3.0)
    assert [policy.pause(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert policy.pause(1, "2") == 2.0
    assert policy.pause(1, "3600") == 3.0  # a Retry-After never stalls a run past the cap
    assert policy.pause(2, "Wed, 21 Oct 2015 07:28:00 GMT") == 1.0  # a date: doubling
    assert policy.pause(1, "-5") == 0.0
    assert policy.worst_case() == 15.0


def test_with_retries_stops_at_the_first_final_answer() -> None:
    answers, slept = iter([503, 500, 200, 500]), []
    result, attempts = with_retries(
        lambda: next(answers), lambda s: (s >= 500, None), FAST, sleep=slept.append
    )
    assert (result, attempts, slept) == (200, 3, [0.0, 0.0])


def test_with_retries_returns_the_last_answer_when_the_budget_is_spent() -> None:
    slept: list[float] = []
    policy = RetryPolicy(retries=2, delay=0.25, max_delay=1.0)
    result, attempts = with_retries(lambda: 500, lambda s: (True, None), policy, sleep=slept.append)
    assert (result, attempts, slept) == (500, 3, [0.25, 0.5])


def test_no_retries_means_one_attempt() -> None:
    result, attempts = with_retries(lambda: 503, lambda s: (True, "1"), retry.NO_RETRIES)
    assert (result, attempts) == (503, 1)


def test_status_verdict_reads_retry_after() -> None:
    judge = status_verdict(retry.TRANSIENT_STATUSES)
    assert judge(Answer(503, headers={"Retry-After": "1"})) == (True, "1")
    assert judge(Answer(500)) == (True, None)
    assert judge(Answer(409)) == (False, None)
    assert judge(Answer(200)) == (False, None)


def test_placement_reads_and_guarded_puts_are_retried() -> None:
    api = Script(Answer(500), Answer(503, headers={"Retry-After": "0"}), Answer(200, {"a": 1}))
    client = PlacementClient(api, FAST)  # type: ignore[arg-type]
    assert client.get("/x", "1.0") == {"a": 1}
    assert client.requests == 3
    api = Script(Answer(502), Answer(204))
    PlacementClient(api, FAST).put("/allocations/c", {}, "1.28")  # type: ignore[arg-type]
    assert api.methods == ["PUT", "PUT"]


def test_placement_gives_up_after_the_budget_with_the_last_error() -> None:
    api = Script(*[Answer(500)] * 4)
    client = PlacementClient(api, FAST)  # type: ignore[arg-type]
    with pytest.raises(PlacementError, match="Placement returned 500") as caught:
        client.get("/x", "1.0")
    assert caught.value.status == 500 and client.requests == 4


def test_a_delete_that_meets_404_on_a_retry_is_done() -> None:
    api = Script(Answer(503), Answer(404, {"errors": [{"detail": "gone"}]}))
    PlacementClient(api, FAST).delete("/allocations/c", "1.28")  # type: ignore[arg-type]
    assert api.methods == ["DELETE", "DELETE"]
    api = Script(Answer(404, {"errors": [{"detail": "no such consumer"}]}))
    with pytest.raises(PlacementError, match="404"):  # first attempt: as before
        PlacementClient(api, FAST).delete("/allocations/c", "1.28")  # type: ignore[arg-type]


def test_placement_post_is_repeated_only_when_it_was_not_processed() -> None:
    api = Script(Answer(500))
    with pytest.raises(PlacementError, match="500"):
        PlacementClient(api, FAST).post("/allocations", {}, "1.28")  # type: ignore[arg-type]
    api = Script(Answer(429), Answer(503), Answer(204))
    PlacementClient(api, FAST).post("/allocations", {}, "1.28")  # type: ignore[arg-type]
    assert api.methods == ["POST"] * 3


def test_client_errors_are_never_retried() -> None:
    api = Script(Answer(409, {"errors": [{"detail": "generation conflict"}]}))
    with pytest.raises(PlacementError, match="409"):
        PlacementClient(api, FAST).put("/allocations/c", {}, "1.28")  # type: ignore[arg-type]
    assert api.methods == ["PUT"]


def test_nova_api_reset_state_and_force_down_are_retried() -> None:
    api = Script(Answer(500), Answer(202))
    ComputeClient(api, FAST).reset_state("uuid", "error")  # type: ignore[arg-type]
    api2 = Script(Answer(503), Answer(200, {"service": {}}))
    ComputeClient(api2, FAST).force_down("uuid", None)  # type: ignore[arg-type]
    assert api.methods == ["POST", "POST"] and api2.methods == ["PUT", "PUT"]


def test_nova_api_other_posts_are_not_repeated_on_500() -> None:
    api = Script(Answer(500, {"computeFault": {"message": "boom"}}))
    with pytest.raises(ComputeAPIError, match="500: boom"):
        ComputeClient(api, FAST)._request("POST", "/servers", {"server": {}})  # type: ignore[arg-type]
    assert api.methods == ["POST"]


def test_cinder_transient_errors_are_retried_then_raised() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise cinder_exceptions.ClientException(503, "unavailable")
        return "ok"

    assert cinder.retried(flaky, FAST, "Cinder GET") == "ok" and len(calls) == 3

    def down() -> str:
        calls.append(1)
        raise cinder_exceptions.ClientException(500, "down")

    calls.clear()
    with pytest.raises(cinder_exceptions.ClientException):
        cinder.retried(down, FAST, "Cinder GET")
    assert len(calls) == 4


def test_cinder_delete_404_after_a_retry_is_already_gone() -> None:
    answers: list[Exception] = [
        cinder_exceptions.ClientException(503, "unavailable"),
        cinder_exceptions.NotFound(404, "no such attachment"),
    ]

    class Attachments:
        def delete(self, attachment_id: str) -> None:
            raise answers.pop(0)

    class Client:
        attachments = Attachments()

    assert cinder.delete_attachment(Client(), "att", FAST) is False
    assert not answers
