import assert from "node:assert/strict";
import { request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";

import express, { type NextFunction, type Request, type Response } from "express";
import { Hono } from "hono";

import { Keymint, VerifyCache, type CreatedApiKey, type RequireApiKeyOptions } from "@keymint/client";
import { requireApiKey as expressRequireApiKey } from "@keymint/client/express";
import { requireApiKey as honoRequireApiKey, type KeymintVariables } from "@keymint/client/hono";

import { countingFetch, eventually, freePort, signJwt, startKeymint, wrongSecret, type KeymintServer } from "./support.js";

const VERIFY = "/api/v2/api-keys/verify";

let server: KeymintServer;
let admin: Keymint;
const keys: Record<string, CreatedApiKey> = {};

before(async () => {
  // Unlimited per-client failure budget: this file presents many wrong keys
  // from one address. The per-key budget (10) stays, for its own test.
  server = await startKeymint({ KEYMINT_VERIFY__MAX_FAILURES_PER_CLIENT: "0" });
  admin = server.client().km;
  keys.reader = await admin.keys.create({ name: "reader", permissions: ["reports.read"], ownerId: "cus_r" });
  keys.other = await admin.keys.create({ name: "other", permissions: ["reports.read"] });
  keys.third = await admin.keys.create({ name: "third", permissions: ["reports.read"] });
  keys.revoked = await admin.keys.create({ name: "revoked" });
  await admin.keys.revoke(keys.revoked.id);
  keys.expiring = await admin.keys.create({ name: "expiring", expiresAt: new Date(Date.now() + 2_000) });
  keys.budgetExpress = await admin.keys.create({ name: "budget-express" });
  keys.budgetHono = await admin.keys.create({ name: "budget-hono" });
  keys.metered = await admin.keys.create({ name: "metered", credits: { remaining: 5 } });
  keys.empty = await admin.keys.create({ name: "empty", credits: { remaining: 0 } });
  keys.limitedExpress = await admin.keys.create({ name: "limited-e", ratelimits: [{ name: "per-minute", limit: 1, durationMs: 60_000 }] });
  keys.limitedHono = await admin.keys.create({ name: "limited-h", ratelimits: [{ name: "per-minute", limit: 1, durationMs: 60_000 }] });
  await eventually(async () => ((await admin.verify(keys.expiring!.privateKey)).code === "EXPIRED" ? true : undefined), 10_000, "the key to expire");
});

after(async () => {
  await server?.stop();
});

interface Answer {
  status: number;
  headers: Record<string, string | undefined>;
  body: Record<string, unknown>;
}

/** Headers as a list of [name, value] pairs, so a header may be sent twice. */
type HeaderList = [string, string][];

interface Harness {
  name: string;
  /** Mounts `GET path` behind the middleware with `options`; the handler answers `req.keymint`. */
  route(path: string, km: Keymint, options?: RequireApiKeyOptions<unknown>): void;
  call(path: string, headers?: HeaderList): Promise<Answer>;
  close(): Promise<void>;
}

async function expressHarness(): Promise<Harness> {
  const app = express();
  const listening: Server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  const port = (listening.address() as AddressInfo).port;
  return {
    name: "express",
    route(path, km, options) {
      app.get(path, expressRequireApiKey<Request>(km, options), (req: Request, res: Response) => {
        res.json({ keymint: req.keymint, path: req.path });
      });
      // Errors go to the next error handler after the route: one after each.
      app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
        res.status(500).json({ code: "route_error", detail: error instanceof Error ? error.message : String(error) });
      });
    },
    call(path, headers = []) {
      return new Promise((resolve, reject) => {
        const raw: Record<string, string | string[]> = {};
        for (const [name, value] of headers) {
          const existing = raw[name];
          raw[name] = existing === undefined ? value : ([] as string[]).concat(existing, value);
        }
        const req = httpRequest({ host: "127.0.0.1", port, path, method: "GET", headers: raw }, (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => (text += chunk.toString()));
          res.on("end", () => {
            const flat: Record<string, string | undefined> = {};
            for (const [name, value] of Object.entries(res.headers)) flat[name] = Array.isArray(value) ? value.join(", ") : value;
            resolve({ status: res.statusCode ?? 0, headers: flat, body: text ? JSON.parse(text) : {} });
          });
        });
        req.on("error", reject);
        req.end();
      });
    },
    close: () => new Promise((resolve) => listening.close(() => resolve())),
  };
}

async function honoHarness(): Promise<Harness> {
  // Hono's router is built on the first request: routes added later go into a new app.
  const mounted: ((app: Hono<{ Variables: KeymintVariables }>) => void)[] = [];
  let app: Hono<{ Variables: KeymintVariables }> | undefined;
  return {
    name: "hono",
    route(path, km, options) {
      const middleware = honoRequireApiKey(km, options);
      mounted.push((target) => target.get(path, middleware, (c) => c.json({ keymint: c.get("keymint"), path: c.req.path })));
      app = undefined;
    },
    async call(path, headers = []) {
      if (!app) {
        app = new Hono<{ Variables: KeymintVariables }>();
        app.onError((error, c) => c.json({ code: "route_error", detail: error.message }, 500));
        for (const mount of mounted) mount(app);
      }
      const sent = new Headers();
      for (const [name, value] of headers) sent.append(name, value);
      const response = await app.request(path, { headers: sent });
      const flat: Record<string, string | undefined> = {};
      response.headers.forEach((value, name) => (flat[name] = value));
      const text = await response.text();
      return { status: response.status, headers: flat, body: text ? JSON.parse(text) : {} };
    },
    close: async () => {},
  };
}

function assertRefused(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, `expected ${status} ${code}, got ${answer.status} ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.code, code);
  assert.equal(typeof answer.body.detail, "string");
  if (status === 401) assert.equal(answer.headers["www-authenticate"], 'Bearer realm="api-key"');
}

for (const make of [expressHarness, honoHarness]) {
  describe(`${make === expressHarness ? "express" : "hono"} middleware`, () => {
    let app: Harness;
    let counter: ReturnType<typeof countingFetch>;
    let km: Keymint;
    const seenByTags: string[] = [];

    before(async () => {
      app = await make();
      counter = countingFetch();
      km = new Keymint({ baseUrl: server.baseUrl, fetch: counter.fetch });
      app.route("/open", km);
      app.route("/reports", km, {
        permissions: "reports.read",
        tags: (ctx) => {
          // Express passes its request, Hono its context.
          const path = String((ctx as { path?: unknown }).path ?? (ctx as { req: { path: string } }).req.path);
          seenByTags.push(path);
          return [`path=${path}`];
        },
      });
      app.route("/admin", km, { permissions: "admin" });
      app.route("/charged", km, { cost: 2 });
      app.route("/broken", km, { permissions: "reports.read AND" });
      const unreachable = new Keymint({ baseUrl: `http://127.0.0.1:${await freePort()}`, maxRetries: 0 });
      app.route("/unreachable", unreachable);
    });

    after(async () => {
      await app.close();
    });

    test("no key: 401 api_key_required with WWW-Authenticate; a bearer JWT is not a key", async () => {
      assertRefused(await app.call("/open"), 401, "api_key_required");
      const jwt = signJwt({ sub: "x" }, "s");
      assertRefused(await app.call("/open", [["authorization", `Bearer ${jwt}`]]), 401, "api_key_required");
      assertRefused(await app.call("/open", [["authorization", `Basic ${keys.reader!.privateKey}`]]), 401, "api_key_required");
    });

    test("a valid key in x-api-key or Authorization: Bearer passes, with the verification", async () => {
      for (const headers of [
        [["x-api-key", keys.reader!.privateKey]],
        [["authorization", `Bearer ${keys.reader!.privateKey}`]],
        [["authorization", `bearer  ${keys.reader!.privateKey} `]],
        [
          ["x-api-key", keys.reader!.privateKey],
          ["authorization", `Bearer ${keys.reader!.privateKey}`],
        ],
      ] as HeaderList[]) {
        const answer = await app.call("/reports", headers);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        const verdict = answer.body.keymint as Record<string, unknown>;
        assert.equal(verdict.keyId, keys.reader!.id);
        assert.equal(verdict.ownerId, "cus_r");
        assert.equal(verdict.code, "VALID");
      }
      assert.ok(seenByTags.includes("/reports"), "tags computed from the request");
    });

    test("two different keys, or a header given twice: 401 ambiguous_api_key", async () => {
      assertRefused(
        await app.call("/open", [
          ["x-api-key", keys.reader!.privateKey],
          ["authorization", `Bearer ${keys.other!.privateKey}`],
        ]),
        401,
        "ambiguous_api_key",
      );
      assertRefused(
        await app.call("/open", [
          ["x-api-key", keys.reader!.privateKey],
          ["x-api-key", keys.other!.privateKey],
        ]),
        401,
        "ambiguous_api_key",
      );
      assertRefused(
        await app.call("/open", [
          ["authorization", `Bearer ${keys.reader!.privateKey}`],
          ["authorization", `Bearer ${keys.reader!.privateKey}`],
        ]),
        401,
        "ambiguous_api_key",
      );
    });

    test("unknown, revoked and expired keys: 401 with their codes", async () => {
      assertRefused(await app.call("/open", [["x-api-key", "sk_live_unknown"]]), 401, "invalid_api_key");
      assertRefused(await app.call("/open", [["x-api-key", ""]]), 401, "invalid_api_key");
      assertRefused(await app.call("/open", [["x-api-key", keys.revoked!.privateKey]]), 401, "api_key_revoked");
      assertRefused(await app.call("/open", [["x-api-key", keys.expiring!.privateKey]]), 401, "api_key_expired");
    });

    test("a key without the route's permissions: 403 naming the query", async () => {
      const answer = await app.call("/admin", [["x-api-key", keys.reader!.privateKey]]);
      assertRefused(answer, 403, "insufficient_permissions");
      assert.match(String(answer.body.detail), /admin$/);
    });

    test("rate limited: 429 with Retry-After until the window ends; out of credits: 429 usage_exceeded", async () => {
      const limited = app.name === "express" ? keys.limitedExpress! : keys.limitedHono!;
      assert.equal((await app.call("/open", [["x-api-key", limited.privateKey]])).status, 200);
      // One use a minute: the next call is refused, unless a minute boundary
      // passed between the two, which can happen once.
      let refused = await app.call("/open", [["x-api-key", limited.privateKey]]);
      if (refused.status === 200) refused = await app.call("/open", [["x-api-key", limited.privateKey]]);
      assertRefused(refused, 429, "rate_limited");
      const wait = Number(refused.headers["retry-after"]);
      assert.ok(Number.isInteger(wait) && wait >= 1 && wait <= 60, `Retry-After ${refused.headers["retry-after"]}`);

      const empty = await app.call("/open", [["x-api-key", keys.empty!.privateKey]]);
      assertRefused(empty, 429, "usage_exceeded");
      assert.equal(empty.headers["retry-after"], undefined, "no refill: no wait to announce");
    });

    test("the client's failure budget: 429 rate_limited with Retry-After", async () => {
      const target = app.name === "express" ? keys.budgetExpress! : keys.budgetHono!;
      let answer: Answer | undefined;
      for (let i = 0; i < 15; i++) {
        answer = await app.call("/open", [["x-api-key", wrongSecret(target.privateKey, i)]]);
        if (answer.status === 429) break;
        assertRefused(answer, 401, "invalid_api_key");
      }
      assertRefused(answer!, 429, "rate_limited");
      assert.equal(answer!.headers["retry-after"], "5");
    });

    test("a route's cost is spent; the verification says what is left", async () => {
      const answer = await app.call("/charged", [["x-api-key", keys.metered!.privateKey]]);
      assert.equal(answer.status, 200);
      assert.deepEqual((answer.body.keymint as Record<string, unknown>).credits, { remaining: app.name === "express" ? 3 : 1 });
    });

    test("Keymint unreachable: 503 with Retry-After; a misconfigured route: the framework's error path", async () => {
      const down = await app.call("/unreachable", [["x-api-key", keys.reader!.privateKey]]);
      assert.equal(down.status, 503);
      assert.equal(down.body.code, "keymint_unavailable");
      assert.ok(Number(down.headers["retry-after"]) > 0);
      const broken = await app.call("/broken", [["x-api-key", keys.reader!.privateKey]]);
      assert.equal(broken.status, 500);
      assert.equal(broken.body.code, "route_error");
      assert.match(String(broken.body.detail), /validation_error/);
    });

    describe("cache", () => {
      test("a cache hit avoids a second call; refusals and metered keys are never cached", async () => {
        const counted = countingFetch();
        const cachedKm = new Keymint({ baseUrl: server.baseUrl, fetch: counted.fetch });
        const cache = new VerifyCache({ maxEntries: 10, ttlMs: 60_000 });
        app.route("/cached", cachedKm, { cache, permissions: "reports.read" });
        app.route("/cached-open", cachedKm, { cache });
        app.route("/cached-cost", cachedKm, { cache: true, cost: 1 });

        for (let i = 0; i < 3; i++) assert.equal((await app.call("/cached", [["x-api-key", keys.reader!.privateKey]])).status, 200);
        assert.equal(counted.calls(VERIFY), 1, "three requests, one verification");
        assert.equal(cache.stats.hits, 2);
        assert.equal((await app.call("/cached-open", [["x-api-key", keys.reader!.privateKey]])).status, 200);
        assert.equal(counted.calls(VERIFY), 2, "another permission query is another entry");

        for (let i = 0; i < 2; i++) assertRefused(await app.call("/cached-open", [["x-api-key", keys.revoked!.privateKey]]), 401, "api_key_revoked");
        assert.equal(counted.calls(VERIFY), 4, "a refusal is asked again");
        for (let i = 0; i < 2; i++) assertRefused(await app.call("/cached", [["x-api-key", keys.other!.privateKey], ["x-api-key", keys.reader!.privateKey]]), 401, "ambiguous_api_key");
        assert.equal(counted.calls(VERIFY), 4, "refused before asking");

        const credited = await admin.keys.create({ name: `credited-${app.name}`, credits: { remaining: 10 } });
        for (let i = 0; i < 2; i++) assert.equal((await app.call("/cached-open", [["x-api-key", credited.privateKey]])).status, 200);
        assert.equal(counted.calls(VERIFY), 6, "a key with credits spends them on every call: never cached");
        assert.equal((await admin.credits.get(credited.id))?.remaining, 8);

        for (let i = 0; i < 2; i++) assert.equal((await app.call("/cached-cost", [["x-api-key", keys.other!.privateKey]])).status, 200);
        assert.equal(counted.calls(VERIFY), 8, "a route with a cost never uses the cache");

        const shown = inspect(cache, { showHidden: true, depth: 10 });
        assert.ok(!shown.includes(keys.reader!.privateKey), "the cache never holds a key");
      });

      test("the cache is bounded (least recently used goes first) and entries expire", async () => {
        const counted = countingFetch();
        const cachedKm = new Keymint({ baseUrl: server.baseUrl, fetch: counted.fetch });
        let clock = Date.now();
        const cache = new VerifyCache({ maxEntries: 2, ttlMs: 5_000, now: () => clock });
        app.route("/bounded", cachedKm, { cache });
        const call = async (key: CreatedApiKey) => assert.equal((await app.call("/bounded", [["x-api-key", key.privateKey]])).status, 200);

        await call(keys.reader!);
        await call(keys.other!);
        await call(keys.reader!); // hit; reader is now the most recent
        assert.equal(counted.calls(VERIFY), 2);
        await call(keys.third!); // evicts other, the least recently used
        assert.equal(cache.size, 2);
        assert.equal(counted.calls(VERIFY), 3);
        await call(keys.reader!);
        assert.equal(counted.calls(VERIFY), 3, "reader stayed");
        await call(keys.other!);
        assert.equal(counted.calls(VERIFY), 4, "other was evicted");
        assert.equal(cache.size, 2);

        clock += 5_001;
        await call(keys.other!);
        assert.equal(counted.calls(VERIFY), 5, "past the TTL: asked again");
      });
    });
  });
}
