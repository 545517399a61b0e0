"""What the FastAPI dependency and the ASGI middleware share: reading the
presented key from the headers, asking Keymint, and turning the verdict into
the answer Keymint's own Rust extractor gives (README, "Integrate a service")."""

from __future__ import annotations

import inspect
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import (
    Any,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _base as b
from ._async_client import AsyncKeymint
from ._client import Keymint
from ._types import RateLimitCosts
from .errors import APIConnectionError, KeymintError, ServerError
from .models import VerifyResult

logger = logging.getLogger("keymint")

REALM = 'Bearer realm="api-key"'
# What Keymint's extractor sends with a failure budget's 429 and with a 503.
FAILURE_RETRY_AFTER = "5"
UNAVAILABLE_RETRY_AFTER = "5"


class Refusal(Exception):
    """An answer to send instead of serving the call: ``{"detail", "code"}`` with headers."""

    def __init__(self, status: int, code: str, detail: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.headers: Dict[str, str] = dict(headers or {})

    def __repr__(self) -> str:
        return f"Refusal({self.status!r}, {self.code!r}, {self.detail!r}, {self.headers!r})"

    def body(self) -> bytes:
        return json.dumps({"detail": self.detail, "code": self.code}).encode("utf-8")

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"


def _rejected(code: str, detail: str) -> Refusal:
    return Refusal(401, code, detail, {"WWW-Authenticate": REALM})


def api_key_required() -> Refusal:
    return _rejected("api_key_required", "An API key is required: send it as x-api-key or Authorization: Bearer")


def ambiguous() -> Refusal:
    return _rejected(
        "ambiguous_api_key", "Send the API key once: in one x-api-key header, one Authorization header or the body"
    )


def invalid() -> Refusal:
    return _rejected("invalid_api_key", "The API key is not valid")


def _is_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


def _text(value: Union[bytes, str]) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1").strip()
    return value.strip()


def presented_key(headers: Iterable[Tuple[Union[bytes, str], Union[bytes, str]]]) -> Optional[str]:
    """The API key a request presents (``x-api-key`` or ``Authorization: Bearer``), or ``None``.

    Raises an ``ambiguous_api_key`` :class:`Refusal` for two different keys, or a repeated header, as
    Keymint does: which one counts would depend on who reads the request. An
    ``Authorization`` header of another scheme, or a bearer JWT, presents no key.
    """
    x_api_key: List[str] = []
    authorization: List[str] = []
    for raw_name, raw_value in headers:
        name = _text(raw_name).lower()
        if name == "x-api-key":
            x_api_key.append(_text(raw_value))
        elif name == "authorization":
            authorization.append(_text(raw_value))
    if len(x_api_key) > 1 or len(authorization) > 1:
        raise ambiguous()
    from_header = x_api_key[0] if x_api_key else None
    bearer: Optional[str] = None
    if authorization:
        scheme, sep, token = authorization[0].partition(" ")
        token = token.strip()
        if sep and scheme.lower() == "bearer" and not _is_jwt(token):
            bearer = token
    if from_header is not None and bearer is not None and from_header != bearer:
        raise ambiguous()
    return from_header if from_header is not None else bearer


def _seconds_until(at: datetime, now: Optional[datetime] = None) -> int:
    now = now or datetime.now(timezone.utc)
    return max(1, math.ceil((at - now).total_seconds()))


def rate_limit_retry_after(
    result: VerifyResult, ratelimits: Optional[RateLimitCosts], now: Optional[datetime] = None
) -> Optional[int]:
    """Seconds until the key's refusing rate limit resets, as Keymint's extractor computes them.

    A limit refused the call when it had less left than the call takes (the
    cost named in ``ratelimits``, else 1); the wait is until the latest of
    those windows ends.
    """
    states = result.ratelimits or []
    if not states:
        return None
    costs = {item["name"]: int(item.get("cost", 1)) for item in b.ratelimit_costs(ratelimits)}
    refused = [state.reset for state in states if state.remaining < costs.get(state.name, 1)]
    if not refused:
        refused = [state.reset for state in states if state.remaining == 0]
    if not refused:
        return None
    return _seconds_until(max(refused), now)


def judge(
    result: VerifyResult,
    *,
    permissions: Optional[str],
    ratelimits: Optional[RateLimitCosts],
) -> Optional[Refusal]:
    """``None`` to serve the call, else the answer Keymint's extractor gives for this verdict."""
    code = result.code
    if result.valid and code == "VALID":
        return None
    if code == "NOT_FOUND":
        return invalid()
    if code == "REVOKED":
        return _rejected("api_key_revoked", "The API key has been revoked")
    if code == "EXPIRED":
        return _rejected("api_key_expired", "The API key has expired")
    if code == "INSUFFICIENT_PERMISSIONS":
        detail = "The API key lacks the permissions this call requires"
        if permissions:
            detail += f": {permissions}"
        return Refusal(403, "insufficient_permissions", detail)
    if code == "RATE_LIMITED":
        if not result.recognised:
            # The caller's failure budget, not the key's limit.
            return Refusal(
                429, "rate_limited", "Too many failed attempts; retry later", {"Retry-After": FAILURE_RETRY_AFTER}
            )
        headers: Dict[str, str] = {}
        wait = rate_limit_retry_after(result, ratelimits)
        if wait is not None:
            headers["Retry-After"] = str(wait)
        return Refusal(429, "rate_limited", "The API key's rate limit is reached; retry later", headers)
    if code == "USAGE_EXCEEDED":
        # Keymint's verify answer does not say when the next refill is, so no
        # Retry-After can be given over HTTP.
        return Refusal(429, "usage_exceeded", "The API key has no credits left for this call")
    # A code newer than this client, or valid without VALID: refuse (fail closed).
    return invalid()


def refusal_for_error(exc: KeymintError) -> Refusal:
    """The answer when Keymint could not give a verdict."""
    if isinstance(exc, (APIConnectionError, ServerError)):
        logger.warning("Keymint could not verify an API key: %s", exc)
        retry_after = getattr(exc, "retry_after", None)
        wait = str(max(1, math.ceil(retry_after))) if retry_after else UNAVAILABLE_RETRY_AFTER
        return Refusal(
            503, "keymint_unavailable", "The API key could not be verified; retry later", {"Retry-After": wait}
        )
    # A 4xx from Keymint on verify means this route asks something malformed
    # (a permission query, an unknown rate limit, bad tags): a server bug.
    logger.error("Keymint refused this route's verification request (misconfigured route?): %s", exc)
    return Refusal(500, "internal_error", "Internal Server Error")


async def resolve(value: Any, arg: Any) -> Any:
    """A requirement's value for this request: as given, or computed from ``arg`` (awaited if need be)."""
    if callable(value):
        value = value(arg)
        if inspect.isawaitable(value):
            value = await value
    return value


def resolve_sync(value: Any, arg: Any) -> Any:
    if callable(value):
        value = value(arg)
        if inspect.isawaitable(value):
            close = getattr(value, "close", None)
            if close is not None:
                close()
            raise TypeError("async requirement callables need an AsyncKeymint client")
    return value


@dataclass
class Requirements:
    """What a protected route asks of the key, each static or a callable of the request."""

    permissions: Any = None
    cost: Any = None
    ratelimits: Any = None
    tags: Any = None


@dataclass
class Resolved:
    permissions: Optional[str]
    cost: Optional[int]
    ratelimits: Optional[RateLimitCosts]
    tags: Optional[Sequence[str]]


async def resolve_all(req: Requirements, arg: Any) -> Resolved:
    return Resolved(
        permissions=await resolve(req.permissions, arg),
        cost=await resolve(req.cost, arg),
        ratelimits=await resolve(req.ratelimits, arg),
        tags=await resolve(req.tags, arg),
    )


def resolve_all_sync(req: Requirements, arg: Any) -> Resolved:
    return Resolved(
        permissions=resolve_sync(req.permissions, arg),
        cost=resolve_sync(req.cost, arg),
        ratelimits=resolve_sync(req.ratelimits, arg),
        tags=resolve_sync(req.tags, arg),
    )


def verify_sync(client: Keymint, key: str, wanted: Resolved) -> VerifyResult:
    """Verdict or :class:`Refusal` (raised), with a sync client."""
    if not key:
        raise invalid()
    try:
        result = client.verify(
            key, permissions=wanted.permissions, cost=wanted.cost, ratelimits=wanted.ratelimits, tags=wanted.tags
        )
    except KeymintError as exc:
        raise refusal_for_error(exc) from None
    refusal = judge(result, permissions=wanted.permissions, ratelimits=wanted.ratelimits)
    if refusal is not None:
        raise refusal
    return result


async def verify_async(client: Union[Keymint, AsyncKeymint], key: str, wanted: Resolved) -> VerifyResult:
    """Verdict or :class:`Refusal` (raised); a sync client is run in a worker thread."""
    if not key:
        raise invalid()
    try:
        if isinstance(client, AsyncKeymint):
            result = await client.verify(
                key,
                permissions=wanted.permissions,
                cost=wanted.cost,
                ratelimits=wanted.ratelimits,
                tags=wanted.tags,
            )
        else:
            import anyio.to_thread

            def call() -> VerifyResult:
                return client.verify(
                    key,
                    permissions=wanted.permissions,
                    cost=wanted.cost,
                    ratelimits=wanted.ratelimits,
                    tags=wanted.tags,
                )

            result = await anyio.to_thread.run_sync(call)
    except KeymintError as exc:
        raise refusal_for_error(exc) from None
    refusal = judge(result, permissions=wanted.permissions, ratelimits=wanted.ratelimits)
    if refusal is not None:
        raise refusal
    return result


def header_list(refusal: Refusal) -> List[Tuple[bytes, bytes]]:
    body = refusal.body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in refusal.headers.items()]
    return headers
