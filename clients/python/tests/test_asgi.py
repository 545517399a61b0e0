"""keymint.asgi.KeymintMiddleware (pure ASGI) in Starlette and bare ASGI apps, against the real Keymint."""

from __future__ import annotations

from typing import Any, AsyncIterator, Dict, List

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from keymint import AsyncKeymint, Keymint, VerifyCache
from keymint.asgi import KeymintMiddleware

from .conftest import AsyncCountingTransport, Server, _free_port

MONTH_MS = 2_592_000_000


async def whoami(request: Request) -> JSONResponse:
    key = request.state.keymint
    return JSONResponse({"key_id": key.key_id, "name": key.name, "lifespan": getattr(request.state, "db", None)})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "has_key": hasattr(request.state, "keymint")})


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"key_id": websocket.state.keymint.key_id})
    await websocket.close()


def make_app(client: "Keymint | AsyncKeymint", **options: Any) -> Starlette:
    return Starlette(
        routes=[
            Route("/whoami", whoami, methods=["GET", "POST"]),
            Route("/healthz", health),
            Route("/docs/page", health),
            WebSocketRoute("/ws", socket),
        ],
        middleware=[Middleware(KeymintMiddleware, client=client, **options)],
    )


@pytest.fixture
async def aclient(keymint_server: Server) -> AsyncIterator[AsyncKeymint]:
    async with AsyncKeymint(keymint_server.url, max_retries=0) as client:
        yield client


async def call(app: Any, path: str = "/whoami", method: str = "GET", **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc.test") as client:
        return await client.request(method, path, headers={k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.anyio
async def test_valid_key_reaches_the_app_with_state(aclient: AsyncKeymint, km: Keymint) -> None:
    created = km.keys.create("asgi")
    response = await call(make_app(aclient), x_api_key=created.private_key)
    assert response.status_code == 200 and response.json()["key_id"] == created.id
    response = await call(make_app(aclient), authorization=f"Bearer {created.private_key}")
    assert response.json()["name"] == "asgi"


@pytest.mark.anyio
async def test_refusals(aclient: AsyncKeymint, km: Keymint) -> None:
    perm = km.keys.create("perm", permissions=["other"]).private_key
    limited = km.keys.create("limited", ratelimits=[{"name": "calls", "limit": 1, "duration_ms": MONTH_MS}])
    app = make_app(aclient, permissions=lambda scope: "admin" if scope["method"] == "POST" else None)

    missing = await call(app)
    assert missing.status_code == 401 and missing.json() == {
        "detail": "An API key is required: send it as x-api-key or Authorization: Bearer",
        "code": "api_key_required",
    }
    assert missing.headers["www-authenticate"] == 'Bearer realm="api-key"'
    assert missing.headers["content-type"] == "application/json"
    assert (await call(app, x_api_key="sk_live_bogus")).json()["code"] == "invalid_api_key"
    assert (await call(app, x_api_key=perm, authorization="Bearer sk_other")).json()["code"] == "ambiguous_api_key"

    assert (await call(app, x_api_key=perm)).status_code == 200  # GET asks no permission
    forbidden = await call(app, method="POST", x_api_key=perm)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "insufficient_permissions"
    assert forbidden.json()["detail"].endswith(": admin")

    assert (await call(app, x_api_key=limited.private_key)).status_code == 200
    refused = await call(app, x_api_key=limited.private_key)
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= MONTH_MS // 1000


@pytest.mark.anyio
async def test_failure_budget_429(aclient: AsyncKeymint, km: Keymint) -> None:
    created = km.keys.create("gone")
    km.keys.delete(created.id)
    app = make_app(aclient)
    codes = [(await call(app, x_api_key=created.private_key)).status_code for _ in range(11)]
    assert codes == [401] * 10 + [429]
    last = await call(app, x_api_key=created.private_key)
    assert last.json() == {"detail": "Too many failed attempts; retry later", "code": "rate_limited"}
    assert last.headers["retry-after"] == "5"


@pytest.mark.anyio
async def test_excluded_paths_and_predicate(aclient: AsyncKeymint) -> None:
    app = make_app(aclient, exclude_paths=["/healthz", "/docs"], exclude=lambda scope: scope["method"] == "OPTIONS")
    assert (await call(app, "/healthz")).json() == {"ok": True, "has_key": False}
    assert (await call(app, "/docs/page")).status_code == 200
    assert (await call(app, "/whoami", method="OPTIONS")).status_code == 405  # reached the app
    assert (await call(app, "/whoami")).status_code == 401
    assert (await call(app, "/healthzz")).status_code == 401  # not under /healthz


@pytest.mark.anyio
async def test_unreachable_keymint_is_503() -> None:
    async with AsyncKeymint(f"http://127.0.0.1:{_free_port()}", max_retries=0) as dead:
        response = await call(make_app(dead), x_api_key="sk_live_x")
    assert response.status_code == 503 and response.json()["code"] == "keymint_unavailable"
    assert response.headers["retry-after"] == "5"


@pytest.mark.anyio
async def test_misconfigured_route_is_500_not_a_pass(aclient: AsyncKeymint, km: Keymint) -> None:
    key = km.keys.create("k").private_key
    response = await call(make_app(aclient, ratelimits={"no-such-limit": 1}), x_api_key=key)
    assert response.status_code == 500 and response.json()["code"] == "internal_error"


@pytest.mark.anyio
async def test_bare_asgi_app_and_state_isolation(aclient: AsyncKeymint, km: Keymint) -> None:
    seen: List[Dict[str, Any]] = []

    async def app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["state"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    shared_state = {"db": "pool"}

    async def with_lifespan_state(scope: Dict[str, Any], receive: Any, send: Any) -> None:
        scope["state"] = shared_state
        await KeymintMiddleware(app, aclient)(scope, receive, send)

    key = km.keys.create("bare").private_key
    assert (await call(with_lifespan_state, x_api_key=key)).status_code == 204
    assert seen[0]["keymint"].valid and seen[0]["db"] == "pool"
    assert "keymint" not in shared_state  # the lifespan state is not written to


@pytest.mark.anyio
async def test_cache_in_middleware(keymint_server: Server, km: Keymint) -> None:
    counting = AsyncCountingTransport()
    key = km.keys.create("cached").private_key
    async with AsyncKeymint(keymint_server.url, transport=counting, verify_cache=VerifyCache(ttl=30)) as client:
        app = make_app(client)
        for _ in range(4):
            assert (await call(app, x_api_key=key)).status_code == 200
    assert counting.count("/verify") == 1


def test_sync_client_and_websockets(keymint_server: Server, km: Keymint) -> None:
    key = km.keys.create("ws")
    with Keymint(keymint_server.url) as client, TestClient(make_app(client)) as test:
        assert test.get("/whoami", headers={"x-api-key": key.private_key}).json()["key_id"] == key.id
        assert test.get("/whoami").status_code == 401
        with test.websocket_connect("/ws", headers={"x-api-key": key.private_key}) as ws:
            assert ws.receive_json() == {"key_id": key.id}
        with pytest.raises(WebSocketDisconnect) as info:
            with test.websocket_connect("/ws", headers={"x-api-key": "sk_live_bogus"}) as ws:
                ws.receive_json()
        assert info.value.code == 1008


def test_constructor_checks_the_client() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    with pytest.raises(TypeError):
        KeymintMiddleware(app, client="http://127.0.0.1:8080")  # type: ignore[arg-type]
