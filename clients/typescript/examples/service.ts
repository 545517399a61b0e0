// A Node service whose routes need a Keymint API key, with Express and with
// Hono: the README's "Integrate your service" shows this file, and
// test/examples.test.ts runs it against a real Keymint.
import express from "express";
import { Hono } from "hono";

import { Keymint } from "@keymint/client";
import { requireApiKey } from "@keymint/client/express";
import { requireApiKey as honoRequireApiKey, type KeymintVariables } from "@keymint/client/hono";

// Verifying needs no token: the caller's key is the credential.
const km = new Keymint({ baseUrl: process.env.KEYMINT_URL ?? "http://127.0.0.1:8080" });

// Express: the verdict is req.keymint.
export const expressApp = express();
expressApp.get("/reports", requireApiKey(km, { permissions: "reports.read" }), (req, res) => {
  res.json({ organization: req.keymint!.orgId, owner: req.keymint!.ownerId });
});
expressApp.post("/exports", requireApiKey(km, { cost: 10, tags: (req) => [`path=${req.path}`] }), (req, res) => {
  res.json({ creditsLeft: req.keymint!.credits?.remaining ?? null });
});

// Hono: the verdict is c.get("keymint").
export const honoApp = new Hono<{ Variables: KeymintVariables }>();
honoApp.use("/reports", honoRequireApiKey(km, { permissions: "reports.read" }));
honoApp.get("/reports", (c) => c.json({ organization: c.get("keymint").orgId }));
