"""The client's shapes against the OpenAPI document the real Keymint serves (the source of truth).

A field Keymint adds still reaches users (``model.extra``), but these tests make
the drift visible so the models and method signatures keep up.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Dict, List, Set, Type

import httpx
import pytest

from keymint import Keymint, models
from keymint._client import Analytics, Keys, Webhooks

from .conftest import Server

MODELS: Dict[str, Type[models.Model]] = {
    "ApiKey": models.ApiKey,
    "ApiKeyCreated": models.CreatedApiKey,
    "ApiKeyRevoked": models.RevokedApiKey,
    "AuditEvent": models.AuditEvent,
    "Leak": models.Leak,
    "Credits": models.Credits,
    "Refill": models.Refill,
    "RateLimit": models.RateLimit,
    "VerifyResult": models.VerifyResult,
    "CreditsLeft": models.CreditsLeft,
    "LimitLeft": models.RateLimitState,
    "ImportApiKeysResponse": models.ImportResult,
    "ImportedKey": models.ImportedKey,
    "FailedImport": models.ImportFailure,
    "Webhook": models.Webhook,
    "WebhookWithSecret": models.WebhookWithSecret,
    "WebhookHealth": models.WebhookHealth,
    "WebhookDelivery": models.Delivery,
    "AttemptResponse": models.DeliveryAttempt,
    "VerificationAnalytics": models.VerificationAnalytics,
    "VerificationBucket": models.VerificationBucket,
    "SecretPatterns": models.SecretPatterns,
    "SecretPattern": models.SecretPattern,
}


@pytest.fixture(scope="module")
def document(keymint_server: Server) -> Dict[str, Any]:
    answer = httpx.get(f"{keymint_server.url}/openapi.json", timeout=30)
    assert answer.status_code == 200
    doc: Dict[str, Any] = answer.json()
    assert doc["openapi"].startswith("3.1")
    return doc


def wire_fields(model: Type[models.Model]) -> Set[str]:
    return {model._wire_names.get(f.name, f.name) for f in dataclasses.fields(model)}  # type: ignore[arg-type]


@pytest.mark.parametrize("schema_name", sorted(MODELS))
def test_models_have_exactly_the_documented_fields(document: Dict[str, Any], schema_name: str) -> None:
    schema = document["components"]["schemas"][schema_name]
    documented = set(schema["properties"])
    assert wire_fields(MODELS[schema_name]) == documented


def _params(method: Any) -> Set[str]:
    return {
        name
        for name, p in inspect.signature(method).parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def _body(document: Dict[str, Any], name: str) -> Set[str]:
    return set(document["components"]["schemas"][name]["properties"])


def _query(document: Dict[str, Any], path: str) -> Set[str]:
    return {p["name"] for p in document["paths"][path]["get"].get("parameters", []) if p["in"] == "query"}


def test_request_bodies_match_the_methods(document: Dict[str, Any]) -> None:
    assert _params(Keys.create) == _body(document, "CreateApiKeyRequest")
    assert _params(Keys.update) - {"key_id"} == _body(document, "UpdateApiKeyRequest")
    assert _params(Webhooks.create) == _body(document, "CreateWebhookRequest")
    assert _params(Webhooks.update) - {"webhook_id"} == _body(document, "UpdateWebhookRequest")
    # verify: "credits": {"cost"} is the `cost` argument.
    verify = _body(document, "VerifyApiKeyRequest")
    assert _params(Keymint.verify) == (verify - {"credits"}) | {"cost"}
    assert set(document["components"]["schemas"]["CreditCost"]["properties"]) == {"cost"}
    assert set(document["components"]["schemas"]["RateLimitCost"]["properties"]) == {"name", "cost"}
    assert _body(document, "ChangeCreditsRequest") == {"op", "value"}
    assert _body(document, "RotateApiKeyRequest") == {"grace_period_seconds"}
    assert _body(document, "RevokeLeakedRequest") == {"key", "url"}


def test_query_parameters_match_the_methods(document: Dict[str, Any]) -> None:
    assert _params(Keys.list) == _query(document, "/api/v2/api-keys") - {"cursor"}
    assert _params(Keys.events) - {"key_id"} == _query(document, "/api/v2/api-keys/{key_id}/events") - {"cursor"}
    usage = _query(document, "/api/v2/api-keys/{key_id}/usage")
    assert _params(Keys.usage) - {"key_id"} == (usage - {"from"}) | {"from_"}
    analytics = _query(document, "/api/v2/analytics/verifications")
    assert _params(Analytics.verifications) == (analytics - {"from"}) | {"from_"}
    deliveries = _query(document, "/api/v2/webhooks/{webhook_id}/deliveries")
    assert _params(Webhooks.deliveries) - {"webhook_id"} == deliveries - {"cursor"}


def test_every_v2_route_has_a_method(document: Dict[str, Any]) -> None:
    covered = {
        ("post", "/api/v2/api-keys"),
        ("get", "/api/v2/api-keys"),
        ("post", "/api/v2/api-keys/import"),
        ("post", "/api/v2/api-keys/verify"),
        ("post", "/api/v2/api-keys/revoke-leaked"),
        ("get", "/api/v2/api-keys/{key_id}"),
        ("patch", "/api/v2/api-keys/{key_id}"),
        ("delete", "/api/v2/api-keys/{key_id}"),
        ("post", "/api/v2/api-keys/{key_id}/credits"),
        ("get", "/api/v2/api-keys/{key_id}/events"),
        ("put", "/api/v2/api-keys/{key_id}/revoke"),
        ("post", "/api/v2/api-keys/{key_id}/rotate"),
        ("get", "/api/v2/api-keys/{key_id}/usage"),
        ("get", "/api/v2/analytics/verifications"),
        ("get", "/api/v2/webhooks"),
        ("post", "/api/v2/webhooks"),
        ("get", "/api/v2/webhooks/{webhook_id}"),
        ("patch", "/api/v2/webhooks/{webhook_id}"),
        ("delete", "/api/v2/webhooks/{webhook_id}"),
        ("post", "/api/v2/webhooks/{webhook_id}/rotate-secret"),
        ("get", "/api/v2/webhooks/{webhook_id}/deliveries"),
        ("post", "/api/v2/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"),
        ("get", "/.well-known/keymint/secret-patterns"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        # GitHub's own alert route: called by GitHub, signed with GitHub's keys; no client method.
        ("post", "/api/v2/secret-scanning/github"),
    }
    served = {
        (method, path)
        for path, operations in document["paths"].items()
        if not path.startswith("/api/v1/")
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert served == covered


def test_only_credits_take_an_idempotency_key(document: Dict[str, Any]) -> None:
    with_key: List[str] = [
        f"{method} {path}"
        for path, operations in document["paths"].items()
        if path.startswith("/api/v2/")
        for method, operation in operations.items()
        if isinstance(operation, dict)
        and any(p.get("name", "").lower() == "idempotency-key" for p in operation.get("parameters", []))
    ]
    assert with_key == ["post /api/v2/api-keys/{key_id}/credits"]
