import assert from "node:assert/strict";
import { createServer as createHttpServer, type Server } from "node:http";
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";

import {
  AuthenticationError,
  ConflictError,
  ConnectionError,
  Keymint,
  KeymintError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  ServerError,
  TimeoutError,
  ValidationError,
} from "@keymint/client";

import { countingFetch, freePort, startKeymint, wrongSecret, type KeymintServer } from "./support.js";

let server: KeymintServer;

before(async () => {
  // Small body budgets, so that a real 503 `server_busy` can be provoked.
  server = await startKeymint({
    KEYMINT_SERVER__BODY_LIMIT_BYTES: "4096",
    KEYMINT_SERVER__BODY_MEMORY_BYTES: "4096",
    KEYMINT_SERVER__IMPORT_BODY_LIMIT_BYTES: "4096",
    KEYMINT_KEYS__MAX_ACTIVE_PER_ORG: "3",
  });
});

after(async () => {
  await server?.stop();
});

/** Asserts `promise` rejects with an instance of `type` carrying `status`, `code` and a request id. */
async function rejectsWith<T extends KeymintError>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => T,
  status: number,
  code: string,
): Promise<T> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof type, `expected ${type.name}, got ${String(caught)}`);
  assert.ok(caught instanceof KeymintError);
  assert.equal(caught.status, status);
  assert.equal(caught.code, code);
  if (status > 0) assert.match(caught.requestId ?? "", /^(?:[0-9a-f-]{36}|stub-\d+)$/, "the x-request-id");
  assert.ok(caught.message.includes(code));
  return caught;
}

/** Holds `bytes` of request bodies open on the server (two unfinished uploads). */
function holdBodies(port: number, token: string, bytes: number): Socket[] {
  const sockets: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const socket = connect(port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write(
      `POST /api/v2/api-keys HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: ${bytes}\r\n\r\n` +
        "a".repeat(bytes / 2 + 1),
    );
    sockets.push(socket);
  }
  return sockets;
}

describe("errors from a real Keymint", () => {
  test("401 AuthenticationError: no token, a bad token; the token is never shown", async () => {
    const noToken = new Keymint({ baseUrl: server.baseUrl });
    await rejectsWith(noToken.keys.list().firstPage(), AuthenticationError, 401, "not_authenticated");
    const badToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXRoYXQtaXMtd3Jvbmc";
    const km = new Keymint({ baseUrl: server.baseUrl, token: badToken });
    const error = await rejectsWith(km.keys.get("00000000-0000-4000-8000-000000000000"), AuthenticationError, 401, "invalid_token");
    for (const shown of [error.message, String(error), inspect(error), inspect(km, { depth: 5, showHidden: true }), JSON.stringify(km)]) {
      assert.ok(!shown.includes(badToken), "the token leaked");
    }
  });

  test("403 PermissionDeniedError: a token without an organisation", async () => {
    const km = new Keymint({ baseUrl: server.baseUrl, token: server.token({ org: null }) });
    await rejectsWith(km.keys.list().firstPage(), PermissionDeniedError, 403, "no_organization");
  });

  test("404 NotFoundError, also for another organisation's key", async () => {
    const { km } = server.client();
    const { km: other } = server.client();
    const key = await km.keys.create({ name: "mine" });
    await rejectsWith(other.keys.get(key.id), NotFoundError, 404, "not_found");
    await rejectsWith(other.keys.revoke(key.id), NotFoundError, 404, "not_found");
  });

  test("409 ConflictError: the organisation's key limit", async () => {
    const { km } = server.client();
    for (let i = 0; i < 3; i++) await km.keys.create({ name: `k${i}` });
    await rejectsWith(km.keys.create({ name: "one too many" }), ConflictError, 409, "key_limit_reached");
  });

  test("422 ValidationError names every failing field (body, path, an empty update)", async () => {
    const { km } = server.client();
    const error = await rejectsWith(
      km.keys.create({ name: "", environment: "prod" as "live", scope: "all" } as never),
      ValidationError,
      422,
      "validation_error",
    );
    assert.deepEqual(
      error.fieldErrors.map((field) => [field.loc.join("."), field.type]),
      [
        ["body.name", "string_too_short"],
        ["body.environment", "literal_error"],
        ["body.scope", "extra_forbidden"],
      ],
    );
    assert.match(error.detail, /body\.name: /);
    const path = await rejectsWith(km.keys.get("not-a-uuid"), ValidationError, 422, "validation_error");
    assert.deepEqual(path.fieldErrors[0]?.loc, ["path", "key_id"]);
    await rejectsWith(km.keys.update((await km.keys.create({ name: "x" })).id, {}), ValidationError, 422, "validation_error");
  });

  test("429 RateLimitError with retryAfter: leak reports of a wrong secret spend the failure budget", async () => {
    const { km } = server.client();
    const key = await km.keys.create({ name: "target" });
    const anonymous = new Keymint({ baseUrl: server.baseUrl });
    let limited: RateLimitError | undefined;
    for (let i = 0; i < 15 && !limited; i++) {
      try {
        await anonymous.reportLeak(wrongSecret(key.privateKey, i));
      } catch (error) {
        if (error instanceof RateLimitError) limited = error;
        else throw error;
      }
    }
    assert.ok(limited, "the per-key failure budget (10) ran out");
    assert.equal(limited.status, 429);
    assert.equal(limited.code, "rate_limited");
    assert.ok(limited.retryAfter !== null && limited.retryAfter > 0);
    assert.ok(limited.requestId);
    assert.equal((await km.keys.get(key.id)).status, "active", "the key itself is untouched");
  });

  test("503 ServerError server_busy (real), retried after Retry-After because the body was refused unread", async () => {
    const token = server.token();
    let holders = holdBodies(server.port, token, 4000);
    await new Promise((r) => setTimeout(r, 300));
    const once = new Keymint({ baseUrl: server.baseUrl, token, maxRetries: 0 });
    const busy = await rejectsWith(once.keys.create({ name: "busy", meta: { pad: "p".repeat(500) } }), ServerError, 503, "server_busy");
    assert.ok(busy.retryAfter !== null && busy.retryAfter > 0);

    const counter = countingFetch();
    const patient = new Keymint({ baseUrl: server.baseUrl, token, maxRetries: 1, fetch: counter.fetch });
    const pending = patient.keys.create({ name: "eventually", meta: { pad: "p".repeat(500) } });
    await new Promise((r) => setTimeout(r, 500));
    holders.forEach((socket) => socket.destroy());
    holders = [];
    const created = await pending;
    assert.equal(created.name, "eventually");
    assert.equal(counter.calls("/api/v2/api-keys"), 2, "one refusal, one retry");
  });
});

describe("transport", () => {
  let stub: Server;
  let stubUrl: string;
  let answers: { status: number; headers?: Record<string, string>; body?: unknown }[] = [];
  let hits = 0;

  before(async () => {
    stub = createHttpServer((req, res) => {
      hits++;
      const answer = answers.shift() ?? { status: 200, body: [] };
      res.writeHead(answer.status, { "content-type": "application/json", "x-request-id": `stub-${hits}`, ...answer.headers });
      res.end(answer.body === undefined ? "" : JSON.stringify(answer.body));
    });
    await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
    stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => stub.close(resolve));
  });

  test("an idempotent request is retried on 503 and 429, honouring Retry-After", async () => {
    hits = 0;
    answers = [
      { status: 503, headers: { "retry-after": "0" }, body: { detail: "Storage is temporarily unavailable", code: "storage_unavailable" } },
      { status: 429, headers: { "retry-after": "1" }, body: { detail: "slow down", code: "rate_limited" } },
      { status: 200, body: [] },
    ];
    const km = new Keymint({ baseUrl: stubUrl, token: "t" });
    const started = Date.now();
    const page = await km.keys.list().firstPage();
    assert.deepEqual(page.items, []);
    assert.equal(hits, 3);
    assert.ok(Date.now() - started >= 900, "waited the Retry-After second");
  });

  test("retries stop at maxRetries with the last error; a POST is not retried on a 5xx", async () => {
    hits = 0;
    answers = Array.from({ length: 5 }, () => ({ status: 500, body: { detail: "Internal Server Error", code: "internal_error" } }));
    const km = new Keymint({ baseUrl: stubUrl, token: "t", maxRetries: 2 });
    const error = await rejectsWith(km.keys.get("id"), ServerError, 500, "internal_error");
    assert.equal(error.requestId, "stub-3");
    assert.equal(hits, 3);
    hits = 0;
    answers = [{ status: 503, body: { detail: "Storage is temporarily unavailable", code: "storage_unavailable" } }];
    await rejectsWith(km.keys.create({ name: "x" }), ServerError, 503, "storage_unavailable");
    assert.equal(hits, 1, "a create may have happened: never repeated");
    answers = [];
  });

  test("a Retry-After longer than maxRetryAfterSeconds is not waited out", async () => {
    hits = 0;
    answers = [{ status: 429, headers: { "retry-after": "3600" }, body: { detail: "later", code: "rate_limited" } }];
    const km = new Keymint({ baseUrl: stubUrl, token: "t" });
    const error = await rejectsWith(km.keys.get("id"), RateLimitError, 429, "rate_limited");
    assert.equal(error.retryAfter, 3600);
    assert.equal(hits, 1);
  });

  test("ConnectionError when nothing listens; even a POST is retried then (it was never sent)", async () => {
    const port = await freePort();
    const counter = countingFetch();
    const km = new Keymint({ baseUrl: `http://127.0.0.1:${port}`, token: "secret-token-value", maxRetries: 1, fetch: counter.fetch });
    const error = await rejectsWith(km.keys.create({ name: "x" }), ConnectionError, 0, "connection_error");
    assert.equal(error.requestId, null);
    assert.equal(counter.calls(), 2);
    assert.ok(!inspect(error).includes("secret-token-value"));
  });

  test("TimeoutError when the server never answers; aborting stops at once", async () => {
    const sockets: Socket[] = [];
    const silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const km = new Keymint({ baseUrl: url, token: "t", timeoutMs: 200, maxRetries: 0 });
      const error = await rejectsWith(km.keys.get("id"), TimeoutError, 0, "timeout");
      assert.ok(error instanceof ConnectionError);
      const controller = new AbortController();
      const pending = km.keys.get("id", { signal: controller.signal, timeoutMs: 10_000 });
      setTimeout(() => controller.abort(new Error("stop")), 50);
      await assert.rejects(pending, /stop/);
    } finally {
      sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test("a path prefix in the base URL is kept, also on the next page", async () => {
    const seen: string[] = [];
    const km = new Keymint({
      baseUrl: "http://keymint.internal/keymint/",
      token: "t",
      fetch: async (input) => {
        const url = new URL(String(input));
        seen.push(url.pathname + url.search);
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (!url.searchParams.has("cursor")) headers.link = '</api/v2/api-keys?limit=1&cursor=1.abc>; rel="next"';
        return new Response("[]", { status: 200, headers });
      },
    });
    await km.keys.list({ limit: 1 }).toArray();
    assert.deepEqual(seen, ["/keymint/api/v2/api-keys?limit=1", "/keymint/api/v2/api-keys?limit=1&cursor=1.abc"]);
  });

  test("a base URL with credentials is refused without echoing them", () => {
    assert.throws(
      () => new Keymint({ baseUrl: "https://user:hunter2@keys.example.com" }),
      (error: unknown) => error instanceof TypeError && !error.message.includes("hunter2"),
    );
  });
});
