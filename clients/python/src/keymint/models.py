"""Typed, immutable models of Keymint's answers.

Every model is a frozen dataclass built from the JSON Keymint sent:

- timestamps are parsed into timezone-aware :class:`datetime.datetime` objects;
- fields this client does not know yet (a newer Keymint) are kept in
  :attr:`Model.extra`, and the whole answer in :meth:`Model.to_dict` and
  ``model["field"]``, so nothing the server says is lost;
- a field a (older) server leaves out reads ``None`` (or ``[]`` for a list).

Secrets a response carries once (a new private key, a webhook's signing secret)
are fields like any other, but never shown by ``repr()``.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Literal,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

from .errors import UnexpectedResponseError

if TYPE_CHECKING:  # pragma: no cover
    from .errors import FieldError

__all__ = [
    "Model",
    "ApiKey",
    "CreatedApiKey",
    "RevokedApiKey",
    "RateLimit",
    "Credits",
    "CreditsChange",
    "Refill",
    "AuditEvent",
    "Leak",
    "VerifyResult",
    "CreditsLeft",
    "RateLimitState",
    "ImportResult",
    "ImportedKey",
    "ImportFailure",
    "Webhook",
    "WebhookWithSecret",
    "WebhookHealth",
    "Delivery",
    "DeliveryAttempt",
    "VerificationAnalytics",
    "VerificationBucket",
    "SecretPatterns",
    "SecretPattern",
    "parse_datetime",
    "format_datetime",
]

M = TypeVar("M", bound="Model")

_DT_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?"
    r"(?P<tz>[Zz]|[+-]\d{2}:?\d{2})?$"
)


def parse_datetime(value: str) -> datetime:
    """An RFC 3339 timestamp (``Z`` or an offset, any number of fractional digits) as an aware datetime.

    A timestamp without an offset is taken as UTC (Keymint always sends ``Z``).
    """
    match = _DT_RE.match(value.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    frac = (match.group("frac") or "")[:6].ljust(6, "0")
    base = datetime.strptime(f"{match.group('date')}T{match.group('time')}", "%Y-%m-%dT%H:%M:%S")
    base = base.replace(microsecond=int(frac))
    tz_text = match.group("tz")
    if tz_text is None or tz_text in ("Z", "z"):
        return base.replace(tzinfo=timezone.utc)
    sign = 1 if tz_text[0] == "+" else -1
    digits = tz_text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return base.replace(tzinfo=timezone(sign * offset))


def format_datetime(value: Union[datetime, str]) -> str:
    """RFC 3339 for a query or body. A naive datetime is taken as UTC; a string is sent as given."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    text = value.astimezone(timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


_NONE_TYPE = type(None)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def _convert(tp: Any, value: Any, where: str) -> Any:
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin is Union:
        args = get_args(tp)
        if value is None:
            if _NONE_TYPE in args:
                return None
            raise UnexpectedResponseError(f"Keymint's answer has null at {where}, which this client cannot read")
        inner = [arg for arg in args if arg is not _NONE_TYPE]
        last: Optional[Exception] = None
        for arg in inner:
            try:
                return _convert(arg, value, where)
            except UnexpectedResponseError as err:
                last = err
        assert last is not None
        raise last
    if origin is ClassVar:  # pragma: no cover - never a field
        return value
    if value is None:
        raise UnexpectedResponseError(f"Keymint's answer has null at {where}, which this client cannot read")
    if origin in (list, List):
        if not isinstance(value, list):
            raise UnexpectedResponseError(f"Keymint's answer has no list at {where}")
        (item_tp,) = get_args(tp) or (Any,)
        return [_convert(item_tp, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin in (dict, Dict, Mapping):
        if not isinstance(value, dict):
            raise UnexpectedResponseError(f"Keymint's answer has no object at {where}")
        return dict(value)
    if _is_literal(tp):
        return value
    if tp is datetime:
        if not isinstance(value, str):
            raise UnexpectedResponseError(f"Keymint's answer has no timestamp at {where}")
        try:
            return parse_datetime(value)
        except ValueError as err:
            raise UnexpectedResponseError(f"Keymint's answer has an unreadable timestamp at {where}") from err
    if isinstance(tp, type) and issubclass(tp, Model):
        if not isinstance(value, dict):
            raise UnexpectedResponseError(f"Keymint's answer has no object at {where}")
        return tp._from_json(value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise UnexpectedResponseError(f"Keymint's answer has no boolean at {where}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise UnexpectedResponseError(f"Keymint's answer has no integer at {where}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UnexpectedResponseError(f"Keymint's answer has no number at {where}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise UnexpectedResponseError(f"Keymint's answer has no string at {where}")
        return value
    raise UnexpectedResponseError(f"cannot read {_type_name(tp)} at {where}")  # pragma: no cover


def _is_literal(tp: Any) -> bool:
    return get_origin(tp) is Literal


def _default_for_missing(tp: Any) -> Tuple[bool, Any]:
    """What a field the server left out reads: ``None`` when optional, ``[]`` for a list."""
    origin = get_origin(tp)
    if origin is Union and _NONE_TYPE in get_args(tp):
        return True, None
    if origin in (list, List):
        return True, []
    return False, None


_HINTS: Dict[type, Dict[str, Any]] = {}


def _hints(cls: type) -> Dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        module = sys.modules[cls.__module__]
        hints = get_type_hints(cls, vars(module))
        _HINTS[cls] = hints
    return hints


class Model:
    """Base of every model: JSON in, typed fields out, unknown fields kept."""

    # Fields never shown by repr() (secrets shown once).
    _secret_fields: ClassVar[FrozenSet[str]] = frozenset()
    # Python field name -> JSON name, where they differ (``from_`` -> ``from``).
    _wire_names: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_dict(cls: Type[M], data: Mapping[str, Any]) -> M:
        """Build the model from Keymint's JSON (as parsed by ``json.loads``)."""
        return cls._from_json(data, cls.__name__)

    @classmethod
    def _from_json(cls: Type[M], data: Mapping[str, Any], where: str) -> M:
        if not isinstance(data, Mapping):
            raise UnexpectedResponseError(f"Keymint's answer has no object at {where}")
        hints = _hints(cls)
        values: Dict[str, Any] = {}
        known = set()
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            if not field.init:
                continue
            wire = cls._wire_names.get(field.name, field.name)
            known.add(wire)
            tp = hints[field.name]
            if wire in data:
                values[field.name] = _convert(tp, data[wire], f"{where}.{wire}")
            elif field.default is not dataclasses.MISSING:
                values[field.name] = field.default
            elif field.default_factory is not dataclasses.MISSING:
                values[field.name] = field.default_factory()
            else:
                ok, default = _default_for_missing(tp)
                if not ok:
                    raise UnexpectedResponseError(f"Keymint's answer lacks {where}.{wire}")
                values[field.name] = default
        instance = cls(**values)
        object.__setattr__(instance, "_raw", dict(data))
        object.__setattr__(instance, "_extra", {k: v for k, v in data.items() if k not in known})
        return instance

    @property
    def extra(self) -> Mapping[str, Any]:
        """Fields of the answer this version of the client does not model (a newer Keymint's)."""
        extra: Mapping[str, Any] = getattr(self, "_extra", {})
        return extra

    def to_dict(self) -> Dict[str, Any]:
        """The answer as Keymint sent it (JSON types; secrets included)."""
        raw = getattr(self, "_raw", None)
        if raw is not None:
            copied: Dict[str, Any] = _deep_copy(raw)
            return copied
        return {self._wire_names.get(f.name, f.name): _to_json(getattr(self, f.name)) for f in _fields(self)}

    def __getitem__(self, name: str) -> Any:
        """A field by its JSON name, as sent (``result["code"]``, or a field newer than this client)."""
        return self.to_dict()[name]

    def get(self, name: str, default: Any = None) -> Any:
        """A field by its JSON name, or ``default``."""
        return self.to_dict().get(name, default)

    def __repr__(self) -> str:
        shown = []
        for f in _fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            text = "'***'" if f.name in self._secret_fields and value is not None else repr(value)
            shown.append(f"{f.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"

    __str__ = __repr__


def _fields(model: Model) -> Tuple[dataclasses.Field, ...]:  # type: ignore[type-arg]
    return dataclasses.fields(model)  # type: ignore[arg-type]


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _to_json(value: Any) -> Any:
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


_model = dataclasses.dataclass(frozen=True, repr=False)


# ----------------------------------------------------------------- keys


@_model
class RateLimit(Model):
    """One of a key's rate limits: ``limit`` uses per ``duration_ms`` window."""

    name: str
    limit: int
    duration_ms: int
    auto_apply: bool = True


@_model
class Refill(Model):
    """How a key's credits are refilled: set to ``amount`` each day or on ``refill_day`` each month."""

    interval: str
    amount: int
    refill_day: Optional[int] = None


@_model
class Credits(Model):
    """A key's credits: ``remaining`` now, and its ``refill`` (``None``: never refilled)."""

    remaining: int
    refill: Optional[Refill] = None


@_model
class CreditsChange(Credits):
    """The credits after ``POST …/credits``; ``replayed`` when Keymint replayed an earlier answer
    for the same ``Idempotency-Key`` (``Idempotent-Replayed: true``)."""

    replayed: bool = False


@_model
class ApiKey(Model):
    """A key as every read answers it (never its private key)."""

    id: str
    org_id: str
    name: str
    public_key: str
    private_key_display: str
    created_at: datetime
    description: Optional[str]
    is_revoked: bool
    revoked_at: Optional[datetime]
    last_used_at: Optional[datetime]
    environment: Optional[str]
    expires_at: Optional[datetime]
    permissions: List[str]
    owner_id: Optional[str]
    meta: Optional[Dict[str, Any]]
    ratelimits: List[RateLimit]
    credits: Optional[Credits]
    status: str
    leaked_at: Optional[datetime] = None
    previous_key_valid_until: Optional[datetime] = None
    usage_24h: Optional[int] = None


@_model
class CreatedApiKey(Model):
    """A new or rotated key with its ``private_key``, shown in this answer only.

    ``repr()`` masks the private key; read ``.private_key`` to hand it on.
    """

    _secret_fields: ClassVar[FrozenSet[str]] = frozenset({"private_key"})

    id: str
    org_id: str
    name: str
    public_key: str
    private_key_display: str
    created_at: datetime
    private_key: str
    description: Optional[str]
    is_revoked: bool
    revoked_at: Optional[datetime]
    last_used_at: Optional[datetime]
    environment: Optional[str]
    expires_at: Optional[datetime]
    permissions: List[str]
    owner_id: Optional[str]
    meta: Optional[Dict[str, Any]]
    ratelimits: List[RateLimit]
    credits: Optional[Credits]
    status: Optional[str] = None


@_model
class RevokedApiKey(Model):
    """The answer of a revocation."""

    id: str
    org_id: str
    name: str
    is_revoked: bool
    created_at: datetime
    description: Optional[str]
    expires_at: Optional[datetime]
    last_used_at: Optional[datetime]
    revoked_at: Optional[datetime]
    status: Optional[str] = None


@_model
class Leak(Model):
    """Where a leaked key was seen: ``source`` (``self_report``, ``github``) and ``url``."""

    source: str
    url: Optional[str] = None


@_model
class AuditEvent(Model):
    """One entry of a key's audit trail."""

    id: str
    key_id: str
    action: str
    actor: Optional[str]
    occurred_at: datetime
    request_id: Optional[str]
    fields: List[str]
    leak: Optional[Leak] = None


@_model
class ImportedKey(Model):
    """An item of an import that was stored: its ``index`` in the batch and the new key's ``id``."""

    index: int
    id: str


@_model
class ImportFailure(Model):
    """An item of an import that was refused, with the validation errors (``detail``)."""

    index: int
    detail: List[Dict[str, Any]]

    @property
    def errors(self) -> List[FieldError]:
        """``detail`` as :class:`keymint.FieldError` objects."""
        from .errors import FieldError

        return [FieldError.from_json(item) for item in self.detail]

    @property
    def types(self) -> List[str]:
        """The machine types of the failures (``duplicate_key``, ``string_too_short``, …)."""
        return [str(item.get("type", "")) for item in self.detail]


@_model
class ImportResult(Model):
    """The answer of ``POST /api-keys/import``: each item imported or failed."""

    imported: List[ImportedKey]
    failed: List[ImportFailure]


# ----------------------------------------------------------------- verification


@_model
class CreditsLeft(Model):
    """A key's credits after a verification."""

    remaining: int


@_model
class RateLimitState(Model):
    """One of a key's rate limits after a verification: ``remaining`` uses until ``reset``."""

    name: str
    limit: int
    remaining: int
    reset: datetime


@_model
class VerifyResult(Model):
    """The verdict on a presented key.

    Serve the call only when ``valid`` is true. ``code`` is one of ``VALID``,
    ``NOT_FOUND``, ``REVOKED``, ``EXPIRED``, ``RATE_LIMITED``,
    ``INSUFFICIENT_PERMISSIONS`` or ``USAGE_EXCEEDED``. The identity fields are
    set when the key was recognised (``VALID``, ``INSUFFICIENT_PERMISSIONS``,
    ``USAGE_EXCEEDED`` or the key's own ``RATE_LIMITED``).
    """

    valid: bool
    code: str
    key_id: Optional[str] = None
    org_id: Optional[str] = None
    environment: Optional[str] = None
    name: Optional[str] = None
    expires_at: Optional[datetime] = None
    permissions: Optional[List[str]] = None
    owner_id: Optional[str] = None
    meta: Optional[Dict[str, Any]] = None
    credits: Optional[CreditsLeft] = None
    ratelimits: Optional[List[RateLimitState]] = None

    @property
    def recognised(self) -> bool:
        """Whether Keymint named the key (its holder proved the secret)."""
        return self.key_id is not None


# ----------------------------------------------------------------- webhooks


@_model
class WebhookHealth(Model):
    """Where a webhook's endpoint stands: ``healthy``, ``failing``, ``paused`` or ``probing``."""

    state: str
    consecutive_failures: int = 0
    paused_until: Optional[datetime] = None


@_model
class Webhook(Model):
    """A registered webhook (never its secret)."""

    id: str
    url: str
    event_types: List[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    health: Optional[WebhookHealth] = None


@_model
class WebhookWithSecret(Model):
    """A webhook with its signing ``secret``, shown on create and ``rotate-secret`` only (masked by ``repr()``)."""

    _secret_fields: ClassVar[FrozenSet[str]] = frozenset({"secret"})

    id: str
    url: str
    event_types: List[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    secret: str
    health: Optional[WebhookHealth] = None


@_model
class DeliveryAttempt(Model):
    """One attempt of a delivery: when, the HTTP status (if any answer), latency, error."""

    attempted_at: datetime
    latency_ms: int
    status_code: Optional[int] = None
    error: Optional[str] = None


@_model
class Delivery(Model):
    """One event's delivery to a webhook, with every attempt."""

    id: str
    event_type: str
    key_id: str
    status: str
    created_at: datetime
    attempts: List[DeliveryAttempt]
    next_attempt_at: Optional[datetime] = None


# ----------------------------------------------------------------- analytics


@_model
class VerificationBucket(Model):
    """One bucket (and group) of verification counts.

    ``key_id``, ``owner_id``, ``tag`` and ``outcome`` are set when grouped by
    them (``owner_id``/``tag`` may then also be ``None``: no owner, untagged).
    """

    time: datetime
    count: int
    spent_credits: int
    key_id: Optional[str] = None
    owner_id: Optional[str] = None
    tag: Optional[str] = None
    outcome: Optional[str] = None


@_model
class VerificationAnalytics(Model):
    """Verifications over time: non-empty buckets only, time ascending."""

    _wire_names: ClassVar[Mapping[str, str]] = {"from_": "from"}

    granularity: str
    from_: datetime
    to: datetime
    data: List[VerificationBucket]

    def __iter__(self) -> Iterator[VerificationBucket]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def total(self) -> int:
        """The verifications of every bucket."""
        return sum(bucket.count for bucket in self.data)


# ----------------------------------------------------------------- leaks


@_model
class SecretPattern(Model):
    """A regular expression matching this deployment's keys, for secret scanners."""

    type: str
    regex: str
    description: Optional[str] = None
    secret: Optional[bool] = None


@_model
class SecretPatterns(Model):
    """``GET /.well-known/keymint/secret-patterns``."""

    prefix: str
    accepted_prefixes: List[str]
    patterns: List[SecretPattern]
