"""AsyncKeymint does what Keymint does, against the same real Keymint."""

from __future__ import annotations

import uuid
import pytest

import keymint
from keymint import AsyncKeymint, AsyncPaginator, Keymint
from keymint.models import ApiKey, CreatedApiKey

from .conftest import Receiver, Server, eventually

pytestmark = pytest.mark.anyio


async def test_key_lifecycle(akm: AsyncKeymint, org: str) -> None:
    created = await akm.keys.create("async", description="d", owner_id="o1", meta={"m": 1})
    assert isinstance(created, CreatedApiKey) and created.org_id == org
    assert created.private_key not in repr(created)
    got = await akm.keys.get(created.id)
    assert isinstance(got, ApiKey) and got.description == "d"

    for i in range(4):
        await akm.keys.create(f"more-{i}")
    pager = akm.keys.list(limit=2)
    assert isinstance(pager, AsyncPaginator)
    names = [key.name async for key in pager]
    assert names == ["more-3", "more-2", "more-1", "more-0", "async"]
    sizes = [len(page) async for page in akm.keys.list(limit=2).pages()]
    assert sizes == [2, 2, 1]
    assert [k.name for k in await akm.keys.list(owner_id="o1").to_list()] == ["async"]

    updated = await akm.keys.update(created.id, name="async-2")
    assert updated.description == "d" and updated.meta == {"m": 1}
    cleared = await akm.keys.update(created.id, description=None)
    assert cleared.description is None and cleared.name == "async-2"

    rotated = await akm.keys.rotate(created.id, grace_period_seconds=60)
    assert (await akm.verify(created.private_key)).valid and (await akm.verify(rotated.private_key)).valid
    revoked = await akm.keys.revoke(created.id)
    assert revoked.status == "revoked"
    assert (await akm.verify(rotated.private_key)).code == "REVOKED"
    actions = [e.action async for e in akm.keys.events(created.id, limit=2)]
    assert actions == ["revoked", "rotated", "updated", "updated", "created"]
    await akm.keys.delete(created.id)
    with pytest.raises(keymint.NotFoundError) as info:
        await akm.keys.get(created.id)
    assert info.value.request_id


async def test_verify_credits_and_errors(akm: AsyncKeymint) -> None:
    created = await akm.keys.create("metered", credits={"remaining": 3}, permissions=["a"])
    result = await akm.verify(created.private_key, permissions="a", cost=2, tags=["async"])
    assert result.valid and result.credits is not None and result.credits.remaining == 1
    assert (await akm.verify(created.private_key, permissions="b")).code == "INSUFFICIENT_PERMISSIONS"
    assert (await akm.verify(created.private_key, cost=2)).code == "USAGE_EXCEEDED"

    idem = f"async-{uuid.uuid4()}"
    first = await akm.credits.increment(created.id, 10, idempotency_key=idem)
    again = await akm.credits.increment(created.id, 10, idempotency_key=idem)
    assert (first.remaining, first.replayed) == (11, False) and (again.remaining, again.replayed) == (11, True)
    assert (await akm.credits.set(created.id, 4)).remaining == 4
    assert (await akm.credits.decrement(created.id, 1)).remaining == 3
    assert (await akm.credits.get(created.id)).remaining == 3  # type: ignore[union-attr]

    with pytest.raises(keymint.ValidationError) as verr:
        await akm.keys.create("", environment="prod")
    assert len(verr.value.errors) == 2 and verr.value.request_id
    with pytest.raises(keymint.ConflictError):
        await akm.credits.decrement(created.id, 100)


async def test_usage_and_analytics(akm: AsyncKeymint, keymint_server: Server, token: str) -> None:
    created = await akm.keys.create("counted")
    for _ in range(2):
        await akm.verify(created.private_key, tags=["t=1"])
    # Counts reach storage within a flush; poll with a sync client (eventually() is sync).
    with Keymint(keymint_server.url, token=token) as km:
        eventually(lambda: km.keys.usage(created.id).total == 2)
    usage = await akm.keys.usage(created.id, tag="t=1")
    assert usage.total == 2
    answer = await akm.analytics.verifications(group_by="tag", key_id=created.id)
    assert [(b.tag, b.count) for b in answer] == [("t=1", 2)]


async def test_import_leaks_health(akm: AsyncKeymint) -> None:
    legacy = "ghp_" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    result = await akm.keys.import_([{"name": "legacy", "key": legacy}])
    assert [i.index for i in result.imported] == [0] and result.failed == []
    assert (await akm.verify(legacy)).name == "legacy"
    await akm.keys.revoke_leaked(legacy)
    assert (await akm.verify(legacy)).code == "REVOKED"
    assert await akm.health(ready=True) == {"status": "ready"}
    assert (await akm.secret_patterns()).patterns


async def test_webhooks(akm: AsyncKeymint, receiver: Receiver) -> None:
    hook = await akm.webhooks.create(receiver.url, event_types=["key.created"], enabled=True)
    assert hook.secret.startswith("whsec_")
    assert [w.id for w in await akm.webhooks.list()] == [hook.id]
    assert (await akm.webhooks.get(hook.id)).url == receiver.url
    assert (await akm.webhooks.update(hook.id, enabled=False)).enabled is False
    assert (await akm.webhooks.rotate_secret(hook.id)).secret != hook.secret
    await akm.webhooks.update(hook.id, enabled=True)
    for i in range(3):
        await akm.keys.create(f"k{i}")
    deliveries = await akm.webhooks.deliveries(hook.id, limit=2).to_list()
    assert len(deliveries) == 3
    retried = await akm.webhooks.retry(hook.id, deliveries[0].id)
    assert retried.id == deliveries[0].id
    await akm.webhooks.delete(hook.id)
    with pytest.raises(keymint.NotFoundError):
        await akm.webhooks.get(hook.id)


async def test_connection_error_async() -> None:
    from .conftest import _free_port

    async def no_sleep(_: float) -> None:
        return None

    async with AsyncKeymint(f"http://127.0.0.1:{_free_port()}", max_retries=1, sleep=no_sleep) as km:
        with pytest.raises(keymint.APIConnectionError):
            await km.verify("sk_live_x")


def test_clients_are_context_managers(keymint_server: Server) -> None:
    km = Keymint(keymint_server.url)
    with km as inside:
        assert inside is km
    assert km._http.is_closed


async def test_async_context_manager_closes(keymint_server: Server) -> None:
    km = AsyncKeymint(keymint_server.url)
    async with km as inside:
        assert inside is km
    assert km._http.is_closed
