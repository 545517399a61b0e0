"""What the sync and async clients share: configuration, request building,
retry decisions, error mapping, paging links and every route's request shape."""

from __future__ import annotations

import json as _json
import os
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)
from urllib.parse import quote

import httpx

from . import models as m
from ._types import NOT_GIVEN, NotGiven, RateLimitCosts
from ._version import __version__
from .cache import VerifyCache
from .errors import (
    APIConnectionError,
    APITimeoutError,
    KeymintError,
    UnexpectedResponseError,
    error_from_response,
    parse_retry_after,
)

M = TypeVar("M", bound=m.Model)

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2
API = "/api/v2"

# Methods whose repetition HTTP defines as harmless (RFC 9110 §9.2.2). Keymint
# agrees: revoking again keeps the first revocation, a PATCH is not among them.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

Token = Union[str, Callable[[], str], None]
Id = Union[str, uuid.UUID]
Timestamp = Union[datetime, str]


class _NoBody:
    def __repr__(self) -> str:
        return "NO_BODY"


NO_BODY: Any = _NoBody()


@dataclass
class Call:
    """One request to make: everything but the connection."""

    method: str
    url: str
    params: Optional[List[Tuple[str, str]]] = None
    json: Any = NO_BODY
    headers: Dict[str, str] = field(default_factory=dict)
    auth: bool = True

    @property
    def idempotent(self) -> bool:
        """Whether sending it twice is as good as once (a method so defined, or an idempotency key)."""
        return self.method in IDEMPOTENT_METHODS or any(name.lower() == "idempotency-key" for name in self.headers)


def path_id(value: Id, what: str = "id") -> str:
    """A path segment from an id, quoted so that no id can change the path."""
    text = str(value)
    if not text:
        raise ValueError(f"{what} must not be empty")
    return quote(text, safe="")


def _drop_not_given(body: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: _jsonable(v) for k, v in body.items() if not isinstance(v, NotGiven)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, m.Model):
        return value.to_dict()
    if isinstance(value, datetime):
        return m.format_datetime(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _seconds(value: Union[int, float, timedelta]) -> int:
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return int(value)


def _repeat(name: str, values: Union[None, str, uuid.UUID, Sequence[Union[str, uuid.UUID]]]) -> List[Tuple[str, str]]:
    if values is None:
        return []
    if isinstance(values, (str, uuid.UUID)):
        return [(name, str(values))]
    return [(name, str(v)) for v in values]


def ratelimit_costs(ratelimits: Optional[RateLimitCosts]) -> List[Dict[str, Any]]:
    """The verify body's ``ratelimits`` from a mapping (name → cost), names, or dicts."""
    if not ratelimits:
        return []
    if isinstance(ratelimits, Mapping):
        return [{"name": str(name), "cost": int(cost)} for name, cost in ratelimits.items()]
    out: List[Dict[str, Any]] = []
    for item in ratelimits:
        if isinstance(item, str):
            out.append({"name": item})
        elif isinstance(item, Mapping):
            out.append(dict(item))
        else:
            raise TypeError("ratelimits items are names or {'name': …, 'cost': …} mappings")
    return out


_LINK_RE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


def next_link(response: httpx.Response) -> Optional[str]:
    """The ``rel="next"`` target of the ``Link`` header, resolved against the request URL."""
    for header in response.headers.get_list("link"):
        for match in _LINK_RE.finditer(header):
            target, params = match.group(1), match.group(2)
            rels: List[str] = []
            for param in params.split(";"):
                name, _, value = param.strip().partition("=")
                if name.strip().lower() == "rel":
                    rels.extend(value.strip().strip('"').lower().split())
            if "next" in rels:
                return str(response.request.url.join(target))
    return None


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


class BaseClient:
    """Configuration and the parts of a call that do not wait on I/O."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        *,
        token: Token = None,
        timeout: Union[float, httpx.Timeout, None] = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_factor: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        headers: Optional[Mapping[str, str]] = None,
        verify_cache: Optional[VerifyCache] = None,
    ) -> None:
        if base_url is None:
            base_url = os.environ.get("KEYMINT_URL") or DEFAULT_BASE_URL
        if token is None:
            token = os.environ.get("KEYMINT_TOKEN") or None
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self._token = token
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.verify_cache = verify_cache
        self._default_headers: Dict[str, str] = {
            "User-Agent": f"keymint-python/{__version__}",
            "Accept": "application/json",
        }
        if headers:
            self._default_headers.update(headers)

    def __repr__(self) -> str:
        # Never the token.
        return f"{type(self).__name__}(base_url={str(self.base_url)!r})"

    # ------------------------------------------------------------- requests

    def _token_value(self) -> Optional[str]:
        token = self._token
        if callable(token):
            token = token()
        return token or None

    def _url(self, call: Call) -> httpx.URL:
        if call.url.startswith(("http://", "https://")):
            url = httpx.URL(call.url)
            if not _same_origin(url, self.base_url):
                # A Link header pointing elsewhere must not receive the token.
                raise UnexpectedResponseError("Keymint's next-page link points to another origin; not followed")
            return url
        return self.base_url.join(call.url.lstrip("/"))

    def _build(self, http: Union[httpx.Client, httpx.AsyncClient], call: Call) -> httpx.Request:
        headers = dict(self._default_headers)
        headers.update(call.headers)
        if call.auth:
            token = self._token_value()
            if token:
                headers["Authorization"] = f"Bearer {token}"
        content: Optional[bytes] = None
        if call.json is not NO_BODY:
            content = _json.dumps(call.json, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        return http.build_request(
            call.method,
            self._url(call),
            params=httpx.QueryParams(tuple(call.params)) if call.params else None,
            content=content,
            headers=headers,
            timeout=self.timeout,
        )

    # ------------------------------------------------------------- retries

    def _backoff(self, attempt: int) -> float:
        delay: float = min(self.max_backoff, self.backoff_factor * float(2**attempt))
        return delay * (0.5 + random.random() / 2)

    def _retry_after_exception(self, call: Call, attempt: int, exc: httpx.TransportError) -> Optional[float]:
        """Seconds to wait before sending again after ``exc``, or ``None`` to give up."""
        if attempt >= self.max_retries:
            return None
        never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        if never_sent or call.idempotent:
            return self._backoff(attempt)
        return None

    def _retry_after_response(self, call: Call, attempt: int, response: httpx.Response) -> Optional[float]:
        """Seconds to wait before sending again after ``response``, or ``None`` to give up."""
        if attempt >= self.max_retries or response.status_code not in RETRY_STATUSES:
            return None
        if not call.idempotent:
            # Only an answer that says nothing was read is safe to repeat.
            if not (response.status_code == 503 and _error_code(response) == "server_busy"):
                return None
        waited = parse_retry_after(response.headers.get("retry-after"))
        if waited is None:
            return self._backoff(attempt)
        if waited > self.max_retry_after:
            return None
        return waited

    # ------------------------------------------------------------- answers

    @staticmethod
    def _connection_error(exc: httpx.TransportError) -> KeymintError:
        # httpx's message names the host at most, never headers or bodies.
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"Keymint did not answer in time ({type(exc).__name__})")
        return APIConnectionError(f"Keymint could not be reached ({type(exc).__name__}: {exc})")

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        raise error_from_response(response.status_code, body, response.headers, response.headers.get("x-request-id"))

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as err:
            raise UnexpectedResponseError(
                f"Keymint answered HTTP {response.status_code} without JSON",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from err

    @classmethod
    def _model(cls, model: Type[M], response: httpx.Response) -> M:
        data = cls._json(response)
        try:
            return model.from_dict(data)
        except UnexpectedResponseError as err:
            err.status = response.status_code
            err.request_id = response.headers.get("x-request-id")
            raise

    @classmethod
    def _models(cls, model: Type[M], response: httpx.Response) -> List[M]:
        data = cls._json(response)
        if not isinstance(data, list):
            raise UnexpectedResponseError(
                "Keymint's answer is not a list",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            )
        return [model._from_json(item, f"{model.__name__}[{i}]") for i, item in enumerate(data)]

    def _evict(self, key_id: Id) -> None:
        if self.verify_cache is not None:
            self.verify_cache.evict_key_id(str(key_id))


def _error_code(response: httpx.Response) -> Optional[str]:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


# ===================================================================== routes
# Each returns the Call for one route; the clients send it and parse the answer.


def create_key_call(
    name: str,
    *,
    description: Any = NOT_GIVEN,
    environment: Any = NOT_GIVEN,
    expires_at: Any = NOT_GIVEN,
    permissions: Any = NOT_GIVEN,
    owner_id: Any = NOT_GIVEN,
    meta: Any = NOT_GIVEN,
    ratelimits: Any = NOT_GIVEN,
    credits: Any = NOT_GIVEN,
    extra: Mapping[str, Any],
) -> Call:
    body = _drop_not_given(
        dict(
            name=name,
            description=description,
            environment=environment,
            expires_at=expires_at,
            permissions=permissions,
            owner_id=owner_id,
            meta=meta,
            ratelimits=ratelimits,
            credits=credits,
            **extra,
        )
    )
    return Call("POST", f"{API}/api-keys", json=body)


def list_keys_call(
    *,
    environment: Optional[str] = None,
    is_revoked: Optional[bool] = None,
    owner_id: Optional[str] = None,
    name: Optional[str] = None,
    limit: Optional[int] = None,
) -> Call:
    params: List[Tuple[str, str]] = []
    if limit is not None:
        params.append(("limit", str(int(limit))))
    if environment is not None:
        params.append(("environment", environment))
    if is_revoked is not None:
        params.append(("is_revoked", "true" if is_revoked else "false"))
    if owner_id is not None:
        params.append(("owner_id", owner_id))
    if name is not None:
        params.append(("name", name))
    return Call("GET", f"{API}/api-keys", params=params)


def key_call(method: str, key_id: Id, suffix: str = "", **kwargs: Any) -> Call:
    return Call(method, f"{API}/api-keys/{path_id(key_id, 'key_id')}{suffix}", **kwargs)


def update_key_call(key_id: Id, fields: Mapping[str, Any]) -> Call:
    return key_call("PATCH", key_id, json=_drop_not_given(fields))


def rotate_key_call(key_id: Id, grace_period_seconds: Union[None, int, float, timedelta]) -> Call:
    if grace_period_seconds is None:
        return key_call("POST", key_id, "/rotate")
    return key_call("POST", key_id, "/rotate", json={"grace_period_seconds": _seconds(grace_period_seconds)})


def events_call(key_id: Id, limit: Optional[int]) -> Call:
    params = [("limit", str(int(limit)))] if limit is not None else []
    return key_call("GET", key_id, "/events", params=params)


def _range_params(
    from_: Optional[Timestamp], to: Optional[Timestamp], granularity: Optional[str]
) -> List[Tuple[str, str]]:
    params: List[Tuple[str, str]] = []
    if from_ is not None:
        params.append(("from", m.format_datetime(from_)))
    if to is not None:
        params.append(("to", m.format_datetime(to)))
    if granularity is not None:
        params.append(("granularity", granularity))
    return params


def usage_call(
    key_id: Id,
    *,
    from_: Optional[Timestamp],
    to: Optional[Timestamp],
    granularity: Optional[str],
    tag: Union[None, str, Sequence[str]],
) -> Call:
    params = _range_params(from_, to, granularity) + _repeat("tag", tag)
    return key_call("GET", key_id, "/usage", params=params)


def credits_call(key_id: Id, op: str, value: int, idempotency_key: Optional[str]) -> Call:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("value must be an int")
    key = idempotency_key if idempotency_key is not None else f"keymint-python-{uuid.uuid4()}"
    return key_call("POST", key_id, "/credits", json={"op": op, "value": value}, headers={"Idempotency-Key": key})


def import_call(keys: Sequence[Mapping[str, Any]]) -> Call:
    return Call("POST", f"{API}/api-keys/import", json={"keys": [_jsonable(dict(k)) for k in keys]})


def verify_call(
    key: str,
    *,
    permissions: Optional[str],
    cost: Optional[int],
    ratelimits: Optional[RateLimitCosts],
    tags: Optional[Sequence[str]],
) -> Call:
    if not isinstance(key, str):
        raise TypeError("key must be a str")
    body: Dict[str, Any] = {"key": key}
    if permissions is not None:
        body["permissions"] = permissions
    if cost is not None:
        body["credits"] = {"cost": int(cost)}
    limits = ratelimit_costs(ratelimits)
    if limits:
        body["ratelimits"] = limits
    if tags:
        body["tags"] = [str(t) for t in tags]
    return Call("POST", f"{API}/api-keys/verify", json=body, auth=False)


def revoke_leaked_call(key: str, url: Optional[str]) -> Call:
    body: Dict[str, Any] = {"key": key}
    if url is not None:
        body["url"] = url
    return Call("POST", f"{API}/api-keys/revoke-leaked", json=body, auth=False)


def analytics_call(
    *,
    from_: Optional[Timestamp],
    to: Optional[Timestamp],
    granularity: Optional[str],
    key_id: Union[None, Id, Sequence[Id]],
    owner_id: Union[None, str, Sequence[str]],
    tag: Union[None, str, Sequence[str]],
    outcome: Union[None, str, Sequence[str]],
    group_by: Union[None, str, Sequence[str]],
    order_by: Optional[str] = None,
    limit: Optional[int] = None,
) -> Call:
    params = _range_params(from_, to, granularity)
    params += _repeat("key_id", key_id)
    params += _repeat("owner_id", owner_id)
    params += _repeat("tag", tag)
    params += _repeat("outcome", outcome)
    params += _repeat("group_by", group_by)
    if order_by is not None:
        params.append(("order_by", order_by))
    if limit is not None:
        params.append(("limit", str(limit)))
    return Call("GET", f"{API}/analytics/verifications", params=params)


def webhook_call(method: str, webhook_id: Id, suffix: str = "", **kwargs: Any) -> Call:
    return Call(method, f"{API}/webhooks/{path_id(webhook_id, 'webhook_id')}{suffix}", **kwargs)


def create_webhook_call(url: str, event_types: Any, enabled: Any, extra: Mapping[str, Any]) -> Call:
    body = _drop_not_given(dict(url=url, event_types=event_types, enabled=enabled, **extra))
    return Call("POST", f"{API}/webhooks", json=body)


def update_webhook_call(webhook_id: Id, fields: Mapping[str, Any]) -> Call:
    return webhook_call("PATCH", webhook_id, json=_drop_not_given(fields))


def deliveries_call(webhook_id: Id, limit: Optional[int]) -> Call:
    params = [("limit", str(int(limit)))] if limit is not None else []
    return webhook_call("GET", webhook_id, "/deliveries", params=params)


def retry_delivery_call(webhook_id: Id, delivery_id: Id) -> Call:
    return webhook_call("POST", webhook_id, f"/deliveries/{path_id(delivery_id, 'delivery_id')}/retry")


def check_update_fields(fields: Mapping[str, Any]) -> None:
    if all(isinstance(v, NotGiven) for v in fields.values()):
        raise ValueError("update needs at least one field (None clears a field; leave out what stays)")
