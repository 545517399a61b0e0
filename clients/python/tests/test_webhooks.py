"""Webhooks against a real Keymint, delivering to a local receiver."""

from __future__ import annotations

import pytest

import keymint
from keymint import Keymint
from keymint.models import Delivery, Webhook, WebhookWithSecret

from .conftest import Receiver, eventually


def test_webhook_crud_and_secret_rotation(km: Keymint, receiver: Receiver) -> None:
    created = km.webhooks.create(receiver.url, event_types=["key.revoked", "key.leaked"])
    assert isinstance(created, WebhookWithSecret)
    assert created.secret.startswith("whsec_") and created.secret not in repr(created)
    assert created.url == receiver.url and created.enabled is True
    assert created.event_types == ["key.revoked", "key.leaked"]
    assert created.health is not None and created.health.state == "healthy"

    listed = km.webhooks.list()
    assert [w.id for w in listed] == [created.id] and isinstance(listed[0], Webhook)
    assert not hasattr(listed[0], "secret")

    got = km.webhooks.get(created.id)
    assert got.id == created.id and got.event_types == created.event_types

    updated = km.webhooks.update(created.id, enabled=False, event_types=["key.created"])
    assert updated.enabled is False and updated.event_types == ["key.created"]
    # Keymint reads `"event_types": null` in a PATCH as "unchanged" (unlike a
    # create, where it means every type): the client sends it as given.
    unchanged = km.webhooks.update(created.id, event_types=None)
    assert unchanged.event_types == ["key.created"]
    assert unchanged.enabled is False  # not given: unchanged

    rotated = km.webhooks.rotate_secret(created.id)
    assert rotated.secret.startswith("whsec_") and rotated.secret != created.secret

    second = km.webhooks.create(receiver.url)
    assert [w.id for w in km.webhooks.list()] == [created.id, second.id]  # oldest first

    km.webhooks.delete(created.id)
    with pytest.raises(keymint.NotFoundError):
        km.webhooks.get(created.id)
    with pytest.raises(keymint.ValidationError) as info:
        km.webhooks.update(second.id, url="ftp://example.com/")
    assert info.value.errors[0].loc == ["body", "url"]


def test_deliveries_are_paged_and_can_be_retried(km: Keymint, receiver: Receiver) -> None:
    hook = km.webhooks.create(receiver.url, event_types=["key.created"])
    keys = [km.keys.create(f"hooked-{i}") for i in range(3)]

    deliveries = list(km.webhooks.deliveries(hook.id, limit=2))
    assert all(isinstance(d, Delivery) for d in deliveries)
    assert [d.key_id for d in deliveries] == [k.id for k in reversed(keys)]  # newest first
    assert {d.event_type for d in deliveries} == {"key.created"}
    assert len(list(km.webhooks.deliveries(hook.id, limit=2).pages())) == 2

    eventually(lambda: len(receiver.requests) >= 3)
    delivered = eventually(
        lambda: [d for d in km.webhooks.deliveries(hook.id) if d.status == "delivered" and d.attempts]
    )
    assert delivered[0].attempts[0].status_code == 200

    target = deliveries[0]
    before = len(receiver.requests)
    retried = km.webhooks.retry(hook.id, target.id)
    assert retried.id == target.id
    eventually(lambda: len(receiver.requests) > before)
    ids = [r["headers"].get("webhook-id") for r in receiver.requests]
    assert ids.count(ids[-1]) >= 2  # the same webhook-id as the first attempt

    with pytest.raises(keymint.NotFoundError):
        km.webhooks.retry(hook.id, keys[0].id)  # not a delivery id
