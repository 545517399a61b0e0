"""A pure ASGI middleware that requires a valid Keymint API key on every request.

    from starlette.applications import Starlette
    from keymint import AsyncKeymint
    from keymint.asgi import KeymintMiddleware

    app = Starlette(routes=...)
    app.add_middleware(KeymintMiddleware, client=AsyncKeymint("http://127.0.0.1:8080"),
                       permissions="reports.read", exclude_paths=["/healthz"])

    # in a handler: request.state.keymint is the VerifyResult

It works with any ASGI framework (no Starlette needed): the result is put in
``scope["state"]["keymint"]``, which is what Starlette's and FastAPI's
``request.state.keymint`` reads. Refusals are answered without calling the
application, exactly as Keymint's Rust extractor answers them (401, 403, 429
with ``Retry-After`` when known, 503 when Keymint cannot be reached), with a
``{"detail", "code"}`` JSON body. A WebSocket handshake without a valid key is
closed with code 1008 (policy violation).

Requirements given as callables receive the ASGI ``scope`` (and may be
coroutine functions).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Collection, Dict, MutableMapping, Optional, Union

from . import _guard as g
from ._async_client import AsyncKeymint
from ._client import Keymint

__all__ = ["KeymintMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class KeymintMiddleware:
    """Verifies the API key of every HTTP request and WebSocket handshake before ``app`` sees it.

    ``client`` is a :class:`~keymint.AsyncKeymint` (or a :class:`~keymint.Keymint`,
    run in a worker thread). ``permissions``, ``cost``, ``ratelimits`` and
    ``tags`` are as for :meth:`keymint.Keymint.verify`, each given once or as a
    function of the ASGI scope. ``exclude_paths`` are served without a key: a
    path equal to one of them, or under it (``/docs`` excludes ``/docs/x``).
    ``exclude`` is a predicate on the scope for anything else (CORS preflights:
    ``lambda scope: scope.get("method") == "OPTIONS"``).
    """

    def __init__(
        self,
        app: ASGIApp,
        client: Union[Keymint, AsyncKeymint],
        *,
        permissions: Any = None,
        cost: Any = None,
        ratelimits: Any = None,
        tags: Any = None,
        exclude_paths: Collection[str] = (),
        exclude: Optional[Callable[[Scope], bool]] = None,
        state_key: str = "keymint",
    ) -> None:
        if not isinstance(client, (Keymint, AsyncKeymint)):
            raise TypeError("KeymintMiddleware needs a keymint.Keymint or keymint.AsyncKeymint")
        self.app = app
        self.client = client
        self.wanted = g.Requirements(permissions=permissions, cost=cost, ratelimits=ratelimits, tags=tags)
        self.exclude_paths = tuple(path.rstrip("/") or "/" for path in exclude_paths)
        self.exclude = exclude
        self.state_key = state_key

    def _excluded(self, scope: Scope) -> bool:
        path = str(scope.get("path", ""))
        for prefix in self.exclude_paths:
            if path == prefix or (prefix != "/" and path.startswith(prefix + "/")):
                return True
        return self.exclude is not None and bool(self.exclude(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._excluded(scope):
            await self.app(scope, receive, send)
            return
        try:
            key = g.presented_key(scope.get("headers") or [])
            if key is None:
                raise g.api_key_required()
            resolved = await g.resolve_all(self.wanted, scope)
            result = await g.verify_async(self.client, key, resolved)
        except g.Refusal as refusal:
            await self._refuse(scope, send, refusal)
            return
        scope = dict(scope)
        state: Dict[str, Any] = dict(scope.get("state") or {})
        state[self.state_key] = result
        scope["state"] = state
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, refusal: g.Refusal) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refusal.code})
            return
        await send({"type": "http.response.start", "status": refusal.status, "headers": g.header_list(refusal)})
        await send({"type": "http.response.body", "body": refusal.body(), "more_body": False})
