/**
 * Test support: a real Keymint process per test file, on a free port, with a
 * throwaway SQLite database in a temporary directory, killed at the end.
 *
 * The binary is `KEYMINT_BIN` (default: the checkout's `target/debug/keymint`). It runs with its
 * working directory in the temporary directory, so no `config/` folder of a
 * checkout is read. Tokens are HS256 JWTs signed here with a secret this
 * process gives the server (`KEYMINT_AUTH__HS256_SECRET`).
 */

import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { Keymint } from "@keymint/client";

// Compiled to build/test/support.js: the checkout's root is four levels up.
export const KEYMINT_BIN = resolve(
  process.env.KEYMINT_BIN ?? fileURLToPath(new URL("../../../../target/debug/keymint", import.meta.url)),
);

export interface KeymintServer {
  baseUrl: string;
  port: number;
  /** A fresh organisation's token (each call: a new organisation unless `org` is given). */
  token(claims?: { org?: string | null; sub?: string; ttlSeconds?: number }): string;
  /** A client for a fresh organisation (or `org`). */
  client(options?: { org?: string; fetch?: typeof fetch; maxRetries?: number; timeoutMs?: number }): { km: Keymint; org: string };
  /** The server's output so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString("base64url");
}

/** An HS256 JWT for `payload`, signed with `secret`. */
export function signJwt(payload: Record<string, unknown>, secret: string): string {
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = base64url(JSON.stringify(payload));
  const signature = createHmac("sha256", secret).update(`${header}.${body}`).digest("base64url");
  return `${header}.${body}.${signature}`;
}

async function waitReady(baseUrl: string, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`keymint exited with ${child.exitCode}:\n${output()}`);
    try {
      const response = await fetch(`${baseUrl}/readyz`);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`keymint not ready within ${timeoutMs} ms:\n${output()}`);
}

/** Runs `KEYMINT_BIN serve` with `env` until it answers `/readyz`. */
export async function startKeymint(extraEnv: Record<string, string> = {}): Promise<KeymintServer> {
  const dir = mkdtempSync(join(tmpdir(), "keymint-ts-"));
  const secret = randomBytes(32).toString("hex");
  const baseEnv: Record<string, string> = {
    KEYMINT_AUTH__HS256_SECRET: secret,
    KEYMINT_DATABASE__URL: `sqlite://${join(dir, "keymint.db")}?mode=rwc`,
    KEYMINT_WEBHOOKS__ALLOW_HTTP: "true",
    KEYMINT_WEBHOOKS__ALLOW_PRIVATE_TARGETS: "true",
    KEYMINT_WEBHOOKS__POLL_INTERVAL_MS: "200",
    KEYMINT_VERIFY__USAGE_FLUSH_SECONDS: "1",
    KEYMINT_LOG__LEVEL: "warn",
    KEYMINT_METRICS__ENABLED: "false",
    KEYMINT_CONSOLE__ENABLED: "false",
    ...extraEnv,
  };
  // Releases that have `analytics.flush_seconds` take it (their default is a
  // minute); earlier ones refuse the unknown key, so try with it, then without.
  const attempts = [{ KEYMINT_ANALYTICS__FLUSH_SECONDS: "1" }, {}];
  let lastError: unknown;
  for (const optional of attempts) {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    let log = "";
    const child = spawn(KEYMINT_BIN, ["serve"], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, ...baseEnv, ...optional, KEYMINT_SERVER__LISTEN: `127.0.0.1:${port}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (chunk: Buffer) => (log += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
    const output = () => log;
    try {
      await waitReady(baseUrl, child, output, 60_000);
    } catch (error) {
      child.kill("SIGKILL");
      lastError = error;
      if (/flush_seconds/.test(log) && Object.keys(optional).length) continue;
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const token: KeymintServer["token"] = (claims = {}) => {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        sub: claims.sub ?? "ts-client-tests",
        iat: now,
        exp: now + (claims.ttlSeconds ?? 3600),
      };
      if (claims.org !== null) payload.org_id = claims.org ?? randomUUID();
      return signJwt(payload, secret);
    };
    return {
      baseUrl,
      port,
      token,
      client(options = {}) {
        const org = options.org ?? randomUUID();
        const km = new Keymint({
          baseUrl,
          token: token({ org }),
          fetch: options.fetch,
          maxRetries: options.maxRetries,
          timeoutMs: options.timeoutMs,
        });
        return { km, org };
      },
      output,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once("exit", r));
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  throw lastError;
}

/** A `fetch` that counts calls per path (e.g. `/api/v2/api-keys/verify`). */
export function countingFetch(): { fetch: typeof fetch; calls: (path?: string) => number } {
  const seen: string[] = [];
  const counted: typeof fetch = (input, init) => {
    const url = input instanceof URL ? input : new URL(typeof input === "string" ? input : input.url);
    seen.push(url.pathname);
    return fetch(input, init);
  };
  return { fetch: counted, calls: (path) => (path === undefined ? seen.length : seen.filter((p) => p === path).length) };
}

/** Polls `check` until it returns a value (not `undefined`), or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of Buffer.from(text)) crc = (CRC_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * `key` with one character of its secret changed and a correct checksum: a
 * well-formed key of the same lookup id whose secret is wrong (it reaches the
 * failure budgets, unlike a typo, which the checksum refuses for free).
 */
export function wrongSecret(key: string, variant = 0): string {
  const payload = key.slice(0, -6);
  const at = payload.length - 1 - (variant % 40);
  const current = payload[at] ?? "0";
  const replacement = BASE62[(BASE62.indexOf(current) + 1 + Math.floor(variant / 40)) % 62] ?? "0";
  const changed = payload.slice(0, at) + replacement + payload.slice(at + 1);
  let value = crc32(changed);
  let checksum = "";
  for (let i = 0; i < 6; i++) {
    checksum = (BASE62[value % 62] ?? "0") + checksum;
    value = Math.floor(value / 62);
  }
  return changed + checksum;
}
