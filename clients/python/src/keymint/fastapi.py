"""Protect FastAPI routes with Keymint API keys.

    from fastapi import Depends, FastAPI
    from keymint import AsyncKeymint, VerifyResult
    from keymint.fastapi import install_error_handler, require_api_key

    km = AsyncKeymint("http://127.0.0.1:8080")
    app = FastAPI()
    install_error_handler(app)          # {"detail", "code"} bodies, as Keymint's own

    @app.get("/reports")
    async def reports(key: VerifyResult = Depends(require_api_key(km, permissions="reports.read"))):
        return {"org": key.org_id, "owner": key.owner_id}

Requests are answered before the handler runs, as Keymint's Rust extractor
answers them: 401 (no key, unknown, revoked, expired, or two different keys),
403 (``insufficient_permissions``), 429 (``rate_limited``/``usage_exceeded``,
with ``Retry-After`` when the wait is known) and 503 when Keymint cannot be
reached. Needs the ``fastapi`` extra: ``pip install 'keymint[fastapi]'``.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, Optional, Union

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from . import _guard as g
from ._async_client import AsyncKeymint
from ._client import Keymint
from .models import VerifyResult

__all__ = ["require_api_key", "KeymintHTTPException", "install_error_handler", "keymint_exception_handler"]

Requirement = Union[Any, Callable[[Request], Any], Callable[[Request], Awaitable[Any]]]


class KeymintHTTPException(HTTPException):
    """The refusal of a protected route: an :class:`HTTPException` that also carries Keymint's ``code``.

    FastAPI's own handler answers it as ``{"detail": …}`` with its headers
    (``WWW-Authenticate``, ``Retry-After``); :func:`install_error_handler`
    makes it ``{"detail": …, "code": …}`` like Keymint's answers.
    """

    def __init__(self, status_code: int, detail: str, code: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code

    @classmethod
    def from_refusal(cls, refusal: g.Refusal) -> "KeymintHTTPException":
        return cls(refusal.status, refusal.detail, refusal.code, refusal.headers or None)


async def keymint_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    """Answers a :class:`KeymintHTTPException` as ``{"detail", "code"}`` with its headers."""
    assert isinstance(exc, KeymintHTTPException)
    return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=exc.status_code, headers=exc.headers)


def install_error_handler(app: FastAPI) -> None:
    """Registers :func:`keymint_exception_handler` on ``app``."""
    app.add_exception_handler(KeymintHTTPException, keymint_exception_handler)


def require_api_key(
    client: Union[Keymint, AsyncKeymint],
    *,
    permissions: Requirement = None,
    cost: Requirement = None,
    ratelimits: Requirement = None,
    tags: Requirement = None,
    state_attribute: str = "keymint",
) -> Callable[..., Any]:
    """A dependency that verifies the request's API key and returns the :class:`VerifyResult`.

    The key is read from ``x-api-key`` or ``Authorization: Bearer`` (a bearer
    JWT is not an API key). ``permissions`` (a permission query), ``cost``
    (credits), ``ratelimits`` (``{"name": cost}``) and ``tags`` are each given
    once or as a function of the :class:`~fastapi.Request` (a coroutine
    function with :class:`~keymint.AsyncKeymint`). The result is also put on
    ``request.state.keymint``.

    With :class:`~keymint.AsyncKeymint` the dependency is a coroutine; with
    :class:`~keymint.Keymint` FastAPI runs it in its thread pool.
    """
    wanted = g.Requirements(permissions=permissions, cost=cost, ratelimits=ratelimits, tags=tags)

    if isinstance(client, AsyncKeymint):
        async_client = client

        async def verify_api_key(request: Request) -> VerifyResult:
            try:
                key = g.presented_key(request.headers.raw)
                if key is None:
                    raise g.api_key_required()
                resolved = await g.resolve_all(wanted, request)
                result = await g.verify_async(async_client, key, resolved)
            except g.Refusal as refusal:
                raise KeymintHTTPException.from_refusal(refusal) from None
            setattr(request.state, state_attribute, result)
            return result

        return verify_api_key

    if not isinstance(client, Keymint):
        raise TypeError("require_api_key needs a keymint.Keymint or keymint.AsyncKeymint")
    sync_client = client

    def verify_api_key_sync(request: Request) -> VerifyResult:
        try:
            key = g.presented_key(request.headers.raw)
            if key is None:
                raise g.api_key_required()
            resolved = g.resolve_all_sync(wanted, request)
            result = g.verify_sync(sync_client, key, resolved)
        except g.Refusal as refusal:
            raise KeymintHTTPException.from_refusal(refusal) from None
        setattr(request.state, state_attribute, result)
        return result

    return verify_api_key_sync
