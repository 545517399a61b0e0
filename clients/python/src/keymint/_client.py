"""The synchronous client, on :class:`httpx.Client`."""

from __future__ import annotations

import time
from datetime import timedelta
from types import TracebackType
from typing import Any, Callable, Dict, Generic, Iterator, List, Mapping, Optional, Sequence, Type, TypeVar, Union

import httpx

from . import _base as b
from . import models as m
from ._types import NOT_GIVEN, ImportItemParam, NotGiven, RateLimitCosts
from .cache import VerifyCache

__all__ = ["Keymint", "Paginator", "Page"]

M = TypeVar("M", bound=m.Model)


class Page(Generic[M]):
    """One page of a listing: its ``items``, the ``next_url`` (``None`` on the last page) and ``request_id``."""

    def __init__(self, items: List[M], next_url: Optional[str], request_id: Optional[str]) -> None:
        self.items = items
        self.next_url = next_url
        self.request_id = request_id

    def __iter__(self) -> Iterator[M]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"Page(items={len(self.items)}, has_next={self.next_url is not None})"


class Paginator(Iterator[M]):
    """Every item of a paged listing, fetching the next page (``Link: rel="next"``) only when needed.

    Iterate it (``for key in km.keys.list(): …``), or walk it page by page with
    :meth:`pages`. It is an iterator: it runs once.
    """

    def __init__(self, client: "Keymint", call: b.Call, model: Type[M]) -> None:
        self._client = client
        self._call: Optional[b.Call] = call
        self._model = model
        self._buffer: List[M] = []
        self._index = 0

    def __iter__(self) -> "Paginator[M]":
        return self

    def _fetch(self) -> Optional[Page[M]]:
        call = self._call
        if call is None:
            return None
        response = self._client._send(call)
        items = self._client._models(self._model, response)
        link = b.next_link(response)
        self._call = b.Call("GET", link, auth=call.auth) if link else None
        return Page(items, link, response.headers.get("x-request-id"))

    def __next__(self) -> M:
        while self._index >= len(self._buffer):
            page = self._fetch()
            if page is None:
                raise StopIteration
            self._buffer, self._index = page.items, 0
        item = self._buffer[self._index]
        self._index += 1
        return item

    def pages(self) -> Iterator[Page[M]]:
        """The remaining pages, one request each."""
        while True:
            page = self._fetch()
            if page is None:
                return
            yield page

    def to_list(self) -> List[M]:
        """Every remaining item, in one list."""
        return list(self)


class _Resource:
    def __init__(self, client: "Keymint") -> None:
        self._client = client


class Keys(_Resource):
    """``/api/v2/api-keys``: create, list, read, update, rotate, revoke, delete, audit, usage, import."""

    def create(
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
        return self._client._model(m.CreatedApiKey, self._client._send(call))

    def list(
        self,
        *,
        environment: Optional[str] = None,
        is_revoked: Optional[bool] = None,
        owner_id: Optional[str] = None,
        name: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Paginator[m.ApiKey]:
        """Every key of the organisation, newest first, following every page (``limit`` per page)."""
        call = b.list_keys_call(
            environment=environment, is_revoked=is_revoked, owner_id=owner_id, name=name, limit=limit
        )
        return Paginator(self._client, call, m.ApiKey)

    def get(self, key_id: b.Id) -> m.ApiKey:
        """One key (never its private key)."""
        return self._client._model(m.ApiKey, self._client._send(b.key_call("GET", key_id)))

    def update(
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
        key = self._client._model(m.ApiKey, self._client._send(b.update_key_call(key_id, body)))
        self._client._evict(key_id)
        return key

    def revoke(self, key_id: b.Id) -> m.RevokedApiKey:
        """Revokes the key for good (repeating it is harmless)."""
        revoked = self._client._model(m.RevokedApiKey, self._client._send(b.key_call("PUT", key_id, "/revoke")))
        self._client._evict(key_id)
        return revoked

    def rotate(self, key_id: b.Id, grace_period_seconds: Union[int, float, timedelta, None] = None) -> m.CreatedApiKey:
        """A new private key (shown once); the old one stays valid for the grace period only."""
        rotated = self._client._model(
            m.CreatedApiKey, self._client._send(b.rotate_key_call(key_id, grace_period_seconds))
        )
        self._client._evict(key_id)
        return rotated

    def delete(self, key_id: b.Id) -> None:
        """Deletes the key: gone from every read, never verifies again (its audit trail is kept)."""
        self._client._send(b.key_call("DELETE", key_id))
        self._client._evict(key_id)

    def events(self, key_id: b.Id, *, limit: Optional[int] = None) -> Paginator[m.AuditEvent]:
        """The key's audit trail, newest first, following every page."""
        return Paginator(self._client, b.events_call(key_id, limit), m.AuditEvent)

    def usage(
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
        return self._client._model(m.VerificationAnalytics, self._client._send(call))

    def import_(self, keys: Sequence[Union[ImportItemParam, Mapping[str, Any]]]) -> m.ImportResult:
        """Brings in 1 to 1 000 keys from another system, each with its ``key`` or SHA-256 ``hash``."""
        return self._client._model(m.ImportResult, self._client._send(b.import_call(keys)))

    import_keys = import_

    def verify(
        self,
        key: str,
        *,
        permissions: Optional[str] = None,
        cost: Optional[int] = None,
        ratelimits: Optional[RateLimitCosts] = None,
        tags: Optional[Sequence[str]] = None,
    ) -> m.VerifyResult:
        """Same as :meth:`Keymint.verify`."""
        return self._client.verify(key, permissions=permissions, cost=cost, ratelimits=ratelimits, tags=tags)

    def revoke_leaked(self, key: str, *, url: Optional[str] = None) -> None:
        """Reports a leaked private key (no token needed: the key is its own proof)."""
        self._client._send(b.revoke_leaked_call(key, url))


class Credits(_Resource):
    """A key's credits: read, set, increment, decrement (``Idempotency-Key`` honoured)."""

    def get(self, key_id: b.Id) -> Optional[m.Credits]:
        """The key's credits now; ``None`` means unlimited use."""
        return self._client.keys.get(key_id).credits

    def _change(self, key_id: b.Id, op: str, value: int, idempotency_key: Optional[str]) -> m.CreditsChange:
        response = self._client._send(b.credits_call(key_id, op, value, idempotency_key))
        change = self._client._model(m.CreditsChange, response)
        replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
        object.__setattr__(change, "replayed", replayed)
        self._client._evict(key_id)
        return change

    def set(self, key_id: b.Id, value: int, *, idempotency_key: Optional[str] = None) -> m.CreditsChange:
        """Sets the remaining credits to ``value``.

        Every change carries an ``Idempotency-Key`` (a random one when none is
        given), so a retry after a lost answer is applied once. Pass your own
        (an invoice number) to make retries across processes safe too.
        """
        return self._change(key_id, "set", value, idempotency_key)

    def increment(self, key_id: b.Id, value: int, *, idempotency_key: Optional[str] = None) -> m.CreditsChange:
        """Adds ``value`` credits (a top-up). See :meth:`set` about idempotency."""
        return self._change(key_id, "increment", value, idempotency_key)

    def decrement(self, key_id: b.Id, value: int, *, idempotency_key: Optional[str] = None) -> m.CreditsChange:
        """Takes ``value`` credits (409 ``insufficient_credits`` below 0). See :meth:`set`."""
        return self._change(key_id, "decrement", value, idempotency_key)


class Webhooks(_Resource):
    """``/api/v2/webhooks``: signed notifications of key events."""

    def list(self) -> List[m.Webhook]:
        """Every webhook of the organisation, oldest first."""
        return self._client._models(m.Webhook, self._client._send(b.Call("GET", f"{b.API}/webhooks")))

    def create(
        self,
        url: str,
        *,
        event_types: Union[Sequence[str], None, NotGiven] = NOT_GIVEN,
        enabled: Union[bool, None, NotGiven] = NOT_GIVEN,
        **fields: Any,
    ) -> m.WebhookWithSecret:
        """Registers an endpoint; the answer's ``secret`` is shown this once."""
        call = b.create_webhook_call(url, event_types, enabled, fields)
        return self._client._model(m.WebhookWithSecret, self._client._send(call))

    def get(self, webhook_id: b.Id) -> m.Webhook:
        return self._client._model(m.Webhook, self._client._send(b.webhook_call("GET", webhook_id)))

    def update(
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
        return self._client._model(m.Webhook, self._client._send(b.update_webhook_call(webhook_id, body)))

    def delete(self, webhook_id: b.Id) -> None:
        """Deletes the webhook with its deliveries."""
        self._client._send(b.webhook_call("DELETE", webhook_id))

    def rotate_secret(self, webhook_id: b.Id) -> m.WebhookWithSecret:
        """A new signing secret, shown once; the old one keeps signing alongside it for a while."""
        call = b.webhook_call("POST", webhook_id, "/rotate-secret")
        return self._client._model(m.WebhookWithSecret, self._client._send(call))

    def deliveries(self, webhook_id: b.Id, *, limit: Optional[int] = None) -> Paginator[m.Delivery]:
        """The webhook's deliveries, newest first, each with every attempt, following every page."""
        return Paginator(self._client, b.deliveries_call(webhook_id, limit), m.Delivery)

    def retry(self, webhook_id: b.Id, delivery_id: b.Id) -> m.Delivery:
        """Sends a delivery again now (same ``webhook-id``)."""
        call = b.retry_delivery_call(webhook_id, delivery_id)
        return self._client._model(m.Delivery, self._client._send(call))


class Analytics(_Resource):
    """``/api/v2/analytics``: the organisation's verifications over time."""

    def verifications(
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
        return self._client._model(m.VerificationAnalytics, self._client._send(call))


class Keymint(b.BaseClient):
    """The Keymint API, synchronously.

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
        http_client: Optional[httpx.Client] = None,
        transport: Optional[httpx.BaseTransport] = None,
        sleep: Callable[[float], None] = time.sleep,
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
        self._http = http_client if http_client is not None else httpx.Client(transport=transport)
        self._sleep = sleep
        self.keys = Keys(self)
        self.credits = Credits(self)
        self.webhooks = Webhooks(self)
        self.analytics = Analytics(self)

    # ------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Closes the connections (not those of an ``http_client`` you passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> "Keymint":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    # ------------------------------------------------------------- transport

    def _send(self, call: b.Call) -> httpx.Response:
        attempt = 0
        while True:
            request = self._build(self._http, call)
            try:
                response = self._http.send(request)
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
                response.close()
            self._sleep(delay)
            attempt += 1

    # ------------------------------------------------------------- top level

    def verify(
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
        result = self._model(m.VerifyResult, self._send(call))
        if cache is not None:
            cache.put(key, permissions, result, named_ratelimits=bool(ratelimits))
        return result

    def health(self, *, ready: bool = False) -> Dict[str, Any]:
        """``GET /healthz`` (``ready=True``: ``/readyz``, which also checks the database)."""
        call = b.Call("GET", "/readyz" if ready else "/healthz", auth=False)
        data = self._json(self._send(call))
        return dict(data) if isinstance(data, dict) else {"status": data}

    def secret_patterns(self) -> m.SecretPatterns:
        """The regular expressions matching this deployment's keys, for secret scanners."""
        call = b.Call("GET", "/.well-known/keymint/secret-patterns", auth=False)
        return self._model(m.SecretPatterns, self._send(call))
