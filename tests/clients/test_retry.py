"""The one retry helper of clients/: pauses, budget, and which requests each client repeats.

The clients are driven through a scripted adapter (a list of answers), so the
tests see exactly how many requests a fault costs; the real fault proxy in
front of the real Placement is exercised in tests/tasks/test_service_retries.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from keystoneauth1 import exceptions as ksa_exceptions

from nova_audit_ops.clients import retry
from nova_audit_ops.clients.cinder import CinderClient, CinderError
from nova_audit_ops.clients.compute import ComputeAPIError, ComputeClient
from nova_audit_ops.clients.placement import PlacementClient, PlacementError
from nova_audit_ops.clients.retry import RetryPolicy, status_verdict, with_retries
from nova_audit_ops.settings.errors import ServiceUnreachableError

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

    def __init__(self, *answers: Answer | Exception) -> None:
        self.answers = list(answers)
        self.methods: list[str] = []

    def request(self, path: str, method: str, **kwargs: Any) -> Answer:
        self.methods.append(method)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


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


NO_RESETS = Answer(200, {"instanceActions": [{"action": "create"}]})
ONE_RESET = Answer(200, {"instanceActions": [{"action": "create"}, {"action": "resetState"}]})


def test_nova_api_reset_state_and_force_down_are_retried() -> None:
    api = Script(NO_RESETS, Answer(500), Answer(202))
    ComputeClient(api, FAST).reset_state("uuid", "error")  # type: ignore[arg-type]
    api2 = Script(Answer(503), Answer(200, {"service": {}}))
    ComputeClient(api2, FAST).force_down("uuid", None)  # type: ignore[arg-type]
    assert api.methods == ["GET", "POST", "POST"] and api2.methods == ["PUT", "PUT"]


def test_a_reset_whose_answer_timed_out_is_read_back_not_repeated() -> None:
    landed = Script(NO_RESETS, ksa_exceptions.ConnectTimeout("timed out"), ONE_RESET)
    ComputeClient(landed, FAST).reset_state("uuid", "error")  # type: ignore[arg-type]
    assert landed.methods == ["GET", "POST", "GET"]
    lost = Script(NO_RESETS, ksa_exceptions.ConnectTimeout("timed out"), NO_RESETS, Answer(202))
    ComputeClient(lost, FAST).reset_state("uuid", "error")  # type: ignore[arg-type]
    assert lost.methods == ["GET", "POST", "GET", "POST"]
    refused = Script(NO_RESETS, ksa_exceptions.ConnectFailure("reset"), Answer(202))
    ComputeClient(refused, FAST).reset_state("uuid", "error")  # type: ignore[arg-type]
    assert refused.methods == ["GET", "POST", "POST"]  # not sent: retried at once


def test_nova_api_other_posts_are_not_repeated_on_500() -> None:
    api = Script(Answer(500, {"computeFault": {"message": "boom"}}))
    with pytest.raises(ComputeAPIError, match="500: boom"):
        ComputeClient(api, FAST)._request("POST", "/servers", {"server": {}})  # type: ignore[arg-type]
    assert api.methods == ["POST"]


def test_cinder_transient_errors_are_retried_then_raised() -> None:
    listing = {"attachments": [{"id": "a", "volume_id": "v", "instance": "i", "status": "x"}]}
    api = Script(Answer(503), Answer(500), Answer(200, listing))
    [found] = CinderClient({}, FAST, api=api).list_attachments()  # type: ignore[arg-type]
    assert found.id == "a" and found.instance_uuid == "i" and api.methods == ["GET"] * 3

    down = Script(*[Answer(500, {"computeFault": {"message": "down"}})] * 4)
    with pytest.raises(CinderError, match="Cinder returned 500 listing attachments: down"):
        CinderClient({}, FAST, api=down).list_attachments()  # type: ignore[arg-type]
    assert len(down.methods) == 4


def test_cinder_delete_404_after_a_retry_is_already_gone() -> None:
    api = Script(Answer(503), Answer(404, {"itemNotFound": {"message": "no attachment"}}))
    assert CinderClient({}, FAST, api=api).delete_attachment("att") is False  # type: ignore[arg-type]
    assert api.methods == ["DELETE", "DELETE"] and not api.answers


def test_cinder_errors_in_any_body_format_are_errors_not_crashes() -> None:
    """A gateway's (or Placement's) error list, or HTML: cinderclient's parser crashed on these."""
    placement_style = {"errors": [{"status": 500, "detail": "gateway says no"}]}
    api = Script(Answer(400, placement_style))
    with pytest.raises(CinderError, match="400: gateway says no"):
        CinderClient({}, FAST, api=api).delete_attachment("att")  # type: ignore[arg-type]
    html = Answer(401)
    html.content, html.reason = b"<html>no</html>", "Unauthorized"
    with pytest.raises(ServiceUnreachableError, match="admin role"):
        CinderClient({}, FAST, api=Script(html)).list_attachments()  # type: ignore[arg-type]


def test_cinder_listing_follows_next_links() -> None:
    first = {
        "attachments": [{"id": "a1", "instance": "i1"}],
        "attachments_links": [{"rel": "next", "href": "http://cinder/v3/attachments?marker=a1"}],
    }
    api = Script(Answer(200, first), Answer(200, {"attachments": [{"id": "a2"}]}))
    found = CinderClient({}, FAST, api=api).list_attachments()  # type: ignore[arg-type]
    assert [a.id for a in found] == ["a1", "a2"] and found[1].instance_uuid is None
