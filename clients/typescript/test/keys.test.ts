import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";

import { ConflictError, NotFoundError, type ApiKey, type Keymint } from "@keymint/client";

import { countingFetch, startKeymint, type KeymintServer } from "./support.js";

let server: KeymintServer;

before(async () => {
  server = await startKeymint();
});

after(async () => {
  await server?.stop();
});

describe("keys", () => {
  test("create answers camelCase with the private key, which get never returns", async () => {
    const { km, org } = server.client();
    const created = await km.keys.create({
      name: "billing-service",
      description: "Charges cards",
      environment: "test",
      permissions: ["billing.read"],
      ownerId: "cus_1",
      meta: { plan_name: "pro", nested_value: { keep_me: true } },
      ratelimits: [{ name: "per-second", limit: 10, durationMs: 1000 }],
      credits: { remaining: 100, refill: { interval: "monthly", amount: 100 } },
      expiresAt: new Date(Date.now() + 86_400_000),
    });
    assert.match(created.id, /^[0-9a-f-]{36}$/);
    assert.equal(created.orgId, org);
    assert.match(created.privateKey, /^sk_test_/);
    assert.match(created.publicKey, /^pk_test_/);
    assert.equal(created.environment, "test");
    assert.equal(created.ownerId, "cus_1");
    // meta is the caller's data: its keys are not camelCased
    assert.deepEqual(created.meta, { plan_name: "pro", nested_value: { keep_me: true } });
    assert.deepEqual(created.ratelimits, [{ name: "per-second", limit: 10, durationMs: 1000, autoApply: true }]);
    assert.deepEqual(created.credits, { remaining: 100, refill: { interval: "monthly", amount: 100, refillDay: 1 } });
    assert.equal(created.status, "active");
    assert.ok(created.expiresAt);

    const read = await km.keys.get(created.id);
    assert.equal(read.name, "billing-service");
    assert.equal(read.usage24h, 0);
    assert.equal(read.previousKeyValidUntil, null);
    assert.equal((read as unknown as Record<string, unknown>).privateKey, undefined);
    assert.equal(read.privateKeyDisplay, created.privateKeyDisplay);
  });

  test("a private key never shows in inspect, JSON, spread or String()", async () => {
    const { km } = server.client();
    const created = await km.keys.create({ name: "secret-holder" });
    const secret = created.privateKey;
    assert.ok(secret.length > 40);
    for (const shown of [inspect(created, { depth: 10 }), JSON.stringify(created), String(created), JSON.stringify({ ...created })]) {
      assert.ok(!shown.includes(secret), "the private key leaked into a rendering");
    }
    assert.ok(!Object.keys(created).includes("privateKey"));
    assert.equal(created.privateKey, secret, "still readable explicitly");
    const rotated = await km.keys.rotate(created.id);
    assert.ok(!inspect(rotated).includes(rotated.privateKey));
  });

  test("list follows Link rel=next over every page; one page and a cursor work too", async () => {
    const { km } = server.client();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await km.keys.create({ name: `paged-${i}`, environment: i % 2 ? "live" : "test" })).id);
    ids.reverse(); // newest first

    const counter = countingFetch();
    const listing = server.client({ org: (await km.keys.get(ids[0]!)).orgId, fetch: counter.fetch }).km;
    const all: ApiKey[] = [];
    for await (const key of listing.keys.list({ limit: 2 })) all.push(key);
    assert.deepEqual(
      all.map((key) => key.id),
      ids,
    );
    assert.equal(counter.calls("/api/v2/api-keys"), 3, "5 keys in pages of 2: three requests");

    const first = await km.keys.list({ limit: 2 }).firstPage();
    assert.equal(first.items.length, 2);
    assert.ok(first.hasNextPage());
    assert.match(first.nextCursor ?? "", /^[0-9]{1,16}\.[0-9a-f]{32}$/);
    const resumed = await km.keys.list({ limit: 2, cursor: first.nextCursor! }).firstPage();
    assert.deepEqual(
      resumed.items.map((key) => key.id),
      ids.slice(2, 4),
    );
    const second = await first.nextPage();
    assert.deepEqual(
      second?.items.map((key) => key.id),
      ids.slice(2, 4),
    );
    const third = await second!.nextPage();
    assert.equal(third?.items.length, 1);
    assert.equal(third?.hasNextPage(), false);
    assert.equal(third?.nextCursor, null);
    assert.equal(await third!.nextPage(), null);

    let pages = 0;
    for await (const page of km.keys.list({ limit: 2, environment: "test" }).pages()) {
      pages++;
      assert.ok(page.items.every((key) => key.environment === "test"));
    }
    assert.equal(pages, 2, "3 test keys in pages of 2, the filter kept on the next page");
    const named = await km.keys.list({ name: "PAGED-3" }).toArray();
    assert.deepEqual(
      named.map((key) => key.name),
      ["paged-3"],
    );
  });

  test("update: an omitted field is kept, null clears it", async () => {
    const { km } = server.client();
    const created = await km.keys.create({
      name: "updatable",
      description: "first",
      ownerId: "owner-1",
      meta: { a: 1 },
      permissions: ["x.read"],
      credits: { remaining: 5 },
    });
    const renamed = await km.keys.update(created.id, { name: "renamed" });
    assert.equal(renamed.name, "renamed");
    assert.equal(renamed.description, "first", "description omitted: kept");
    assert.equal(renamed.ownerId, "owner-1");
    assert.deepEqual(renamed.meta, { a: 1 });
    assert.deepEqual(renamed.permissions, ["x.read"]);

    const cleared = await km.keys.update(created.id, { description: null, ownerId: undefined, meta: null, credits: null });
    assert.equal(cleared.description, null, "description null: cleared");
    assert.equal(cleared.ownerId, "owner-1", "ownerId undefined: not sent, kept");
    assert.equal(cleared.meta, null);
    assert.equal(cleared.credits, null, "credits null: unlimited");
    assert.equal(cleared.name, "renamed");

    const none = await km.keys.update(created.id, { permissions: null, ratelimits: [{ name: "rl", limit: 3, durationMs: 1000, autoApply: false }] });
    assert.deepEqual(none.permissions, []);
    assert.deepEqual(none.ratelimits, [{ name: "rl", limit: 3, durationMs: 1000, autoApply: false }]);

    const events = await km.keys.events(created.id).toArray();
    const updated = events.filter((event) => event.action === "updated");
    assert.equal(updated.length, 3);
    assert.deepEqual([...updated[1]!.fields].sort(), ["credits", "description", "meta"]);
  });

  test("rotate issues a new private key; the old one verifies only for the grace period", async () => {
    const { km } = server.client();
    const created = await km.keys.create({ name: "rotating" });
    const graced = await km.keys.rotate(created.id, { gracePeriodSeconds: 3600 });
    assert.equal(graced.id, created.id);
    assert.notEqual(graced.privateKey, created.privateKey);
    assert.equal((await km.verify(created.privateKey)).code, "VALID", "old key in its grace period");
    assert.equal((await km.verify(graced.privateKey)).code, "VALID");
    assert.ok((await km.keys.get(created.id)).previousKeyValidUntil);

    const immediate = await km.keys.rotate(created.id);
    assert.equal((await km.verify(graced.privateKey)).code, "NOT_FOUND", "no grace period: the previous key stops at once");
    assert.equal((await km.verify(immediate.privateKey)).code, "VALID");
    const actions = (await km.keys.events(created.id).toArray()).map((event) => event.action);
    assert.deepEqual(actions, ["rotated", "rotated", "created"]);
  });

  test("revoke is final; rotating a revoked key is a ConflictError", async () => {
    const { km } = server.client();
    const created = await km.keys.create({ name: "to-revoke" });
    const revoked = await km.keys.revoke(created.id);
    assert.equal(revoked.isRevoked, true);
    assert.equal(revoked.status, "revoked");
    assert.ok(revoked.revokedAt);
    const again = await km.keys.revoke(created.id);
    assert.equal(again.revokedAt, revoked.revokedAt, "repeating it is harmless");
    assert.equal((await km.verify(created.privateKey)).code, "REVOKED");
    await assert.rejects(km.keys.rotate(created.id), (error: unknown) => {
      assert.ok(error instanceof ConflictError);
      assert.equal(error.status, 409);
      assert.equal(error.code, "key_revoked");
      assert.match(error.requestId ?? "", /\S/);
      return true;
    });
    const revokedOnly = await km.keys.list({ isRevoked: true }).toArray();
    assert.deepEqual(
      revokedOnly.map((key) => key.id),
      [created.id],
    );
  });

  test("delete: gone from every read, a second delete is a NotFoundError, the trail stays", async () => {
    const { km } = server.client();
    const created = await km.keys.create({ name: "to-delete" });
    await km.keys.delete(created.id);
    await assert.rejects(km.keys.get(created.id), NotFoundError);
    await assert.rejects(km.keys.delete(created.id), (error: unknown) => error instanceof NotFoundError && error.code === "not_found");
    assert.equal((await km.verify(created.privateKey)).code, "NOT_FOUND");
    const actions = (await km.keys.events(created.id).toArray()).map((event) => event.action);
    assert.deepEqual(actions, ["deleted", "created"]);
  });

  test("events are paged newest first with who did what in which request", async () => {
    const { km } = server.client();
    const created = await km.keys.create({ name: "audited" });
    await km.keys.update(created.id, { name: "audited-2" });
    await km.keys.update(created.id, { description: "d" });
    await km.keys.revoke(created.id);
    const counter = countingFetch();
    const org = created.orgId;
    const reader: Keymint = server.client({ org, fetch: counter.fetch }).km;
    const events = await reader.keys.events(created.id, { limit: 1 }).toArray();
    assert.deepEqual(
      events.map((event) => event.action),
      ["revoked", "updated", "updated", "created"],
    );
    assert.equal(counter.calls(`/api/v2/api-keys/${created.id}/events`), 4, "one event per page");
    const first = events[0]!;
    assert.equal(first.keyId, created.id);
    assert.equal(first.actor, "ts-client-tests");
    assert.match(first.requestId ?? "", /\S/);
    assert.equal(first.leak, null);
    assert.deepEqual(events[1]!.fields, ["description"]);
    const page = await km.keys.events(created.id, { limit: 3 }).firstPage();
    assert.equal(page.items.length, 3);
    assert.ok(page.hasNextPage());
  });

  test("import brings keys in by plaintext or hash, each item on its own", async () => {
    const { km } = server.client();
    const legacy = `legacy_${Math.random().toString(36).slice(2)}_abcdefghijklmnop`;
    const hashed = `other_${Math.random().toString(36).slice(2)}_abcdefghijklmnopqr`;
    const digest = Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(hashed))).toString("hex");
    const result = await km.keys.import([
      { name: "legacy billing", key: legacy, permissions: ["billing.read"] },
      { name: "from unkey", environment: "test", hash: { algorithm: "sha256", value: digest } },
      { name: "too short", key: "abc" },
    ]);
    assert.deepEqual(
      result.imported.map((item) => item.index),
      [0, 1],
    );
    assert.equal(result.failed.length, 1);
    assert.equal(result.failed[0]!.index, 2);
    assert.equal(result.failed[0]!.detail[0]!.type, "string_too_short");
    assert.ok(!JSON.stringify(result).includes(legacy));
    const verdict = await km.verify(legacy, { permissions: "billing.read" });
    assert.equal(verdict.code, "VALID");
    assert.equal(verdict.name, "legacy billing");
    assert.equal((await km.verify(hashed)).keyId, result.imported[1]!.id);
  });
});
