"""The official Python client for Keymint, the self-hosted API-key service.

>>> from keymint import Keymint
>>> with Keymint("http://127.0.0.1:8080", token=TOKEN) as km:  # doctest: +SKIP
...     created = km.keys.create("billing-service", environment="live")
...     km.verify(created.private_key).valid
True
"""

from __future__ import annotations

from ._async_client import AsyncKeymint, AsyncPaginator
from ._client import Keymint, Page, Paginator
from ._types import NOT_GIVEN, CreditsParam, ImportItemParam, NotGiven, RateLimitCosts, RateLimitParam
from ._version import __version__
from .cache import VerifyCache
from .errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FieldError,
    KeymintError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    UnexpectedResponseError,
    ValidationError,
)
from .errors import ConnectionError as ConnectionError  # noqa: A004 - documented alias
from .errors import TimeoutError as TimeoutError  # noqa: A004 - documented alias
from .models import (
    ApiKey,
    AuditEvent,
    CreatedApiKey,
    Credits,
    CreditsChange,
    Delivery,
    ImportResult,
    RevokedApiKey,
    VerificationAnalytics,
    VerifyResult,
    Webhook,
    WebhookWithSecret,
)

__all__ = [
    "__version__",
    "Keymint",
    "AsyncKeymint",
    "Paginator",
    "AsyncPaginator",
    "Page",
    "NOT_GIVEN",
    "NotGiven",
    "CreditsParam",
    "RateLimitParam",
    "ImportItemParam",
    "RateLimitCosts",
    "VerifyCache",
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
    "ApiKey",
    "AuditEvent",
    "CreatedApiKey",
    "Credits",
    "CreditsChange",
    "Delivery",
    "ImportResult",
    "RevokedApiKey",
    "VerificationAnalytics",
    "VerifyResult",
    "Webhook",
    "WebhookWithSecret",
]
