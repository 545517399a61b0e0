"""Retry rules and paging-link safety, with scripted answers (httpx.MockTransport).

What to retry is decided from the request alone, so these rules are tested
against answers a real Keymint gives only under failure (500, 502, a dropped
connection), scripted here.
"""

from __future__ import annotations

import json
from typing import Callable, List

import httpx
import pytest

import keymint
from keymint import AsyncKeymint, Keymint

Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*answers: object) -> "tuple[httpx.MockTransport, List[httpx.Request]]":
    seen: List[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer

    return httpx.MockTransport(handle), seen


def error(status: int, code: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, json={"detail": code, "code": code}, headers={"x-request-id": f"rid-{status}", **headers}
    )


KEY = {
    "id": "01a2",
    "org_id": "o",
    "name": "n",
    "public_key": "pk",
    "private_key_display": "sk…",
    "created_at": "2026-01-01T00:00:00Z",
    "description": None,
    "is_revoked": False,
    "revoked_at": None,
    "last_used_at": None,
    "environment": "live",
    "expires_at": None,
    "permissions": [],
    "owner_id": None,
    "meta": None,
    "ratelimits": [],
    "credits": None,
    "leaked_at": None,
    "previous_key_valid_until": None,
    "status": "active",
    "usage_24h": 0,
}


def test_get_is_retried_on_5xx_and_429_honouring_retry_after() -> None:
    transport, seen = scripted(
        error(503, "storage_unavailable", **{"retry-after": "2"}),
        error(429, "rate_limited"),
        httpx.Response(200, json=KEY),
    )
    sleeps: List[float] = []
    with Keymint("http://km.test", token="t", transport=transport, max_retries=2, sleep=sleeps.append) as km:
        assert km.keys.get("01a2").id == "01a2"
    assert len(seen) == 3
    assert sleeps[0] == 2.0 and 0 < sleeps[1] <= 1.0  # Retry-After, then backoff


def test_retries_are_bounded_and_the_last_error_raised() -> None:
    transport, seen = scripted(error(500, "internal_error"), error(502, "bad_gateway"), error(503, "x"))
    sleeps: List[float] = []
    with Keymint("http://km.test", transport=transport, max_retries=2, sleep=sleeps.append) as km:
        with pytest.raises(keymint.ServiceUnavailableError) as info:
            km.keys.get("k")
    assert len(seen) == 3 and len(sleeps) == 2 and info.value.request_id == "rid-503"


def test_max_retries_zero_and_long_retry_after_are_not_retried() -> None:
    transport, seen = scripted(error(503, "x"))
    with Keymint("http://km.test", transport=transport, max_retries=0) as km:
        with pytest.raises(keymint.ServerError):
            km.keys.get("k")
    assert len(seen) == 1
    transport, seen = scripted(error(429, "rate_limited", **{"retry-after": "3600"}))
    with Keymint("http://km.test", transport=transport, max_retries=3, max_retry_after=60) as km:
        with pytest.raises(keymint.RateLimitError) as info:
            km.keys.get("k")
    assert len(seen) == 1 and info.value.retry_after == 3600.0


def test_post_without_idempotency_key_is_not_retried_after_sending() -> None:
    transport, seen = scripted(error(503, "storage_unavailable"))
    with Keymint("http://km.test", transport=transport, max_retries=3, sleep=lambda s: None) as km:
        with pytest.raises(keymint.ServiceUnavailableError):
            km.keys.create("x")
    assert len(seen) == 1
    transport, seen = scripted(httpx.ReadError("connection reset"))
    with Keymint("http://km.test", transport=transport, max_retries=3, sleep=lambda s: None) as km:
        with pytest.raises(keymint.APIConnectionError):
            km.verify("sk_live_x")  # may have spent credits: never sent twice
    assert len(seen) == 1


def test_post_is_retried_when_it_was_never_sent() -> None:
    transport, seen = scripted(
        httpx.ConnectError("refused"), httpx.Response(200, json={"valid": False, "code": "NOT_FOUND"})
    )
    with Keymint("http://km.test", transport=transport, max_retries=1, sleep=lambda s: None) as km:
        assert km.verify("sk_live_x").code == "NOT_FOUND"
    assert len(seen) == 2


def test_credits_change_is_retried_with_the_same_idempotency_key() -> None:
    transport, seen = scripted(
        httpx.ReadTimeout("lost"),
        error(500, "internal_error"),
        httpx.Response(200, json={"remaining": 5, "refill": None}, headers={"idempotent-replayed": "true"}),
    )
    with Keymint("http://km.test", token="t", transport=transport, max_retries=2, sleep=lambda s: None) as km:
        change = km.credits.increment("01a2", 5)
    assert change.remaining == 5 and change.replayed is True
    keys = {r.headers["idempotency-key"] for r in seen}
    assert len(seen) == 3 and len(keys) == 1 and next(iter(keys)).startswith("keymint-python-")
    assert json.loads(seen[0].content) == {"op": "increment", "value": 5}


def test_token_callable_is_called_per_request_and_not_sent_to_verify() -> None:
    transport, seen = scripted(
        httpx.Response(200, json=KEY), httpx.Response(200, json={"valid": True, "code": "VALID"})
    )
    tokens = iter(["first", "second"])
    with Keymint("http://km.test", token=lambda: next(tokens), transport=transport) as km:
        km.keys.get("k")
        km.verify("sk_live_x")
    assert seen[0].headers["authorization"] == "Bearer first"
    assert "authorization" not in seen[1].headers
    assert json.loads(seen[1].content) == {"key": "sk_live_x"}


def test_next_link_to_another_origin_is_not_followed() -> None:
    transport, seen = scripted(
        httpx.Response(
            200, json=[KEY], headers={"link": '<https://evil.example/api/v2/api-keys?cursor=1>; rel="next"'}
        ),
    )
    with Keymint("http://km.test", token="t", transport=transport) as km:
        pager = km.keys.list()
        assert next(pager).id == "01a2"
        with pytest.raises(keymint.UnexpectedResponseError):
            next(pager)
    assert len(seen) == 1


def test_link_header_forms() -> None:
    transport, seen = scripted(
        httpx.Response(
            200, json=[KEY], headers={"link": '</x?a=1>; rel="prev", </api/v2/api-keys?cursor=2&limit=1>; rel="next"'}
        ),
        httpx.Response(200, json=[KEY], headers={"link": '</api/v2/api-keys?cursor=3>; rel="last"'}),
    )
    with Keymint("http://km.test/prefix", token="t", transport=transport) as km:
        assert len(list(km.keys.list(limit=1))) == 2
    assert str(seen[0].url) == "http://km.test/prefix/api/v2/api-keys?limit=1"
    assert str(seen[1].url) == "http://km.test/api/v2/api-keys?cursor=2&limit=1"


def test_not_json_and_missing_fields_are_unexpected_responses() -> None:
    transport, _ = scripted(
        httpx.Response(200, text="<html>", headers={"x-request-id": "r1"}), httpx.Response(200, json={"id": "x"})
    )
    with Keymint("http://km.test", transport=transport) as km:
        with pytest.raises(keymint.UnexpectedResponseError) as info:
            km.keys.get("k")
        assert info.value.request_id == "r1"
        with pytest.raises(keymint.UnexpectedResponseError) as info:
            km.keys.get("k")
        assert "org_id" in str(info.value)


def test_error_without_json_body() -> None:
    transport, _ = scripted(httpx.Response(431, content=b""), httpx.Response(418, json={"message": "teapot"}))
    with Keymint("http://km.test", transport=transport) as km:
        with pytest.raises(keymint.KeymintError) as info:
            km.keys.get("k")
        assert info.value.status == 431 and info.value.code is None
        with pytest.raises(keymint.KeymintError) as info:
            km.keys.get("k")
        assert info.value.detail == "teapot"


@pytest.mark.anyio
async def test_async_retries_the_same_way() -> None:
    seen: List[httpx.Request] = []
    answers = [error(503, "x", **{"retry-after": "0"}), httpx.Response(200, json=KEY)]

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    async def no_sleep(seconds: float) -> None:
        return None

    async with AsyncKeymint("http://km.test", transport=httpx.MockTransport(handle), sleep=no_sleep) as km:
        assert (await km.keys.get("k")).id == "01a2"
    assert len(seen) == 2
