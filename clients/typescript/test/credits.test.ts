import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ConflictError, ValidationError } from "@keymint/client";

import { countingFetch, startKeymint, type KeymintServer } from "./support.js";

let server: KeymintServer;

before(async () => {
  server = await startKeymint();
});

after(async () => {
  await server?.stop();
});

describe("credits", () => {
  test("get, set, increment and decrement, atomically with verifications", async () => {
    const { km } = server.client();
    const key = await km.keys.create({ name: "metered", credits: { remaining: 10, refill: { interval: "daily", amount: 10 } } });
    assert.deepEqual(await km.credits.get(key.id), { remaining: 10, refill: { interval: "daily", amount: 10, refillDay: null } });
    assert.equal((await km.credits.set(key.id, 3)).remaining, 3);
    assert.equal((await km.credits.increment(key.id, 7)).remaining, 10);
    const decremented = await km.credits.decrement(key.id, 4);
    assert.equal(decremented.remaining, 6);
    assert.equal(decremented.replayed, false);
    assert.deepEqual(decremented.refill, { interval: "daily", amount: 10, refillDay: null });
    assert.equal((await km.verify(key.privateKey, { cost: 2 })).credits?.remaining, 4);
    assert.equal((await km.credits.get(key.id))?.remaining, 4);
    const unlimited = await km.keys.create({ name: "unlimited" });
    assert.equal(await km.credits.get(unlimited.id), null);
  });

  test("an Idempotency-Key replays the first answer and changes nothing", async () => {
    const counter = countingFetch();
    const { km } = server.client({ fetch: counter.fetch });
    const key = await km.keys.create({ name: "top-up", credits: { remaining: 100 } });
    const first = await km.credits.increment(key.id, 500, { idempotencyKey: "invoice-2026-11-0042" });
    assert.equal(first.remaining, 600);
    assert.equal(first.replayed, false);
    assert.equal(first.idempotencyKey, "invoice-2026-11-0042");
    const replay = await km.credits.increment(key.id, 500, { idempotencyKey: "invoice-2026-11-0042" });
    assert.equal(replay.replayed, true);
    assert.equal(replay.remaining, 600, "the first answer, again");
    assert.equal((await km.credits.get(key.id))?.remaining, 600, "applied once");

    await assert.rejects(km.credits.increment(key.id, 1, { idempotencyKey: "invoice-2026-11-0042" }), (error: unknown) => {
      assert.ok(error instanceof ConflictError);
      assert.equal(error.code, "idempotency_key_reused");
      assert.ok(error.requestId);
      return true;
    });

    // Without one, each call gets its own generated key: two calls, two changes.
    const a = await km.credits.increment(key.id, 1);
    const b = await km.credits.increment(key.id, 1);
    assert.notEqual(a.idempotencyKey, b.idempotencyKey);
    assert.match(a.idempotencyKey, /^km-/);
    assert.equal(b.remaining, 602);
    assert.equal(b.replayed, false);
  });

  test("refusals: below zero, unlimited keys, bad idempotency keys", async () => {
    const { km } = server.client();
    const key = await km.keys.create({ name: "small", credits: { remaining: 2 } });
    await assert.rejects(km.credits.decrement(key.id, 3), (error: unknown) => error instanceof ConflictError && error.code === "insufficient_credits");
    const unlimited = await km.keys.create({ name: "unlimited" });
    await assert.rejects(km.credits.set(unlimited.id, 5), (error: unknown) => error instanceof ConflictError && error.code === "credits_unlimited");
    await assert.rejects(km.credits.set(key.id, 5, { idempotencyKey: "has space" }), (error: unknown) => {
      assert.ok(error instanceof ValidationError);
      assert.deepEqual(error.fieldErrors[0]?.loc, ["header", "idempotency-key"]);
      return true;
    });
    // a refused change is not remembered: its retry is decided afresh
    await assert.rejects(km.credits.decrement(key.id, 3, { idempotencyKey: "retry-me" }), ConflictError);
    assert.equal((await km.credits.decrement(key.id, 1, { idempotencyKey: "retry-me" })).remaining, 1);
  });
});
