"""Credits against a real Keymint, with Idempotency-Key replays."""

from __future__ import annotations

import uuid

import pytest

import keymint
from keymint import Keymint
from keymint.models import CreditsChange


def test_get_set_increment_decrement(km: Keymint) -> None:
    created = km.keys.create("credits", credits={"remaining": 100})
    credits = km.credits.get(created.id)
    assert credits is not None and credits.remaining == 100 and credits.refill is None

    assert km.credits.set(created.id, 50).remaining == 50
    changed = km.credits.increment(created.id, 25)
    assert isinstance(changed, CreditsChange) and changed.remaining == 75 and changed.replayed is False
    assert km.credits.decrement(created.id, 70).remaining == 5
    assert km.credits.get(created.id).remaining == 5  # type: ignore[union-attr]
    assert km.verify(created.private_key).credits.remaining == 4  # type: ignore[union-attr]

    with pytest.raises(keymint.ConflictError) as info:
        km.credits.decrement(created.id, 10)
    assert info.value.code == "insufficient_credits" and info.value.request_id
    with pytest.raises(keymint.ConflictError) as info:
        km.credits.increment(created.id, 10**12)
    assert info.value.code == "credits_out_of_range"


def test_unlimited_key_has_no_credits(km: Keymint) -> None:
    created = km.keys.create("unlimited")
    assert km.credits.get(created.id) is None
    with pytest.raises(keymint.ConflictError) as info:
        km.credits.increment(created.id, 1)
    assert info.value.code == "credits_unlimited"


def test_idempotency_key_replays_the_first_answer(km: Keymint) -> None:
    created = km.keys.create("topup", credits={"remaining": 10})
    invoice = f"invoice-{uuid.uuid4()}"
    first = km.credits.increment(created.id, 500, idempotency_key=invoice)
    assert first.remaining == 510 and first.replayed is False
    again = km.credits.increment(created.id, 500, idempotency_key=invoice)
    assert again.remaining == 510 and again.replayed is True  # applied once
    assert km.credits.get(created.id).remaining == 510  # type: ignore[union-attr]

    with pytest.raises(keymint.ConflictError) as info:
        km.credits.increment(created.id, 1, idempotency_key=invoice)  # same key, another request
    assert info.value.code == "idempotency_key_reused"

    # Without a key of its own, every call gets a fresh one: two calls, two changes.
    km.credits.increment(created.id, 1)
    km.credits.increment(created.id, 1)
    assert km.credits.get(created.id).remaining == 512  # type: ignore[union-attr]


def test_invalid_idempotency_key_is_a_validation_error(km: Keymint) -> None:
    created = km.keys.create("bad-idem", credits={"remaining": 1})
    with pytest.raises(keymint.ValidationError) as info:
        km.credits.set(created.id, 2, idempotency_key="has space")
    assert info.value.errors[0].loc == ["header", "idempotency-key"]


def test_credits_changes_are_audited(km: Keymint) -> None:
    created = km.keys.create("audited", credits={"remaining": 1})
    km.credits.set(created.id, 3)
    event = next(iter(km.keys.events(created.id)))
    assert event.action == "updated" and event.fields == ["credits"]
