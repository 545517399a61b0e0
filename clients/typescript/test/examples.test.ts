// The README's "Integrate your service" example (examples/service.ts), run
// against a real Keymint: the routes refuse without a key, refuse a key
// without the permission, and serve a good key for its organisation.
import assert from "node:assert/strict";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import type { Express } from "express";
import type { Hono } from "hono";

import { startKeymint, type KeymintServer } from "./support.js";

const run = promisify(execFile);

let server: KeymintServer;
let examples: { expressApp: Express; honoApp: Hono<any> };

before(async () => {
  server = await startKeymint();
  // The example reads KEYMINT_URL when it is loaded.
  process.env.KEYMINT_URL = server.baseUrl;
  examples = await import("../examples/service.js");
});

after(async () => {
  await server?.stop();
});

async function expressBase(): Promise<{ base: string; close: () => void }> {
  const listening: Server = await new Promise((resolve) => {
    const s = examples.expressApp.listen(0, "127.0.0.1", () => resolve(s));
  });
  const { port } = listening.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, close: () => listening.close() };
}

test("the Express example serves a good key and refuses the others as the extractor does", async () => {
  const { km, org } = server.client();
  const reader = await km.keys.create({ name: "reader", permissions: ["reports.read"], ownerId: "cus_1" });
  const stranger = await km.keys.create({ name: "stranger" });
  const metered = await km.keys.create({ name: "metered", credits: { remaining: 15 } });
  const { base, close } = await expressBase();
  try {
    const none = await fetch(`${base}/reports`);
    assert.equal(none.status, 401);
    assert.ok(none.headers.get("www-authenticate"));
    assert.equal(((await none.json()) as { code: string }).code, "api_key_required");
    const denied = await fetch(`${base}/reports`, { headers: { "x-api-key": stranger.privateKey } });
    assert.equal(denied.status, 403);
    const served = await fetch(`${base}/reports`, { headers: { authorization: `Bearer ${reader.privateKey}` } });
    assert.equal(served.status, 200);
    assert.deepEqual(await served.json(), { organization: org, owner: "cus_1" });
    const exported = await fetch(`${base}/exports`, { method: "POST", headers: { "x-api-key": metered.privateKey } });
    assert.deepEqual(await exported.json(), { creditsLeft: 5 });
    const spent = await fetch(`${base}/exports`, { method: "POST", headers: { "x-api-key": metered.privateKey } });
    assert.equal(spent.status, 429);
  } finally {
    close();
  }
});

test("the Hono example serves a good key and refuses the others", async () => {
  const { km, org } = server.client();
  const reader = await km.keys.create({ name: "reader", permissions: ["reports.read"] });
  const stranger = await km.keys.create({ name: "stranger" });
  assert.equal((await examples.honoApp.request("/reports")).status, 401);
  assert.equal((await examples.honoApp.request("/reports", { headers: { "x-api-key": stranger.privateKey } })).status, 403);
  const served = await examples.honoApp.request("/reports", { headers: { "x-api-key": reader.privateKey } });
  assert.equal(served.status, 200);
  assert.deepEqual(await served.json(), { organization: org });
});

test("the key management example creates, lists and revokes", async () => {
  const { km, org } = server.client();
  const script = fileURLToPath(new URL("../examples/manage.js", import.meta.url));
  const { stdout } = await run(process.execPath, [script], {
    env: { ...process.env, KEYMINT_URL: server.baseUrl, KEYMINT_TOKEN: server.token({ org }) },
  });
  const [first, ...listed] = stdout.trim().split("\n");
  const [id, privateKey] = first!.split(" ");
  assert.match(privateKey!, /^sk_live_/);
  assert.ok(listed.includes("acme-billing 0"), stdout);
  assert.equal((await km.keys.get(id!)).isRevoked, true);
});
