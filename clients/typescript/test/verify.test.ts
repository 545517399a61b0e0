import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ValidationError } from "@keymint/client";

import { countingFetch, eventually, startKeymint, type KeymintServer } from "./support.js";

let server: KeymintServer;

before(async () => {
  server = await startKeymint();
});

after(async () => {
  await server?.stop();
});

describe("verify", () => {
  test("a valid key: identity, permissions, owner, meta; no management token sent", async () => {
    const counter = countingFetch();
    const { km, org } = server.client();
    const key = await km.keys.create({ name: "svc", permissions: ["billing.read", "reports.*"], ownerId: "cus_9", meta: { tier_name: "gold" } });
    // A client without a token verifies too: the key is the credential.
    const { Keymint } = await import("@keymint/client");
    const anonymous = new Keymint({ baseUrl: server.baseUrl, fetch: counter.fetch });
    const result = await anonymous.verify(key.privateKey);
    assert.deepEqual(result, {
      valid: true,
      code: "VALID",
      keyId: key.id,
      orgId: org,
      environment: "live",
      name: "svc",
      expiresAt: null,
      permissions: ["billing.read", "reports.*"],
      ownerId: "cus_9",
      meta: { tier_name: "gold" },
      credits: null,
      ratelimits: [],
    });
    assert.equal(counter.calls("/api/v2/api-keys/verify"), 1);
  });

  test("not found: unknown, malformed, deleted all alike", async () => {
    const { km } = server.client();
    for (const presented of ["sk_live_nope", "", "x".repeat(300)]) {
      const result = await km.verify(presented);
      assert.equal(result.valid, false);
      assert.equal(result.code, "NOT_FOUND");
      assert.equal(result.keyId, null);
      assert.equal(result.ratelimits, null);
    }
  });

  test("permissions: a query the key does not satisfy is INSUFFICIENT_PERMISSIONS; a malformed one a 422", async () => {
    const { km } = server.client();
    const key = await km.keys.create({ name: "perm", permissions: ["billing.read", "reports.*"] });
    assert.equal((await km.verify(key.privateKey, { permissions: "billing.read AND reports.export" })).code, "VALID");
    const refused = await km.verify(key.privateKey, { permissions: "billing.read AND (billing.write OR admin)" });
    assert.equal(refused.valid, false);
    assert.equal(refused.code, "INSUFFICIENT_PERMISSIONS");
    assert.equal(refused.keyId, key.id, "the holder proved the secret: the key is named");
    await assert.rejects(km.verify(key.privateKey, { permissions: "billing.read AND" }), (error: unknown) => {
      assert.ok(error instanceof ValidationError);
      assert.deepEqual(error.fieldErrors[0]?.loc, ["body", "permissions"]);
      assert.ok(error.requestId);
      return true;
    });
  });

  test("credits and rate limits are spent and reported", async () => {
    const { km } = server.client();
    const key = await km.keys.create({
      name: "metered",
      credits: { remaining: 3 },
      ratelimits: [
        { name: "tokens", limit: 1000, durationMs: 60_000, autoApply: false },
        { name: "calls", limit: 100, durationMs: 60_000 },
      ],
    });
    const first = await km.verify(key.privateKey, { credits: { cost: 2 }, ratelimits: [{ name: "tokens", cost: 250 }] });
    assert.equal(first.code, "VALID");
    assert.deepEqual(first.credits, { remaining: 1 });
    const limits = Object.fromEntries((first.ratelimits ?? []).map((limit) => [limit.name, limit.remaining]));
    assert.deepEqual(limits, { tokens: 750, calls: 99 });
    const refused = await km.verify(key.privateKey, { cost: 2 });
    assert.equal(refused.code, "USAGE_EXCEEDED");
    assert.equal(refused.valid, false);
    assert.deepEqual(refused.credits, { remaining: 1 }, "a refused call spends nothing");
    assert.equal((await km.verify(key.privateKey, { cost: 0 })).code, "VALID");
    assert.equal((await km.verify(key.privateKey)).credits?.remaining, 0, "default cost 1");
    assert.equal((await km.verify(key.privateKey)).code, "USAGE_EXCEEDED");
    await assert.rejects(km.verify(key.privateKey, { cost: 1, credits: { cost: 2 } }), TypeError);
  });

  test("a key's own rate limit answers RATE_LIMITED naming the limit and its reset", async () => {
    const { km } = server.client();
    const key = await km.keys.create({ name: "limited", ratelimits: [{ name: "per-minute", limit: 2, durationMs: 60_000 }] });
    // Two uses a minute: within five calls one is refused, even if a minute
    // boundary passes between them (it can only once).
    const codes: string[] = [];
    let refused = await km.verify(key.privateKey);
    while (refused.code === "VALID" && codes.length < 4) {
      codes.push(refused.code);
      refused = await km.verify(key.privateKey);
    }
    assert.ok(codes.length >= 2, "the first two are granted");
    assert.equal(refused.code, "RATE_LIMITED");
    assert.equal(refused.keyId, key.id);
    assert.equal(refused.ratelimits?.[0]?.remaining, 0);
    assert.ok(Date.parse(refused.ratelimits?.[0]?.reset ?? "") > Date.now());
  });

  test("REVOKED and EXPIRED", async () => {
    const { km } = server.client();
    const key = await km.keys.create({ name: "revoked" });
    await km.keys.revoke(key.id);
    const result = await km.verify(key.privateKey);
    assert.equal(result.code, "REVOKED");
    assert.equal(result.keyId, null);
  });
});

describe("analytics", () => {
  test("verifications by outcome and tag, per organisation and per key", async () => {
    const { km } = server.client();
    const key = await km.keys.create({ name: "counted", ownerId: "cus_a", permissions: ["a"] });
    await km.verify(key.privateKey, { tags: ["path=/v1/charges", "region=eu"] });
    await km.verify(key.privateKey, { tags: ["path=/v1/charges"] });
    await km.verify(key.privateKey, { permissions: "b" });
    const byOutcome = await eventually(async () => {
      const analytics = await km.analytics.verifications({ groupBy: "outcome" });
      const total = analytics.data.reduce((sum, bucket) => sum + bucket.count, 0);
      return total === 3 ? analytics : undefined;
    }, 90_000, "3 counted verifications");
    assert.equal(byOutcome.granularity, "hour");
    const counts: Record<string, number> = {};
    for (const bucket of byOutcome.data) counts[bucket.outcome ?? "null"] = (counts[bucket.outcome ?? "null"] ?? 0) + bucket.count;
    assert.deepEqual(counts, { VALID: 2, INSUFFICIENT_PERMISSIONS: 1 });
    assert.equal(typeof byOutcome.data[0]!.spentCredits, "number");

    const byTag = await km.analytics.verifications({ groupBy: ["tag"], tag: "path=/v1/charges", granularity: "minute", from: new Date(Date.now() - 3_600_000) });
    const tags: Record<string, number> = {};
    for (const bucket of byTag.data) tags[bucket.tag ?? "null"] = (tags[bucket.tag ?? "null"] ?? 0) + bucket.count;
    assert.deepEqual(tags, { "path=/v1/charges": 2, "region=eu": 1 });

    const onlyRefused = await km.analytics.verifications({ outcome: ["INSUFFICIENT_PERMISSIONS"], groupBy: ["key_id", "owner_id"] });
    assert.equal(onlyRefused.data.length, 1);
    assert.equal(onlyRefused.data[0]!.keyId, key.id);
    assert.equal(onlyRefused.data[0]!.ownerId, "cus_a");

    const busiest = await km.analytics.verifications({ granularity: "total", groupBy: "key_id", orderBy: "count", limit: 1 });
    assert.equal(busiest.granularity, "total");
    assert.deepEqual(busiest.data.map((row) => [row.keyId, row.count]), [[key.id, 3]]);

    const usage = await km.keys.usage(key.id, { granularity: "day" });
    assert.equal(usage.granularity, "day");
    assert.equal(
      usage.data.reduce((sum, bucket) => sum + bucket.count, 0),
      3,
    );
    assert.equal((await km.keys.get(key.id)).usage24h, 3);

    await assert.rejects(km.analytics.verifications({ granularity: "minute", from: "2020-01-01T00:00:00Z" }), (error: unknown) => {
      assert.ok(error instanceof ValidationError);
      assert.ok(error.fieldErrors.some((field) => field.loc.includes("granularity")));
      return true;
    });
  });
});
