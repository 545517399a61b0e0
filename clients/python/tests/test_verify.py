"""Verification against a real Keymint: valid, invalid, permissions, credits, rate limits, failure budgets."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import keymint
from keymint import Keymint, VerifyResult

from .conftest import Server

MONTH_MS = 2_592_000_000  # the longest window: no boundary falls inside a test


def test_valid_key_names_its_identity(km: Keymint, org: str, keymint_server: Server) -> None:
    created = km.keys.create("svc", owner_id="cus_1", meta={"plan": "pro"}, permissions=["billing.read"])
    # Verification needs no token at all.
    with Keymint(keymint_server.url, token=None) as anonymous:
        result = anonymous.verify(created.private_key)
    assert isinstance(result, VerifyResult)
    assert result.valid is True and result.code == "VALID" and result.recognised
    assert result.key_id == created.id and result.org_id == org
    assert result.environment == "live" and result.name == "svc"
    assert result.owner_id == "cus_1" and result.meta == {"plan": "pro"}
    assert result.permissions == ["billing.read"]
    assert result.credits is None and result.ratelimits == []
    assert result["code"] == "VALID" and result.extra == {}


@pytest.mark.parametrize("presented", ["", "nope", "sk_live_" + "A" * 70, "x" * 300])
def test_invalid_keys_are_not_found(km: Keymint, presented: str) -> None:
    result = km.verify(presented)
    assert result.valid is False and result.code == "NOT_FOUND"
    assert result.key_id is None and not result.recognised


def test_typo_is_not_found(km: Keymint) -> None:
    key = km.keys.create("typo").private_key
    typo = key[:-1] + ("a" if key[-1] != "a" else "b")
    assert km.verify(typo).code == "NOT_FOUND"


def test_permission_queries(km: Keymint) -> None:
    key = km.keys.create("perm", permissions=["billing.read", "reports.*"]).private_key
    assert km.verify(key, permissions="billing.read").valid
    assert km.verify(key, permissions="reports.export AND billing.read").valid
    assert km.verify(key, permissions="billing.write OR reports.delete").valid
    refused = km.verify(key, permissions="billing.read AND billing.write")
    assert refused.valid is False and refused.code == "INSUFFICIENT_PERMISSIONS"
    assert refused.recognised and refused.permissions == ["billing.read", "reports.*"]
    with pytest.raises(keymint.ValidationError) as info:
        km.verify(key, permissions="billing.read AND")
    assert info.value.errors[0].loc == ["body", "permissions"]
    assert key not in str(info.value) and key not in repr(info.value)


def test_credits_are_spent_and_exhausted(km: Keymint) -> None:
    key = km.keys.create("metered", credits={"remaining": 10}).private_key
    first = km.verify(key)
    assert first.valid and first.credits is not None and first.credits.remaining == 9
    second = km.verify(key, cost=5)
    assert second.credits is not None and second.credits.remaining == 4
    assert km.verify(key, cost=0).credits.remaining == 4  # type: ignore[union-attr]
    refused = km.verify(key, cost=5)
    assert refused.valid is False and refused.code == "USAGE_EXCEEDED"
    assert refused.credits is not None and refused.credits.remaining == 4  # a refusal spends nothing
    assert km.verify(key, cost=4).credits.remaining == 0  # type: ignore[union-attr]


def test_rate_limits_named_and_auto_applied(km: Keymint) -> None:
    key = km.keys.create(
        "limited",
        ratelimits=[
            {"name": "calls", "limit": 2, "duration_ms": MONTH_MS},
            {"name": "exports", "limit": 3, "duration_ms": MONTH_MS, "auto_apply": False},
        ],
    ).private_key
    first = km.verify(key, ratelimits={"exports": 3})
    states = {s.name: s for s in first.ratelimits or []}
    assert first.valid and states["calls"].remaining == 1 and states["exports"].remaining == 0
    assert states["calls"].reset > datetime.now(timezone.utc)
    refused = km.verify(key, ratelimits=["exports"])
    assert refused.code == "RATE_LIMITED" and refused.valid is False and refused.recognised
    assert km.verify(key).valid  # the refused call took nothing from "calls"
    assert km.verify(key).code == "RATE_LIMITED"
    with pytest.raises(keymint.ValidationError) as info:
        km.verify(key, ratelimits=[{"name": "nonexistent", "cost": 1}])
    assert info.value.errors[0].loc[:2] == ["body", "ratelimits"]


def test_revoked_and_expired(km: Keymint) -> None:
    created = km.keys.create("r")
    km.keys.revoke(created.id)
    revoked = km.verify(created.private_key)
    assert revoked.code == "REVOKED" and revoked.key_id is None


def test_failure_budget_answers_rate_limited_without_naming_a_key(km: Keymint) -> None:
    created = km.keys.create("budget")
    km.keys.delete(created.id)
    codes = [km.verify(created.private_key).code for _ in range(12)]
    assert codes[:10] == ["NOT_FOUND"] * 10
    assert codes[10:] == ["RATE_LIMITED"] * 2
    assert km.verify(created.private_key).key_id is None


def test_tags_are_validated(km: Keymint) -> None:
    key = km.keys.create("tagged").private_key
    assert km.verify(key, tags=["path=/v1/charges", "region=eu"]).valid
    with pytest.raises(keymint.ValidationError) as info:
        km.verify(key, tags=["keymint:reserved"])
    assert info.value.errors[0].loc == ["body", "tags", "0"]
