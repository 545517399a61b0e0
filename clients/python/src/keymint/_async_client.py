"""The asynchronous client, on :class:`httpx.AsyncClient`: the same API, awaited."""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Type,
    TypeVar,
    Union,
)

import httpx

from . import _base as b
from . import models as m
from ._types import NOT_GIVEN, ImportItemParam, NotGiven, RateLimitCosts
from ._client import Page
from .cache import VerifyCache

__all__ = ["AsyncKeymint", "AsyncPaginator"]


async def _default_sleep(seconds: float) -> None:
    try:
        import anyio
    except ImportError:  # pragma: no cover - httpx brings anyio
        import asyncio

        await asyncio.sleep(seconds)
    else:
        await anyio.sleep(seconds)


M = TypeVar("M", bound=m.Model)


class AsyncPaginator(AsyncIterator[M]):
    """Every item of a paged listing, fetching the next page (``Link: rel="next"``) only when needed.

    ``async for key in km.keys.list(): …``, or page by page with :meth:`pages`.
    It is an iterator: it runs once.
    """

    def __init__(self, client: "AsyncKeymint", call: b.Call, model: Type[M]) -> None:
        self._client = client
        self._call: Optional[b.Call] = call
        self._model = model
        self._buffer: List[M] = []
        self._index = 0

    def __aiter__(self) -> "AsyncPaginator[M]":
        return self

    async def _fetch(self) -> Optional[Page[M]]:
        call = self._call
        if call is None:
            return None
        response = await self._client._send(call)
        items = self._client._models(self._model, response)
        link = b.next_link(response)
        self._call = b.Call("GET", link, auth=call.auth) if link else None
        return Page(items, link, response.headers.get("x-request-id"))

    async def __anext__(self) -> M:
        while self._index >= len(self._buffer):
            page = await self._fetch()
            if page is None:
                raise StopAsyncIteration
            self._buffer, self._index = page.items, 0
        item = self._buffer[self._index]
        self._index += 1
        return item

    async def pages(self) -> AsyncIterator[Page[M]]:
        """The remaining pages, one request each."""
        while True:
            page = await self._fetch()
            if page is None:
                return
            yield page

    async def to_list(self) -> List[M]:
        """Every remaining item, in one list."""
        return [item async for item in self]


class _Resource:
    def __init__(self, client: "AsyncKeymint") -> None:
        self._client = client


class Keys(_Resource):
    """``/api/v2/api-keys``: create, list, read, update, rotate, revoke, delete, audit, usage, import."""

    async def create(
        self,
        name: str,
        *,
        description: Union[str, None, NotGiven] = NOT_GIVEN,
        environment: Union[str, None, NotGiven] = NOT_GIVEN,
        expires_at: Union[b.Timestamp, None, NotGiven] = NOT_GIVEN,
        permissions: Union[Sequence[str], None, NotGiven] = NOT_GIVEN,
        owner_id: Union[str, None, NotGiven] = NOT_GIVEN,
        meta: Union[Mapping[str, Any], None, NotGiven] = NOT_GIVEN,
        ratelimits: Union[Sequence[Mapping[str, Any]], None, NotGiven] = NOT_GIVEN,
        credits: Union[Mapping[str, Any], None, NotGiven] = NOT_GIVEN,
        **fields: Any,
    ) -> m.CreatedApiKey:
        """Creates a key; the answer's ``private_key`` is shown this once.

        ``fields`` are sent as they are (for fields newer than this client).
        """
        call = b.create_key_call(
            name,
            description=description,
            environment=environment,
            expires_at=expires_at,
            permissions=permissions,
            owner_id=owner_id,
            meta=meta,
            ratelimits=ratelimits,
            credits=credits,
            extra=fields,
        )
        return self._client._model(m.CreatedApiKey, await self._client._send(call))

    def list(
        self,
        *,
        environment: Optional[str] = None,
        is_revoked: Optional[bool] = None,
        owner_id: Optional[str] = None,
        name: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> AsyncPaginator[m.ApiKey]:
        """Every key of the organisation, newest first, following every page (``limit`` per page)."""
        call = b.list_keys_call(
            environment=environment, is_revoked=is_revoked, owner_id=owner_id, name=name, limit=limit
        )
        return AsyncPaginator(self._client, call, m.ApiKey)

    async def get(self, key_id: b.Id) -> m.ApiKey:
        """One key (never its private key)."""
        return self._client._model(m.ApiKey, await self._client._send(b.key_call("GET", key_id)))

    async def update(
        self,
        key_id: b.Id,
        *,
        name: Union[str, NotGiven] = NOT_GIVEN,
        description: Union[str, None, NotGiven] = NOT_GIVEN,
        permissions: Union[Sequence[str], None, NotGiven] = NOT_GIVEN,
        owner_id: Union[str, None, NotGiven] = NOT_GIVEN,
        meta: Union[Mapping[str, Any], None, NotGiven] = NOT_GIVEN,
        ratelimits: Union[Sequence[Mapping[str, Any]], None, NotGiven] = NOT_GIVEN,
        credits: Union[Mapping[str, Any], None, NotGiven] = NOT_GIVEN,
        **fields: Any,
    ) -> m.ApiKey:
        """Changes the given fields; ``None`` clears one (``description=None``), a field not given stays."""
        body: Dict[str, Any] = dict(
            name=name,
            description=description,
            permissions=permissions,
            owner_id=owner_id,
            meta=meta,
            ratelimits=ratelimits,
            credits=credits,
            **fields,
        )
        b.check_update_fields(body)
        key = self._client._model(m.ApiKey, await self._client._send(b.update_key_call(key_id, body)))
        self._client._evict(key_id)
        return key

    async def revoke(self, key_id: b.Id) -> m.RevokedApiKey:
        """Revokes the key for good (repeating it is harmless)."""
        revoked = self._client._model(m.RevokedApiKey, await self._client._send(b.key_call("PUT", key_id, "/revoke")))
        self._client._evict(key_id)
        return revoked

    async def rotate(
        self, key_id: b.Id, grace_period_seconds: Union[int, float, timedelta, None] = None
    ) -> m.CreatedApiKey:
        """A new private key (shown once); the old one stays valid for the grace period only."""
        rotated = self._client._model(
            m.CreatedApiKey, await self._client._send(b.rotate_key_call(key_id, grace_period_seconds))
        )
        self._client._evict(key_id)
        return rotated

    async def delete(self, key_id: b.Id) -> None:
        """Deletes the key: gone from every read, never verifies again (its audit trail is kept)."""
        await self._client._send(b.key_call("DELETE", key_id))
        self._client._evict(key_id)

    def events(self, key_id: b.Id, *, limit: Optional[int] = None) -> AsyncPaginator[m.AuditEvent]:
        """The key's audit trail, newest first, following every page."""
        return AsyncPaginator(self._client, b.events_call(key_id, limit), m.AuditEvent)

    async def usage(
        self,
        key_id: b.Id,
        *,
        from_: Optional[b.Timestamp] = None,
        to: Optional[b.Timestamp] = None,
        granularity: Optional[str] = None,
        tag: Union[None, str, Sequence[str]] = None,
    ) -> m.VerificationAnalytics:
        """The key's verifications over time, grouped by outcome."""
        call = b.usage_call(key_id, from_=from_, to=to, granularity=granularity, tag=tag)
        return self._client._model(m.VerificationAnalytics, await self._client._send(call))

    async def import_(self, keys: Sequence[Union[ImportItemParam, Mapping[str, Any]]]) -> m.ImportResult:
        """Brings in 1 to 1 000 keys from another system, each with its ``key`` or SHA-256 ``hash``."""
        return self._client._model(m.ImportResult, await self._client._send(b.import_call(keys)))

    import_keys = import_

    async def verify(
        self,
        key: str,
        *,
        permissions: Optional[str] = None,
        cost: Optional[int] = None,
        ratelimits: Optional[RateLimitCosts] = None,
        tags: Optional[Sequence[str]] = None,
    ) -> m.VerifyResult:
        """Same as :meth:`Keymint.verify`."""
        return await self._client.verify(key, permissions=permissions, cost=cost, ratelimits=ratelimits, tags=tags)

    async def revoke_leaked(self, key: str, *, url: Optional[str] = None) -> None:
        """Reports a leaked private key (no token needed: the key is its own proof)."""
        await self._client._send(b.revoke_leaked_call(key, url))


class Credits(_Resource):
    """A key's credits: read, set, increment, decrement (``Idempotency-Key`` honoured)."""

    async def get(self, key_id: b.Id) -> Optional[m.Credits]:
        """The key's credits now; ``None`` means unlimited use."""
        return (await self._client.keys.get(key_id)).credits

    async def _change(self, key_id: b.Id, op: str, value: int, idempotency_key: Optional[str]) -> m.CreditsChange:
        response = await self._client._send(b.credits_call(key_id, op, value, idempotency_key))
        change = self._client._model(m.CreditsChange, response)
        replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
        object.__setattr__(change, "replayed", replayed)
        self._client._evict(key_id)
        return change

    async def set(self, key_id: b.Id, value: int, *, idempotency_key: Optional[str] = None) -> m.CreditsChange:
        """Sets the remaining credits to ``value``.

        Every change carries an ``Idempotency-Key`` (a random one when none is
        given), so a retry after a lost answer is applied once. Pass your own
        (an invoice number) to make retries across processes safe too.
        """
        return await self._change(key_id, "set", value, idempotency_key)

    async def increment(self, key_id: b.Id, value: int, *, idempotency_key: Optional[str] = None) -> m.CreditsChange:
        """Adds ``value`` credits (a top-up). See :meth:`set` about idempotency."""
        return await self._change(key_id, "increment", value, idempotency_key)

    async def decrement(self, key_id: b.Id, value: int, *, idempotency_key: Optional[str] = None) -> m.CreditsChange:
        """Takes ``value`` credits (409 ``insufficient_credits`` below 0). See :meth:`set`."""
        return await self._change(key_id, "decrement", value, idempotency_key)


class Webhooks(_Resource):
    """``/api/v2/webhooks``: signed notifications of key events."""

    async def list(self) -> List[m.Webhook]:
        """Every webhook of the organisation, oldest first."""
        return self._client._models(m.Webhook, await self._client._send(b.Call("GET", f"{b.API}/webhooks")))

    async def create(
        self,
        url: str,
        *,
        event_types: Union[Sequence[str], None, NotGiven] = NOT_GIVEN,
        enabled: Union[bool, None, NotGiven] = NOT_GIVEN,
        **fields: Any,
    ) -> m.WebhookWithSecret:
        """Registers an endpoint; the answer's ``secret`` is shown this once."""
        call = b.create_webhook_call(url, event_types, enabled, fields)
        return self._client._model(m.WebhookWithSecret, await self._client._send(call))

    async def get(self, webhook_id: b.Id) -> m.Webhook:
        return self._client._model(m.Webhook, await self._client._send(b.webhook_call("GET", webhook_id)))

    async def update(
        self,
        webhook_id: b.Id,
        *,
        url: Union[str, NotGiven] = NOT_GIVEN,
        event_types: Union[Sequence[str], None, NotGiven] = NOT_GIVEN,
        enabled: Union[bool, None, NotGiven] = NOT_GIVEN,
        **fields: Any,
    ) -> m.Webhook:
        """Changes the given fields; a field not given stays.

        Keymint reads ``event_types=None`` (JSON ``null``) in an update as
        "unchanged"; to receive every event type again, list them all.
        """
        body: Dict[str, Any] = dict(url=url, event_types=event_types, enabled=enabled, **fields)
        b.check_update_fields(body)
        return self._client._model(m.Webhook, await self._client._send(b.update_webhook_call(webhook_id, body)))

    async def delete(self, webhook_id: b.Id) -> None:
        """Deletes the webhook with its deliveries."""
        await self._client._send(b.webhook_call("DELETE", webhook_id))

    async def rotate_secret(self, webhook_id: b.Id) -> m.WebhookWithSecret:
        """A new signing secret, shown once; the old one keeps signing alongside it for a while."""
        call = b.webhook_call("POST", webhook_id, "/rotate-secret")
        return self._client._model(m.WebhookWithSecret, await self._client._send(call))

    def deliveries(self, webhook_id: b.Id, *, limit: Optional[int] = None) -> AsyncPaginator[m.Delivery]:
        """The webhook's deliveries, newest first, each with every attempt, following every page."""
        return AsyncPaginator(self._client, b.deliveries_call(webhook_id, limit), m.Delivery)

    async def retry(self, webhook_id: b.Id, delivery_id: b.Id) -> m.Delivery:
        """Sends a delivery again now (same ``webhook-id``)."""
        call = b.retry_delivery_call(webhook_id, delivery_id)
        return self._client._model(m.Delivery, await self._client._send(call))


class Analytics(_Resource):
    """``/api/v2/analytics``: the organisation's verifications over time."""

    async def verifications(
        self,
        *,
        from_: Optional[b.Timestamp] = None,
        to: Optional[b.Timestamp] = None,
        granularity: Optional[str] = None,
        key_id: Union[None, b.Id, Sequence[b.Id]] = None,
        owner_id: Union[None, str, Sequence[str]] = None,
        tag: Union[None, str, Sequence[str]] = None,
        outcome: Union[None, str, Sequence[str]] = None,
        group_by: Union[None, str, Sequence[str]] = None,
        order_by: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> m.VerificationAnalytics:
        """Verification counts per bucket (``minute``, ``hour``, ``day``, or ``total`` for one
        row per group over the whole range), filtered and grouped; ``order_by="count"`` with
        ``limit`` gives the largest rows (``granularity="total", group_by="key_id",
        order_by="count", limit=10``: the ten busiest keys).

        Every filter takes one value or several (``outcome=["REVOKED", "EXPIRED"]``).
        """
        call = b.analytics_call(
            from_=from_,
            to=to,
            granularity=granularity,
            key_id=key_id,
            owner_id=owner_id,
            tag=tag,
            outcome=outcome,
            group_by=group_by,
            order_by=order_by,
            limit=limit,
        )
        return self._client._model(m.VerificationAnalytics, await self._client._send(call))


class AsyncKeymint(b.BaseClient):
    """The Keymint API, asynchronously (every call is awaited).

    ``base_url`` defaults to ``$KEYMINT_URL`` (else ``http://127.0.0.1:8080``),
    ``token`` to ``$KEYMINT_TOKEN``; ``token`` may be a callable returning the
    current token (it is called for every request). Verification needs no
    token. Close it (or use it as a context manager) to release connections.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        *,
        token: b.Token = None,
        timeout: Union[float, httpx.Timeout, None] = b.DEFAULT_TIMEOUT,
        max_retries: int = b.DEFAULT_MAX_RETRIES,
        backoff_factor: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        headers: Optional[Mapping[str, str]] = None,
        verify_cache: Optional[VerifyCache] = None,
        http_client: Optional[httpx.AsyncClient] = None,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        sleep: Optional[Callable[[float], Awaitable[None]]] = None,
    ) -> None:
        super().__init__(
            base_url,
            token=token,
            timeout=timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
            headers=headers,
            verify_cache=verify_cache,
        )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(transport=transport)
        self._sleep = sleep if sleep is not None else _default_sleep
        self.keys = Keys(self)
        self.credits = Credits(self)
        self.webhooks = Webhooks(self)
        self.analytics = Analytics(self)

    # ------------------------------------------------------------- lifecycle

    async def close(self) -> None:
        """Closes the connections (not those of an ``http_client`` you passed in)."""
        if self._owns_http:
            await self._http.aclose()

    aclose = close

    async def __aenter__(self) -> "AsyncKeymint":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    # ------------------------------------------------------------- transport

    async def _send(self, call: b.Call) -> httpx.Response:
        attempt = 0
        while True:
            request = self._build(self._http, call)
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                delay = self._retry_after_exception(call, attempt, exc)
                if delay is None:
                    raise self._connection_error(exc) from exc
            else:
                if response.is_success:
                    return response
                delay = self._retry_after_response(call, attempt, response)
                if delay is None:
                    return self._check(response)
                await response.aclose()
            await self._sleep(delay)
            attempt += 1

    # ------------------------------------------------------------- top level

    async def verify(
        self,
        key: str,
        *,
        permissions: Optional[str] = None,
        cost: Optional[int] = None,
        ratelimits: Optional[RateLimitCosts] = None,
        tags: Optional[Sequence[str]] = None,
    ) -> m.VerifyResult:
        """Asks Keymint whether ``key`` is good (no token needed: the key is the credential).

        ``permissions`` is a permission query (``"billing.read AND (billing.write OR admin)"``),
        ``cost`` the credits the call costs (default 1 when the key has credits),
        ``ratelimits`` what it takes from the key's limits (``{"exports": 1}``) and
        ``tags`` what to count it under in usage analytics. The answer is a
        :class:`~keymint.models.VerifyResult`: serve the call only if ``.valid``.
        """
        cache = self.verify_cache
        if cache is not None:
            hit = cache.get(key, permissions)
            if hit is not None:
                return hit
        call = b.verify_call(key, permissions=permissions, cost=cost, ratelimits=ratelimits, tags=tags)
        result = self._model(m.VerifyResult, await self._send(call))
        if cache is not None:
            cache.put(key, permissions, result, named_ratelimits=bool(ratelimits))
        return result

    async def health(self, *, ready: bool = False) -> Dict[str, Any]:
        """``GET /healthz`` (``ready=True``: ``/readyz``, which also checks the database)."""
        call = b.Call("GET", "/readyz" if ready else "/healthz", auth=False)
        data = self._json(await self._send(call))
        return dict(data) if isinstance(data, dict) else {"status": data}

    async def secret_patterns(self) -> m.SecretPatterns:
        """The regular expressions matching this deployment's keys, for secret scanners."""
        call = b.Call("GET", "/.well-known/keymint/secret-patterns", auth=False)
        return self._model(m.SecretPatterns, await self._send(call))
