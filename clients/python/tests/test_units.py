"""Pure functions: timestamps, models' forward compatibility, header parsing, Retry-After, the cache."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone

import pytest

import keymint
from keymint import NOT_GIVEN, VerifyCache
from keymint import _guard as g
from keymint.errors import parse_retry_after
from keymint.models import ApiKey, VerificationAnalytics, VerifyResult, format_datetime, parse_datetime


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-26T07:39:37Z", datetime(2026, 11, 26, 7, 39, 37, tzinfo=timezone.utc)),
        ("2026-11-26T07:39:37.2Z", datetime(2026, 11, 26, 7, 39, 37, 200000, tzinfo=timezone.utc)),
        ("2026-11-26T07:39:37.247966123Z", datetime(2026, 11, 26, 7, 39, 37, 247966, tzinfo=timezone.utc)),
        ("2026-11-26T08:39:37+01:00", datetime(2026, 11, 26, 7, 39, 37, tzinfo=timezone.utc)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected and parsed.tzinfo is not None


def test_format_datetime() -> None:
    assert format_datetime(datetime(2027, 6, 30, tzinfo=timezone.utc)) == "2027-06-30T00:00:00Z"
    assert format_datetime(datetime(2027, 6, 30)) == "2027-06-30T00:00:00Z"  # naive: UTC
    assert format_datetime(datetime(2027, 6, 30, 2, tzinfo=timezone(timedelta(hours=2)))) == "2027-06-30T00:00:00Z"
    assert format_datetime("2027-06-30T00:00:00Z") == "2027-06-30T00:00:00Z"
    with pytest.raises(ValueError):
        parse_datetime("yesterday")


def test_models_keep_unknown_fields_and_tolerate_missing_optional_ones() -> None:
    data = {"valid": True, "code": "VALID", "key_id": "k", "new_field": {"x": 1}}
    result = VerifyResult.from_dict(data)
    assert result.valid and result.key_id == "k" and result.credits is None and result.ratelimits is None
    assert result.extra == {"new_field": {"x": 1}}
    assert result["new_field"] == {"x": 1} and result.get("missing", 7) == 7
    assert result.to_dict() == data
    result.to_dict()["new_field"]["x"] = 2  # a copy
    assert result["new_field"] == {"x": 1}

    analytics = VerificationAnalytics.from_dict(
        {
            "granularity": "hour",
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-01-02T00:00:00Z",
            "data": [{"time": "2026-01-01T01:00:00Z", "count": 2, "spent_credits": 0, "outcome": "VALID"}],
        }
    )
    assert analytics.from_ == datetime(2026, 1, 1, tzinfo=timezone.utc) and analytics.total == 2
    assert [b.outcome for b in analytics] == ["VALID"]

    with pytest.raises(keymint.UnexpectedResponseError):
        ApiKey.from_dict({"id": "x"})
    with pytest.raises(keymint.UnexpectedResponseError):
        VerifyResult.from_dict({"valid": "yes", "code": "VALID"})


def test_not_given_is_a_falsy_singleton() -> None:
    assert not NOT_GIVEN and repr(NOT_GIVEN) == "NOT_GIVEN"
    assert keymint.NotGiven() is NOT_GIVEN
    assert pickle.loads(pickle.dumps(NOT_GIVEN)) is NOT_GIVEN


def h(*pairs: "tuple[str, str]") -> "list[tuple[bytes, bytes]]":
    return [(k.encode(), v.encode()) for k, v in pairs]


def test_presented_key_reads_headers_like_keymint() -> None:
    assert g.presented_key(h(("x-api-key", " sk_1 "))) == "sk_1"
    assert g.presented_key(h(("authorization", "Bearer sk_1"))) == "sk_1"
    assert g.presented_key(h(("Authorization", "bearer  sk_1"))) == "sk_1"
    assert g.presented_key(h(("x-api-key", "sk_1"), ("authorization", "Bearer sk_1"))) == "sk_1"  # same key
    assert g.presented_key(h(("authorization", "Basic dXNlcjpwdw=="))) is None
    assert g.presented_key(h(("authorization", "Bearer eyJhbGciOi.eyJzdWIi.c2ln"))) is None  # a JWT is no key
    assert g.presented_key(h(("accept", "*/*"))) is None
    for ambiguous in (
        h(("x-api-key", "sk_1"), ("authorization", "Bearer sk_2")),
        h(("x-api-key", "sk_1"), ("x-api-key", "sk_1")),
        h(("authorization", "Bearer sk_1"), ("authorization", "Bearer sk_2")),
    ):
        with pytest.raises(g.Refusal) as info:
            g.presented_key(ambiguous)
        assert info.value.status == 401 and info.value.code == "ambiguous_api_key"
        assert info.value.headers == {"WWW-Authenticate": 'Bearer realm="api-key"'}


def _limited(remaining: int, reset: datetime, name: str = "calls") -> VerifyResult:
    return VerifyResult.from_dict(
        {
            "valid": False,
            "code": "RATE_LIMITED",
            "key_id": "k",
            "ratelimits": [{"name": name, "limit": 10, "remaining": remaining, "reset": reset.isoformat()}],
        }
    )


def test_rate_limit_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert g.rate_limit_retry_after(_limited(0, now + timedelta(seconds=41.2)), None, now) == 42
    assert g.rate_limit_retry_after(_limited(0, now - timedelta(seconds=1)), None, now) == 1  # at least 1
    # 3 left but the call takes 5: that limit refused it.
    assert g.rate_limit_retry_after(_limited(3, now + timedelta(seconds=9)), {"calls": 5}, now) == 9
    assert g.rate_limit_retry_after(VerifyResult.from_dict({"valid": False, "code": "RATE_LIMITED"}), None) is None


def test_judge_maps_every_code() -> None:
    def verdict(code: str, **extra: object) -> "g.Refusal | None":
        return g.judge(
            VerifyResult.from_dict({"valid": code == "VALID", "code": code, **extra}),
            permissions="a AND b",
            ratelimits=None,
        )

    assert verdict("VALID") is None
    assert [(r.status, r.code) for r in [verdict(c) for c in ("NOT_FOUND", "REVOKED", "EXPIRED")] if r] == [
        (401, "invalid_api_key"),
        (401, "api_key_revoked"),
        (401, "api_key_expired"),
    ]
    forbidden = verdict("INSUFFICIENT_PERMISSIONS", key_id="k")
    assert forbidden is not None and forbidden.status == 403 and forbidden.detail.endswith(": a AND b")
    budget = verdict("RATE_LIMITED")
    assert budget is not None and (budget.status, budget.headers) == (429, {"Retry-After": "5"})
    exceeded = verdict("USAGE_EXCEEDED", key_id="k")
    assert exceeded is not None and (exceeded.status, exceeded.code, exceeded.headers) == (429, "usage_exceeded", {})
    unknown = verdict("SOMETHING_NEW", key_id="k")
    assert unknown is not None and unknown.status == 401  # fail closed


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def _valid(key_id: str = "k", **extra: object) -> VerifyResult:
    return VerifyResult.from_dict({"valid": True, "code": "VALID", "key_id": key_id, "ratelimits": [], **extra})


def test_cache_is_bounded_expires_and_never_holds_keys() -> None:
    now = [0.0]
    cache = VerifyCache(ttl=5, max_size=2, clock=lambda: now[0])
    for i in range(3):
        assert cache.put(f"sk_{i}", None, _valid(f"k{i}"))
    assert len(cache) == 2
    assert cache.get("sk_0", None) is None  # least recently used: dropped
    assert cache.get("sk_1", None) is not None and cache.get("sk_2", None) is not None
    assert cache.get("sk_1", "admin") is None  # another permission query is another entry
    now[0] = 5.0
    assert cache.get("sk_1", None) is None  # expired
    assert "sk_2" not in repr(cache) and all(b"sk_2" not in name for name in cache._entries)
    assert cache.hits == 2 and cache.misses == 3


def test_cache_stores_only_free_valid_results() -> None:
    cache = VerifyCache()
    assert not cache.put("a", None, VerifyResult.from_dict({"valid": False, "code": "NOT_FOUND"}))
    assert not cache.put("b", None, _valid(credits={"remaining": 3}))
    assert not cache.put(
        "c", None, _valid(ratelimits=[{"name": "x", "limit": 1, "remaining": 0, "reset": "2026-01-01T00:00:00Z"}])
    )
    assert not cache.put("d", None, _valid(), named_ratelimits=True)
    assert cache.put("e", None, _valid("ke"))
    assert len(cache) == 1
    assert cache.evict_key_id("ke") == 1 and len(cache) == 0
    with pytest.raises(ValueError):
        VerifyCache(ttl=0)
