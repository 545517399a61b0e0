"""Usage analytics against a real Keymint (counts are flushed every second in these tests)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import keymint
from keymint import Keymint
from keymint.models import VerificationAnalytics

from .conftest import eventually


def test_verifications_grouped_and_filtered(km: Keymint) -> None:
    a = km.keys.create("a", owner_id="alice", permissions=["x"])
    b = km.keys.create("b", owner_id="bob")
    for _ in range(3):
        km.verify(a.private_key, tags=["path=/v1/charges"])
    km.verify(a.private_key, permissions="y")
    km.verify(b.private_key, tags=["path=/v1/refunds"])

    def by_outcome() -> VerificationAnalytics | None:
        answer = km.analytics.verifications(group_by="outcome")
        return answer if answer.total >= 5 else None

    answer = eventually(by_outcome)
    assert isinstance(answer, VerificationAnalytics) and answer.granularity == "hour"
    counts = {}
    for bucket in answer:
        counts[bucket.outcome] = counts.get(bucket.outcome, 0) + bucket.count
    assert counts == {"VALID": 4, "INSUFFICIENT_PERMISSIONS": 1}
    assert answer.from_ < answer.to and answer.to.tzinfo is not None
    assert answer.to_dict()["from"] == answer["from"]

    by_key = km.analytics.verifications(group_by=["key_id", "outcome"], outcome="VALID")
    assert {(x.key_id, x.count) for x in by_key} == {(a.id, 3), (b.id, 1)}

    busiest = km.analytics.verifications(granularity="total", group_by="key_id", order_by="count", limit=1)
    assert busiest.granularity == "total"
    assert [(x.key_id, x.count) for x in busiest] == [(a.id, 4)]

    tagged = km.analytics.verifications(tag="path=/v1/charges", group_by="tag")
    assert [(x.tag, x.count) for x in tagged] == [("path=/v1/charges", 3)]

    alice = km.analytics.verifications(
        owner_id=["alice"], granularity="minute", from_=datetime.now(timezone.utc) - timedelta(minutes=30)
    )
    assert alice.granularity == "minute" and alice.total == 4

    usage = km.keys.usage(a.id)
    assert usage.total == 4 and {x.outcome for x in usage} == {"VALID", "INSUFFICIENT_PERMISSIONS"}
    assert km.keys.usage(a.id, tag="path=/v1/charges").total == 3
    assert eventually(lambda: km.keys.get(a.id).usage_24h) == 4


def test_a_too_long_range_is_refused(km: Keymint) -> None:
    with pytest.raises(keymint.ValidationError) as info:
        km.analytics.verifications(granularity="minute", from_=datetime.now(timezone.utc) - timedelta(days=3))
    assert any(e.loc[-1] == "granularity" for e in info.value.errors)
