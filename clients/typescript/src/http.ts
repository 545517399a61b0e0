/**
 * The transport: one `fetch` per attempt, timeouts, retries, error mapping.
 * Uses only what every runtime with `fetch` has (Node ≥ 18, Deno, Bun,
 * Cloudflare Workers, browsers): no Node built-ins.
 */

import { ConnectionError, KeymintError, TimeoutError, errorFromResponse } from "./errors.js";

/** A value a query string can carry; arrays repeat the parameter (`?tag=a&tag=b`). */
export type QueryValue = string | number | boolean | Date | null | undefined | readonly (string | number | boolean | Date)[];

/** The bearer token, or a function returning the current one (called before each request). */
export type TokenSource = string | (() => string | Promise<string>);

export interface ClientOptions {
  /** Where Keymint listens, e.g. `https://keys.example.com` (a path prefix is kept). */
  baseUrl: string;
  /**
   * The JWT for management calls (`Authorization: Bearer …`), or a function
   * returning the current one. Not needed for {@link Keymint.verify}.
   */
  token?: TokenSource;
  /** Per attempt, covering the answer's body too. Default 30 000 ms. */
  timeoutMs?: number;
  /** Further attempts after a failure that may be retried (see README). Default 2. */
  maxRetries?: number;
  /** A `fetch` of your own (instrumented, proxied, a test double). Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** Longest `Retry-After` the client waits out by itself (seconds); longer ones are thrown. Default 60. */
  maxRetryAfterSeconds?: number;
}

/** Per-call options every method accepts. */
export interface RequestOptions {
  /** Aborts the call (each attempt and the waits between them). */
  signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` for this call. */
  timeoutMs?: number;
  /** Overrides the client's `maxRetries` for this call. */
  maxRetries?: number;
}

export interface HttpRequest extends RequestOptions {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Path below the base URL (`/api/v2/api-keys`), or an absolute URL from a `Link` header. */
  path: string;
  query?: Record<string, QueryValue>;
  /** JSON body; `undefined` sends none. */
  body?: unknown;
  /** Sends `Authorization: Bearer <token>`; default true. */
  auth?: boolean;
  idempotencyKey?: string;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  requestId: string | null;
  /** The URL that answered (for resolving `Link` headers). */
  url: URL;
}

const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "PUT", "DELETE"]);
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
/** Errors whose request never left this machine: safe to retry whatever the method. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT"]);

export class HttpClient {
  readonly baseUrl: URL;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly maxRetryAfterSeconds: number;
  // Private fields: never shown by util.inspect, console.log or JSON.stringify.
  readonly #token: TokenSource | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    if (!options || typeof options.baseUrl !== "string") throw new TypeError("Keymint: baseUrl is required");
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch {
      throw new TypeError("Keymint: baseUrl is not an absolute URL");
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new TypeError("Keymint: baseUrl must be http(s)");
    if (base.username || base.password) {
      // fetch refuses such URLs, and the message must not carry them.
      throw new TypeError("Keymint: baseUrl must not contain credentials; pass the token as `token`");
    }
    base.search = "";
    base.hash = "";
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    this.baseUrl = base;
    this.timeoutMs = positive(options.timeoutMs, 30_000, "timeoutMs");
    this.maxRetries = nonNegative(options.maxRetries, 2, "maxRetries");
    this.maxRetryAfterSeconds = nonNegative(options.maxRetryAfterSeconds, 60, "maxRetryAfterSeconds");
    this.#token = options.token;
    const chosen = options.fetch ?? (globalThis.fetch as typeof fetch | undefined);
    if (typeof chosen !== "function") throw new TypeError("Keymint: no global fetch; pass options.fetch");
    // Called unbound: some runtimes' fetch refuses another `this`.
    this.#fetch = options.fetch ? options.fetch : (input, init) => globalThis.fetch(input, init);
  }

  /** The URL of `path` (relative to the base URL) with `query`. */
  url(path: string, query?: Record<string, QueryValue>): URL {
    const url = /^https?:\/\//i.test(path) ? new URL(path) : new URL(path.replace(/^\/+/, ""), this.baseUrl);
    if (query) {
      for (const [name, value] of Object.entries(query)) {
        for (const item of Array.isArray(value) ? value : [value]) {
          if (item === undefined || item === null) continue;
          url.searchParams.append(name, item instanceof Date ? item.toISOString() : String(item));
        }
      }
    }
    return url;
  }

  /**
   * Sends `request`, retrying what may be retried, and returns the answer of
   * a 2xx; throws a {@link KeymintError} for anything else.
   */
  async request<T = unknown>(request: HttpRequest): Promise<HttpResponse<T>> {
    const url = this.url(request.path, request.query);
    const timeoutMs = request.timeoutMs === undefined ? this.timeoutMs : positive(request.timeoutMs, 0, "timeoutMs");
    const maxRetries = request.maxRetries === undefined ? this.maxRetries : nonNegative(request.maxRetries, 0, "maxRetries");
    const idempotent = IDEMPOTENT_METHODS.has(request.method) || request.idempotencyKey !== undefined;
    const headers: Record<string, string> = { accept: "application/json" };
    let payload: string | undefined;
    if (request.body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(request.body);
    }
    if (request.idempotencyKey !== undefined) headers["idempotency-key"] = request.idempotencyKey;

    for (let attempt = 0; ; attempt++) {
      if (request.auth !== false && this.#token !== undefined) {
        const token = typeof this.#token === "function" ? await this.#token() : this.#token;
        headers.authorization = `Bearer ${token}`;
      }
      let outcome: HttpResponse | KeymintError;
      let mayRetry: boolean;
      try {
        outcome = await this.#attempt(url, request, headers, payload, timeoutMs);
        if (outcome instanceof KeymintError) {
          // 503 server_busy is answered before the body is read: nothing happened.
          const refusedUnread = outcome.status === 503 && outcome.code === "server_busy";
          mayRetry = RETRYABLE_STATUSES.has(outcome.status) && (idempotent || refusedUnread);
        } else {
          return outcome as HttpResponse<T>;
        }
      } catch (error) {
        if (!(error instanceof ConnectionError)) throw error;
        outcome = error;
        mayRetry = idempotent || notSent(error);
      }
      if (!mayRetry || attempt >= maxRetries) throw outcome;
      let waitMs = backoffMs(attempt);
      if (outcome.retryAfter !== null) {
        if (outcome.retryAfter > this.maxRetryAfterSeconds) throw outcome;
        waitMs = Math.max(outcome.retryAfter * 1000, 0);
      }
      await sleep(waitMs, request.signal);
    }
  }

  async #attempt(
    url: URL,
    request: HttpRequest,
    headers: Record<string, string>,
    payload: string | undefined,
    timeoutMs: number,
  ): Promise<HttpResponse | KeymintError> {
    const signal = request.signal;
    signal?.throwIfAborted();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      let response: Response;
      try {
        response = await this.#fetch(url, {
          method: request.method,
          headers,
          body: payload,
          signal: controller.signal,
          redirect: "manual",
        });
      } catch (error) {
        throw this.#failure(error, timedOut, timeoutMs, signal);
      }
      let text: string;
      try {
        text = await response.text();
      } catch (error) {
        throw this.#failure(error, timedOut, timeoutMs, signal);
      }
      const requestId = response.headers.get("x-request-id");
      let body: unknown = null;
      if (text.length > 0) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      if (response.status >= 200 && response.status < 300) {
        if (text.length > 0 && typeof body === "string" && isJson(response.headers)) {
          return errorFromResponse(502, { code: "invalid_response", detail: "Keymint answered malformed JSON" }, requestId, null);
        }
        return { status: response.status, headers: response.headers, body, requestId, url };
      }
      return errorFromResponse(response.status, body, requestId, parseRetryAfter(response.headers.get("retry-after")));
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  #failure(error: unknown, timedOut: boolean, timeoutMs: number, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return signal.reason ?? error;
    if (timedOut) return new TimeoutError(timeoutMs);
    // Describe the failure by its cause's code only: messages of some fetch
    // implementations repeat the URL, which may be sensitive in logs.
    const code = causeCode(error);
    return new ConnectionError(code ? `cannot reach Keymint (${code})` : "cannot reach Keymint", error);
  }
}

function isJson(headers: Headers): boolean {
  return /json/i.test(headers.get("content-type") ?? "");
}

function causeCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function notSent(error: ConnectionError): boolean {
  const code = causeCode(error.cause);
  return code !== undefined && NOT_SENT_CODES.has(code);
}

/** `Retry-After` in seconds: delta-seconds or an HTTP date; `null` if absent or unreadable. */
export function parseRetryAfter(value: string | null): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** 250 ms, 500 ms, 1 s, … capped at 5 s, less a random half (so retries spread out). */
function backoffMs(attempt: number): number {
  const full = Math.min(250 * 2 ** attempt, 5_000);
  return full / 2 + Math.random() * (full / 2);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`Keymint: ${name} must be a positive number`);
  return value;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`Keymint: ${name} must be a non-negative integer`);
  return value;
}
