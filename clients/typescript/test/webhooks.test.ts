import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";

import { ConflictError, NotFoundError, ValidationError, type WebhookDelivery } from "@keymint/client";

import { eventually, startKeymint, type KeymintServer } from "./support.js";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
}

let server: KeymintServer;
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];

before(async () => {
  server = await startKeymint();
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
});

after(async () => {
  await server?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

function signatureValid(secret: string, message: Received): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const signed = `${message.headers["webhook-id"]}.${message.headers["webhook-timestamp"]}.${message.body}`;
  const expected = `v1,${createHmac("sha256", key).update(signed).digest("base64")}`;
  return String(message.headers["webhook-signature"]).split(" ").includes(expected);
}

describe("webhooks", () => {
  test("create, list, get, update, rotate the secret, delete", async () => {
    const { km } = server.client();
    const hook = await km.webhooks.create({ url: "https://hooks.example.com/keymint", eventTypes: ["key.revoked", "key.leaked"] });
    assert.deepEqual(hook.eventTypes, ["key.revoked", "key.leaked"]);
    assert.equal(hook.enabled, true);
    assert.deepEqual(hook.health, { state: "healthy", consecutiveFailures: 0, pausedUntil: null });
    assert.match(hook.secret, /^whsec_/);
    assert.ok(!inspect(hook).includes(hook.secret) && !JSON.stringify(hook).includes(hook.secret), "the secret is hidden");

    const listed = await km.webhooks.list();
    assert.deepEqual(
      listed.map((item) => item.id),
      [hook.id],
    );
    assert.equal((listed[0] as unknown as Record<string, unknown>).secret, undefined);
    assert.equal((await km.webhooks.get(hook.id)).url, "https://hooks.example.com/keymint");

    const updated = await km.webhooks.update(hook.id, { enabled: false, eventTypes: ["key.created"] });
    assert.equal(updated.enabled, false);
    assert.deepEqual(updated.eventTypes, ["key.created"]);
    assert.equal(updated.url, "https://hooks.example.com/keymint", "url left out: unchanged");
    const enabled = await km.webhooks.update(hook.id, { enabled: true });
    assert.deepEqual(enabled.eventTypes, ["key.created"], "eventTypes left out: unchanged");

    const rotated = await km.webhooks.rotateSecret(hook.id);
    assert.match(rotated.secret, /^whsec_/);
    assert.notEqual(rotated.secret, hook.secret);

    await assert.rejects(km.webhooks.update(hook.id, { url: "ftp://nope" }), ValidationError);
    await km.webhooks.delete(hook.id);
    await assert.rejects(km.webhooks.get(hook.id), NotFoundError);
    assert.deepEqual(await km.webhooks.list(), []);
  });

  test("deliveries are signed, listed with their attempts, and can be sent again", async () => {
    const { km } = server.client();
    const hook = await km.webhooks.create({ url: receiverUrl, eventTypes: ["key.created", "key.revoked"] });
    const key = await km.keys.create({ name: "watched" });
    await km.keys.revoke(key.id);

    const deliveries = await eventually(async () => {
      const all = await km.webhooks.deliveries(hook.id).toArray();
      return all.length === 2 && all.every((d) => d.status === "delivered") ? all : undefined;
    }, 20_000, "two delivered deliveries");
    assert.deepEqual(
      deliveries.map((d) => d.eventType),
      ["key.revoked", "key.created"],
    );
    const latest = deliveries[0]!;
    assert.equal(latest.keyId, key.id);
    assert.equal(latest.attempts.length, 1);
    assert.equal(latest.attempts[0]!.statusCode, 204);
    assert.equal(typeof latest.attempts[0]!.latencyMs, "number");

    const mine = received.filter((message) => message.headers["webhook-id"] === latest.id);
    assert.equal(mine.length, 1);
    assert.ok(signatureValid(hook.secret, mine[0]!), "signed with the secret create returned");
    assert.equal(JSON.parse(mine[0]!.body).type, "key.revoked");

    const paged = await km.webhooks.deliveries(hook.id, { limit: 1 }).firstPage();
    assert.equal(paged.items.length, 1);
    assert.ok(paged.nextCursor);
    const rest = await km.webhooks.deliveries(hook.id, { limit: 1, cursor: paged.nextCursor! }).firstPage();
    assert.equal(rest.items[0]!.id, deliveries[1]!.id);

    const retried: WebhookDelivery = await km.webhooks.retry(hook.id, latest.id);
    assert.equal(retried.id, latest.id);
    await eventually(async () => (received.filter((m) => m.headers["webhook-id"] === latest.id).length === 2 ? true : undefined), 20_000, "the retried delivery");
    await assert.rejects(km.webhooks.retry(hook.id, "00000000-0000-4000-8000-000000000000"), NotFoundError);
  });

  test("the organisation's webhook limit is a ConflictError", async () => {
    const limited = await startKeymint({ KEYMINT_WEBHOOKS__MAX_PER_ORG: "1" });
    try {
      const { km } = limited.client();
      await km.webhooks.create({ url: "https://hooks.example.com/one" });
      await assert.rejects(km.webhooks.create({ url: "https://hooks.example.com/two" }), (error: unknown) => error instanceof ConflictError && error.code === "webhook_limit_reached");
    } finally {
      await limited.stop();
    }
  });
});
