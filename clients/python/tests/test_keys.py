"""The key lifecycle against a real Keymint: create, read, list, update, rotate, revoke, delete, events."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

import keymint
from keymint import NOT_GIVEN, Keymint
from keymint.models import ApiKey, AuditEvent, CreatedApiKey

from .conftest import Server


def test_create_returns_every_field_and_the_private_key_once(km: Keymint, org: str) -> None:
    created = km.keys.create(
        "billing-service",
        description="Charges cards",
        environment="test",
        permissions=["billing.read", "reports.*"],
        owner_id="cus_4QF8",
        meta={"plan": "pro", "seats": 3},
        ratelimits=[{"name": "per-second", "limit": 10, "duration_ms": 1000}],
        credits={"remaining": 1000, "refill": {"interval": "monthly", "amount": 1000}},
    )
    assert isinstance(created, CreatedApiKey)
    assert created.org_id == org
    assert created.name == "billing-service"
    assert created.description == "Charges cards"
    assert created.environment == "test"
    assert created.private_key.startswith("sk_test_")
    assert created.public_key.startswith("pk_test_")
    assert created.private_key_display.endswith(created.private_key[-4:])
    assert created.permissions == ["billing.read", "reports.*"]
    assert created.owner_id == "cus_4QF8"
    assert created.meta == {"plan": "pro", "seats": 3}
    assert [(r.name, r.limit, r.duration_ms, r.auto_apply) for r in created.ratelimits] == [
        ("per-second", 10, 1000, True)
    ]
    assert created.credits is not None and created.credits.remaining == 1000
    assert created.credits.refill is not None and created.credits.refill.interval == "monthly"
    assert created.credits.refill.refill_day == 1
    assert created.status == "active"
    assert created.is_revoked is False and created.revoked_at is None
    assert created.created_at.tzinfo is not None
    assert abs(datetime.now(timezone.utc) - created.created_at) < timedelta(minutes=5)
    # The private key never shows in a repr; the answer keeps it for to_dict().
    assert created.private_key not in repr(created)
    assert created.private_key not in str(created)
    assert created.to_dict()["private_key"] == created.private_key

    read = km.keys.get(created.id)
    assert isinstance(read, ApiKey)
    assert read.id == created.id and read.name == "billing-service"
    assert not hasattr(read, "private_key") and "private_key" not in read.to_dict()
    assert read.usage_24h == 0


def test_create_with_expiry_and_unknown_field_is_refused_by_the_server(km: Keymint) -> None:
    expires = datetime.now(timezone.utc) + timedelta(days=30)
    created = km.keys.create("ci", expires_at=expires)
    assert created.expires_at is not None
    assert abs(created.expires_at - expires) < timedelta(seconds=1)
    # **fields are sent as they are: Keymint refuses what it does not know.
    with pytest.raises(keymint.ValidationError) as info:
        km.keys.create("typo", scope="all")
    assert [e.loc for e in info.value.errors] == [["body", "scope"]]
    assert info.value.errors[0].type == "extra_forbidden"


def test_list_follows_every_page(km: Keymint) -> None:
    ids = [km.keys.create(f"key-{i}", environment="live" if i % 2 else "test").id for i in range(5)]
    listed = km.keys.list(limit=2)
    assert isinstance(listed, keymint.Paginator)
    got = [key.id for key in listed]
    assert got == list(reversed(ids))  # newest first, all five across three pages

    pages = list(km.keys.list(limit=2).pages())
    assert [len(page) for page in pages] == [2, 2, 1]
    assert pages[0].next_url is not None and "cursor=" in pages[0].next_url
    assert pages[-1].next_url is None
    assert all(page.request_id for page in pages)

    # Filters are kept on every page.
    live = [key.environment for key in km.keys.list(environment="live", limit=1)]
    assert live == ["live", "live"]
    assert [k.name for k in km.keys.list(name="KEY-3")] == ["key-3"]


def test_list_filters_by_owner_and_revocation(km: Keymint) -> None:
    a = km.keys.create("a", owner_id="alice")
    km.keys.create("b", owner_id="bob")
    c = km.keys.create("c", owner_id="alice")
    km.keys.revoke(c.id)
    assert {k.id for k in km.keys.list(owner_id="alice")} == {a.id, c.id}
    assert [k.id for k in km.keys.list(owner_id="alice", is_revoked=False)] == [a.id]
    assert [k.id for k in km.keys.list(is_revoked=True)] == [c.id]


def test_update_distinguishes_not_given_from_none(km: Keymint) -> None:
    created = km.keys.create("billing", description="keep me", owner_id="cus_1", meta={"a": 1}, permissions=["x.read"])
    renamed = km.keys.update(created.id, name="billing-v2")
    assert renamed.name == "billing-v2"
    assert renamed.description == "keep me"  # not given: untouched
    assert renamed.owner_id == "cus_1" and renamed.meta == {"a": 1} and renamed.permissions == ["x.read"]

    cleared = km.keys.update(created.id, description=None, meta=None, permissions=None)
    assert cleared.description is None  # None: cleared
    assert cleared.meta is None and cleared.permissions == []
    assert cleared.owner_id == "cus_1" and cleared.name == "billing-v2"

    explicit = km.keys.update(created.id, owner_id=None, description=NOT_GIVEN, credits={"remaining": 5})
    assert explicit.owner_id is None and explicit.description is None
    assert explicit.credits is not None and explicit.credits.remaining == 5

    with pytest.raises(ValueError):
        km.keys.update(created.id)  # nothing to change: refused before any request

    events = list(km.keys.events(created.id))
    updated_fields = [e.fields for e in events if e.action == "updated"]
    assert ["name"] in updated_fields
    assert sorted(updated_fields[1]) == ["description", "meta", "permissions"]


def test_rotate_with_and_without_grace(km: Keymint) -> None:
    created = km.keys.create("rotating")
    rotated = km.keys.rotate(created.id, grace_period_seconds=3600)
    assert rotated.id == created.id and rotated.private_key != created.private_key
    assert km.verify(created.private_key).valid  # in its grace period
    assert km.verify(rotated.private_key).valid
    grace = km.keys.get(created.id).previous_key_valid_until
    assert grace is not None and grace > datetime.now(timezone.utc) + timedelta(minutes=50)

    again = km.keys.rotate(created.id, timedelta(seconds=0))
    assert km.verify(rotated.private_key).code == "NOT_FOUND"
    assert km.verify(again.private_key).code == "VALID"
    last = km.keys.rotate(created.id)  # no body: no grace period
    assert km.verify(again.private_key).code == "NOT_FOUND"
    assert km.verify(last.private_key).valid


def test_revoke_is_final_and_repeatable(km: Keymint) -> None:
    created = km.keys.create("to-revoke")
    first = km.keys.revoke(created.id)
    assert first.is_revoked and first.status == "revoked" and first.revoked_at is not None
    second = km.keys.revoke(created.id)
    assert second.revoked_at == first.revoked_at
    assert km.verify(created.private_key).code == "REVOKED"
    with pytest.raises(keymint.ConflictError) as info:
        km.keys.rotate(created.id)
    assert info.value.code == "key_revoked"


def test_delete_then_404_forever(km: Keymint) -> None:
    created = km.keys.create("to-delete")
    assert km.keys.delete(created.id) is None
    with pytest.raises(keymint.NotFoundError) as info:
        km.keys.get(created.id)
    assert info.value.status == 404 and info.value.code == "not_found" and info.value.request_id
    with pytest.raises(keymint.NotFoundError):
        km.keys.delete(created.id)
    assert km.verify(created.private_key).code == "NOT_FOUND"
    # The audit trail outlives the key.
    assert [e.action for e in km.keys.events(created.id)] == ["deleted", "created"]


def test_events_are_paged_newest_first(km: Keymint, keymint_server: Server) -> None:
    created = km.keys.create("audited")
    for i in range(3):
        km.keys.update(created.id, name=f"audited-{i}")
    events = list(km.keys.events(created.id, limit=1))
    assert all(isinstance(e, AuditEvent) for e in events)
    assert [e.action for e in events] == ["updated", "updated", "updated", "created"]
    assert events[0].occurred_at >= events[-1].occurred_at
    assert all(e.actor == "pytest" and e.request_id for e in events)
    assert len(list(km.keys.events(created.id, limit=1).pages())) == 4


def test_another_organisations_key_is_not_found(km: Keymint, keymint_server: Server) -> None:
    created = km.keys.create("mine")
    other = Keymint(keymint_server.url, token=keymint_server.token("00000000-0000-4000-8000-000000000001"))
    with other, pytest.raises(keymint.NotFoundError):
        other.keys.get(created.id)


def test_a_path_id_cannot_change_the_path(km: Keymint) -> None:
    with pytest.raises(keymint.ValidationError) as info:
        km.keys.get("../webhooks")
    assert info.value.errors[0].loc == ["path", "key_id"]


def test_import_by_key_and_by_hash(km: Keymint) -> None:
    legacy = "sk_live_51HqLyjWDarjtT1zdp7dcX" + uuid.uuid4().hex
    hashed = "xoxb-legacy-" + uuid.uuid4().hex
    result = km.keys.import_(
        [
            {"name": "legacy billing", "key": legacy, "permissions": ["documents.read"]},
            {
                "name": "from unkey",
                "environment": "test",
                "hash": {"algorithm": "sha256", "value": hashlib.sha256(hashed.encode()).hexdigest()},
            },
            {"name": "too short", "key": "abc"},
        ]
    )
    assert [item.index for item in result.imported] == [0, 1]
    assert [item.index for item in result.failed] == [2]
    assert result.failed[0].types == ["string_too_short"]
    assert result.failed[0].errors[0].loc[:3] == ["body", "keys", "2"]
    verified = km.verify(legacy, permissions="documents.read")
    assert verified.valid and verified.name == "legacy billing"
    assert km.verify(hashed).name == "from unkey"
    # The plaintext never appears in what the client shows.
    assert legacy not in repr(result)


def test_revoke_leaked_and_secret_patterns(km: Keymint) -> None:
    created = km.keys.create("leaky")
    patterns = km.secret_patterns()
    assert patterns.prefix == "sk"
    regex = next(p.regex for p in patterns.patterns if p.type == "keymint_private_key")
    assert re.search(regex.replace("\\b", ""), created.private_key)
    km.keys.revoke_leaked(created.private_key, url="https://gist.github.com/x")
    assert km.verify(created.private_key).code == "REVOKED"
    events = list(km.keys.events(created.id))
    assert events[0].action == "leaked" and events[0].leak is not None
    assert events[0].leak.source == "self_report" and events[0].leak.url == "https://gist.github.com/x"


def test_health(km: Keymint) -> None:
    assert km.health() == {"status": "ok"}
    assert km.health(ready=True) == {"status": "ready"}
