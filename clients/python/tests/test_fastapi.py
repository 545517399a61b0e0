"""keymint.fastapi.require_api_key in a FastAPI app, verifying against the real Keymint."""

from __future__ import annotations

from typing import Any, AsyncIterator, Dict, Iterator, Optional

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from keymint import AsyncKeymint, Keymint, VerifyCache, VerifyResult
from keymint.fastapi import KeymintHTTPException, install_error_handler, require_api_key

from .conftest import AsyncCountingTransport, CountingTransport, Server, _free_port, eventually, hs256_token

MONTH_MS = 2_592_000_000


def make_app(client: "Keymint | AsyncKeymint", *, handler: bool = True) -> FastAPI:
    app = FastAPI()
    if handler:
        install_error_handler(app)

    @app.get("/open")
    def open_route(request: Request, key: VerifyResult = Depends(require_api_key(client))) -> Dict[str, Any]:
        assert request.state.keymint is key
        return {"key_id": key.key_id, "owner": key.owner_id, "org": key.org_id}

    @app.get("/reports")
    def reports(key: VerifyResult = Depends(require_api_key(client, permissions="reports.read"))) -> Dict[str, Any]:
        return {"key_id": key.key_id}

    @app.post("/exports")
    def exports(
        key: VerifyResult = Depends(require_api_key(client, cost=10, ratelimits={"exports": 1})),
    ) -> Dict[str, Any]:
        return {"credits": key.credits.remaining if key.credits else None}

    @app.get("/tagged/{name}")
    def tagged(
        key: VerifyResult = Depends(require_api_key(client, tags=lambda request: [f"path={request.url.path}"])),
    ) -> Dict[str, Any]:
        return {"ok": True}

    return app


@pytest.fixture
async def aclient(keymint_server: Server) -> AsyncIterator[AsyncKeymint]:
    async with AsyncKeymint(keymint_server.url, max_retries=0) as client:
        yield client


@pytest.fixture
async def app_client(aclient: AsyncKeymint) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(aclient))
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        yield client


@pytest.mark.anyio
async def test_valid_key_in_either_header(app_client: httpx.AsyncClient, km: Keymint, org: str) -> None:
    created = km.keys.create("svc", owner_id="cus_9")
    for headers in (
        {"x-api-key": created.private_key},
        {"authorization": f"Bearer {created.private_key}"},
        {"x-api-key": created.private_key, "authorization": f"Bearer {created.private_key}"},
    ):
        response = await app_client.get("/open", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"key_id": created.id, "owner": "cus_9", "org": org}


@pytest.mark.anyio
async def test_401_answers(app_client: httpx.AsyncClient, km: Keymint) -> None:
    a = km.keys.create("a").private_key
    b = km.keys.create("b").private_key
    revoked = km.keys.create("r")
    km.keys.revoke(revoked.id)
    jwt = hs256_token({"sub": "x", "org_id": "y"})
    cases = [
        ({}, "api_key_required"),
        ({"authorization": f"Bearer {jwt}"}, "api_key_required"),  # a JWT is not an API key
        ({"authorization": "Basic dXNlcjpwdw=="}, "api_key_required"),
        ({"x-api-key": "sk_live_not_a_key"}, "invalid_api_key"),
        ({"x-api-key": ""}, "invalid_api_key"),
        ({"x-api-key": a, "authorization": f"Bearer {b}"}, "ambiguous_api_key"),
        ({"x-api-key": revoked.private_key}, "api_key_revoked"),
    ]
    for headers, code in cases:
        response = await app_client.get("/open", headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["code"] == code
        assert response.headers["www-authenticate"] == 'Bearer realm="api-key"'
        for secret in (a, b, revoked.private_key):
            assert secret not in response.text


@pytest.mark.anyio
async def test_403_insufficient_permissions(app_client: httpx.AsyncClient, km: Keymint) -> None:
    reader = km.keys.create("reader", permissions=["reports.*"]).private_key
    other = km.keys.create("other", permissions=["billing.read"]).private_key
    assert (await app_client.get("/reports", headers={"x-api-key": reader})).status_code == 200
    response = await app_client.get("/reports", headers={"x-api-key": other})
    assert response.status_code == 403
    assert response.json() == {
        "detail": "The API key lacks the permissions this call requires: reports.read",
        "code": "insufficient_permissions",
    }


@pytest.mark.anyio
async def test_429_rate_limited_with_retry_after(app_client: httpx.AsyncClient, km: Keymint) -> None:
    created = km.keys.create(
        "limited", ratelimits=[{"name": "exports", "limit": 1, "duration_ms": MONTH_MS, "auto_apply": False}]
    )
    headers = {"x-api-key": created.private_key}
    first = await app_client.post("/exports", headers=headers)
    assert first.status_code == 200 and first.json() == {"credits": None}
    second = await app_client.post("/exports", headers=headers)
    assert second.status_code == 429
    assert second.json()["code"] == "rate_limited"
    retry_after = int(second.headers["retry-after"])
    assert 1 <= retry_after <= MONTH_MS // 1000
    # The wait is until the month-long window's end, as Keymint reports it.
    state = km.verify(created.private_key, ratelimits={"exports": 0}).ratelimits
    assert state is not None
    from datetime import datetime, timezone

    expected = (state[0].reset - datetime.now(timezone.utc)).total_seconds()
    assert abs(retry_after - expected) <= 5


@pytest.mark.anyio
async def test_429_usage_exceeded(app_client: httpx.AsyncClient, km: Keymint) -> None:
    created = km.keys.create(
        "credits", credits={"remaining": 15}, ratelimits=[{"name": "exports", "limit": 100, "duration_ms": MONTH_MS}]
    )
    headers = {"x-api-key": created.private_key}
    first = await app_client.post("/exports", headers=headers)
    assert first.status_code == 200 and first.json() == {"credits": 5}
    second = await app_client.post("/exports", headers=headers)
    assert second.status_code == 429
    assert second.json() == {"detail": "The API key has no credits left for this call", "code": "usage_exceeded"}
    # Keymint's verify answer carries no refill time, so no Retry-After is given.
    assert "retry-after" not in second.headers


@pytest.mark.anyio
async def test_503_when_keymint_is_unreachable() -> None:
    async with AsyncKeymint(f"http://127.0.0.1:{_free_port()}", max_retries=0) as dead:
        transport = httpx.ASGITransport(app=make_app(dead))
        async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
            response = await client.get("/open", headers={"x-api-key": "sk_live_anything"})
    assert response.status_code == 503
    assert response.json()["code"] == "keymint_unavailable" and response.headers["retry-after"] == "5"


@pytest.mark.anyio
async def test_tags_from_the_request_are_counted(app_client: httpx.AsyncClient, km: Keymint) -> None:
    created = km.keys.create("tagged")
    for name in ("a", "a", "b"):
        assert (await app_client.get(f"/tagged/{name}", headers={"x-api-key": created.private_key})).status_code == 200

    def tags() -> Optional[Dict[Optional[str], int]]:
        answer = km.analytics.verifications(key_id=created.id, group_by="tag")
        counts = {bucket.tag: bucket.count for bucket in answer}
        return counts if sum(counts.values()) == 3 else None

    assert eventually(tags) == {"path=/tagged/a": 2, "path=/tagged/b": 1}


@pytest.mark.anyio
async def test_without_the_handler_fastapi_shape_and_headers(aclient: AsyncKeymint) -> None:
    transport = httpx.ASGITransport(app=make_app(aclient, handler=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        response = await client.get("/open")
    assert response.status_code == 401
    assert response.json() == {"detail": "An API key is required: send it as x-api-key or Authorization: Bearer"}
    assert response.headers["www-authenticate"] == 'Bearer realm="api-key"'


def test_sync_client_in_fastapi_thread_pool(keymint_server: Server, km: Keymint) -> None:
    reader = km.keys.create("sync", permissions=["reports.read"]).private_key
    with Keymint(keymint_server.url) as sync_client, TestClient(make_app(sync_client)) as client:
        assert client.get("/reports", headers={"x-api-key": reader}).status_code == 200
        assert client.get("/reports", headers={"x-api-key": "nope"}).json()["code"] == "invalid_api_key"
        assert client.get("/reports").status_code == 401
        other = km.keys.create("nope", permissions=["x"]).private_key
        assert client.get("/reports", headers={"authorization": f"Bearer {other}"}).status_code == 403


def test_sync_client_refuses_async_requirements(keymint_server: Server, km: Keymint) -> None:
    async def perms(request: Request) -> str:
        return "x"

    app = FastAPI()

    @app.get("/")
    def root(key: VerifyResult = Depends(require_api_key(Keymint(keymint_server.url), permissions=perms))) -> str:
        return "never"

    key = km.keys.create("k").private_key
    with TestClient(app, raise_server_exceptions=True) as client, pytest.raises(TypeError):
        client.get("/", headers={"x-api-key": key})


# ------------------------------------------------------------------ the local cache


@pytest.fixture
def counting() -> Iterator[AsyncCountingTransport]:
    yield AsyncCountingTransport()


@pytest.mark.anyio
async def test_cache_hit_does_not_call_keymint_again(
    keymint_server: Server, km: Keymint, counting: AsyncCountingTransport
) -> None:
    cache = VerifyCache(ttl=30, max_size=100)
    free = km.keys.create("free", permissions=["reports.read"])
    metered = km.keys.create("metered", credits={"remaining": 100})
    async with AsyncKeymint(
        keymint_server.url, token=km._token_value(), transport=counting, verify_cache=cache
    ) as client:
        transport = httpx.ASGITransport(app=make_app(client))
        async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as app_client:
            for _ in range(3):
                assert (await app_client.get("/reports", headers={"x-api-key": free.private_key})).status_code == 200
            assert counting.count("/verify") == 1 and cache.hits == 2

            # Another permission query is another verification.
            assert (await app_client.get("/open", headers={"x-api-key": free.private_key})).status_code == 200
            assert counting.count("/verify") == 2

            # A metered key is asked every time: each call spends its credit.
            for _ in range(3):
                assert (await app_client.get("/open", headers={"x-api-key": metered.private_key})).status_code == 200
            assert counting.count("/verify") == 5
            assert km.credits.get(metered.id).remaining == 97  # type: ignore[union-attr]

            # Refusals are never cached.
            for _ in range(2):
                assert (await app_client.get("/open", headers={"x-api-key": "sk_live_nope"})).status_code == 401
            assert counting.count("/verify") == 7

            # Revoking through the same client evicts its entries at once.
            await client.keys.revoke(free.id)
            response = await app_client.get("/reports", headers={"x-api-key": free.private_key})
            assert response.status_code == 401 and response.json()["code"] == "api_key_revoked"
            assert counting.count("/verify") == 8
    assert all(free.private_key.encode() not in name for name in cache._entries)


def test_cache_is_bounded(keymint_server: Server, km: Keymint) -> None:
    cache = VerifyCache(ttl=30, max_size=1)
    keys = [km.keys.create(f"k{i}").private_key for i in range(2)]
    counting = CountingTransport()
    with (
        Keymint(keymint_server.url, transport=counting, verify_cache=cache) as client,
        TestClient(make_app(client)) as app_client,
    ):
        for key in keys + keys:
            assert app_client.get("/open", headers={"x-api-key": key}).status_code == 200
        # One entry only: each key pushed the other out, so every request asked Keymint.
        assert counting.count("/verify") == 4 and len(cache) == 1
        assert app_client.get("/open", headers={"x-api-key": keys[1]}).status_code == 200
        assert counting.count("/verify") == 4  # the entry that stayed


def test_exception_carries_the_code() -> None:
    exc = KeymintHTTPException(429, "slow down", "rate_limited", {"Retry-After": "3"})
    assert exc.status_code == 429 and exc.code == "rate_limited" and exc.headers == {"Retry-After": "3"}
