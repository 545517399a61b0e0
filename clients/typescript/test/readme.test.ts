// The README's examples, compiled by `npm run typecheck` (so that they keep
// matching the API) and mounted once to check they run.
import assert from "node:assert/strict";
import { test } from "node:test";

import express from "express";
import { Hono } from "hono";

import { ConflictError, Keymint, ValidationError } from "@keymint/client";
import { requireApiKey as requireApiKeyExpress } from "@keymint/client/express";
import { requireApiKey, type KeymintVariables } from "@keymint/client/hono";

function expressExample(km: Keymint) {
  const app = express();

  app.get("/v1/reports", requireApiKeyExpress(km, { permissions: "reports.read" }), (req, res) => {
    res.json({ organization: req.keymint!.orgId, owner: req.keymint!.ownerId });
  });

  app.post(
    "/v1/exports",
    requireApiKeyExpress(km, {
      permissions: "exports.create",
      cost: 10,
      ratelimits: [{ name: "exports", cost: 1 }],
      tags: (req) => [`path=${req.path}`, `region=${req.get("x-region") ?? "eu"}`],
    }),
    (req, res) => res.json({ creditsLeft: req.keymint!.credits?.remaining }),
  );

  app.use("/v1/catalog", requireApiKeyExpress(km, { cache: { maxEntries: 10_000, ttlMs: 10_000 } }));
  return app;
}

function honoExample(km: Keymint) {
  const app = new Hono<{ Variables: KeymintVariables }>();
  app.use("/v1/*", requireApiKey(km, { permissions: "reports.read", tags: (c) => [`path=${c.req.path}`] }));
  app.get("/v1/reports", (c) => c.json({ organization: c.get("keymint").orgId }));
  return app;
}

async function clientExample(km: Keymint, id: string) {
  const key = await km.keys.create({
    name: "acme-billing",
    environment: "live",
    expiresAt: new Date("2027-06-30T00:00:00Z"),
    ratelimits: [{ name: "per-second", limit: 10, durationMs: 1000 }],
    credits: { remaining: 1000, refill: { interval: "monthly", amount: 1000 } },
  });
  await km.keys.update(key.id, { name: "billing-v2", description: null });
  const page = await km.keys.list({ limit: 20 }).firstPage();
  const next: string | null = page.nextCursor;
  try {
    await km.keys.rotate(id);
  } catch (error) {
    if (error instanceof ConflictError && error.code === "key_revoked") return next;
    if (error instanceof ValidationError) return error.fieldErrors;
    throw error;
  }
  return key.privateKey;
}

test("the README's examples build", () => {
  const km = new Keymint({ baseUrl: "http://127.0.0.1:9" });
  assert.equal(typeof expressExample(km), "function");
  assert.equal(typeof honoExample(km).fetch, "function");
  assert.equal(typeof clientExample, "function");
});
