"""Exceptions raised by the Keymint client.

Every error the API answers is a :class:`KeymintError` carrying the HTTP
``status``, Keymint's stable ``code``, its ``detail`` and the ``request_id``
(the response's ``x-request-id`` header, which Keymint's log and audit trail
name too). Subclasses per status let callers catch what they handle::

    try:
        km.keys.get(key_id)
    except keymint.NotFoundError:
        ...

Messages and reprs never contain the bearer token, a private key or a webhook
secret: they are built from Keymint's answer only, which never echoes them.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

__all__ = [
    "KeymintError",
    "APIConnectionError",
    "APITimeoutError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
    "UnexpectedResponseError",
    "FieldError",
]


@dataclass(frozen=True)
class FieldError:
    """One failing field of a 422: where (``loc``), why (``msg``) and a machine ``type``."""

    loc: List[Union[str, int]]
    msg: str
    type: str

    @property
    def field(self) -> str:
        """The location joined with dots, without its first part (``body.name`` → ``name``)."""
        parts = [str(part) for part in self.loc[1:]] if len(self.loc) > 1 else [str(p) for p in self.loc]
        return ".".join(parts)

    @classmethod
    def from_json(cls, value: Any) -> "FieldError":
        if not isinstance(value, Mapping):
            return cls(loc=[], msg=str(value), type="unknown")
        loc_raw = value.get("loc")
        loc: List[Union[str, int]] = (
            [part if isinstance(part, (str, int)) else str(part) for part in loc_raw]
            if isinstance(loc_raw, list)
            else []
        )
        return cls(loc=loc, msg=str(value.get("msg", "")), type=str(value.get("type", "")))


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or ``None``."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if parsed is None:  # pragma: no cover - older Pythons
            return None
        seconds = parsed.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class KeymintError(Exception):
    """Base of every error raised by this package.

    ``status`` is the HTTP status (``None`` when no answer came), ``code``
    Keymint's stable machine code (``not_found``, ``validation_error``, …),
    ``detail`` its explanation (a list of :class:`FieldError` for a 422) and
    ``request_id`` the ``x-request-id`` of the answer.
    """

    status: Optional[int]
    code: Optional[str]
    detail: Any
    request_id: Optional[str]
    headers: Mapping[str, str]

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        detail: Any = None,
        request_id: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.detail = detail if detail is not None else message
        self.request_id = request_id
        self.headers = dict(headers or {})
        self.body = body

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class APIConnectionError(KeymintError):
    """Keymint could not be reached (connection refused, DNS, TLS, a dropped connection)."""


class APITimeoutError(APIConnectionError):
    """Keymint did not answer within the client's timeout."""


class UnexpectedResponseError(KeymintError):
    """Keymint answered something this client cannot read (not JSON, a missing field)."""


class BadRequestError(KeymintError):
    """400: the body is not JSON (``malformed_json``)."""


class AuthenticationError(KeymintError):
    """401: no bearer token, or the token failed a check (``not_authenticated``, ``invalid_token``)."""


class PermissionDeniedError(KeymintError):
    """403: the token has no organisation, or lacks the permission.

    Codes ``no_organization`` and ``insufficient_permissions``.
    """


class NotFoundError(KeymintError):
    """404: no such key or webhook in the caller's organisation (or no such path)."""


class ConflictError(KeymintError):
    """409: the request conflicts with a state or a limit.

    ``key_limit_reached``, ``key_revoked``, ``key_expired``, ``webhook_limit_reached``,
    ``insufficient_credits``, ``credits_out_of_range``, ``credits_unlimited``,
    ``idempotency_key_reused``.
    """


class ValidationError(KeymintError):
    """422: the request was refused field by field; ``errors`` lists every failing field."""

    errors: List[FieldError]

    def __init__(self, message: str, *, errors: Sequence[FieldError] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.errors = list(errors)

    def for_field(self, *loc: Union[str, int]) -> List[FieldError]:
        """The errors whose location ends with ``loc`` (``for_field("name")``)."""
        want = [str(part) for part in loc]
        return [e for e in self.errors if [str(p) for p in e.loc[-len(want) :]] == want]


class RateLimitError(KeymintError):
    """429: too many requests; ``retry_after`` is the wait in seconds when Keymint said it."""

    retry_after: Optional[float]

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(KeymintError):
    """5xx: Keymint failed (``internal_error``) or a dependency of it is down."""

    retry_after: Optional[float]

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServiceUnavailableError(ServerError):
    """503: storage, token keys or body memory unavailable (``storage_unavailable``, ``server_busy``, …)."""


# Familiar aliases (not in ``__all__`` so ``from keymint.errors import *`` does
# not shadow the built-ins).
ConnectionError = APIConnectionError  # noqa: A001
TimeoutError = APITimeoutError  # noqa: A001


def _message_of(detail: Any, errors: Sequence[FieldError], fallback: str) -> str:
    if errors:
        shown = "; ".join(f"{e.field or '?'}: {e.msg}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        return f"validation failed: {shown}{more}"
    if isinstance(detail, str) and detail:
        return detail
    return fallback


def error_from_response(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    request_id: Optional[str],
) -> KeymintError:
    """The exception for an error answer (``body`` is the parsed JSON, or ``None``)."""
    code: Optional[str] = None
    detail: Any = None
    errors: List[FieldError] = []
    if isinstance(body, Mapping):
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, str) else None
        detail = body.get("detail", body.get("message"))
        if isinstance(detail, list):
            errors = [FieldError.from_json(item) for item in detail]
            detail = errors
    fallback = f"Keymint answered HTTP {status}"
    message = _message_of(detail, errors, fallback)
    retry_after = parse_retry_after(headers.get("retry-after"))
    kwargs: Dict[str, Any] = dict(
        status=status, code=code, detail=detail, request_id=request_id, headers=headers, body=body
    )
    if status == 400:
        return BadRequestError(message, **kwargs)
    if status == 401:
        return AuthenticationError(message, **kwargs)
    if status == 403:
        return PermissionDeniedError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status == 409:
        return ConflictError(message, **kwargs)
    if status == 422:
        return ValidationError(message, errors=errors, **kwargs)
    if status == 429:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    if status == 503:
        return ServiceUnavailableError(message, retry_after=retry_after, **kwargs)
    if status >= 500:
        return ServerError(message, retry_after=retry_after, **kwargs)
    return KeymintError(message, **kwargs)
