/**
 * What the Express and Hono middleware share: reading the presented key the
 * way Keymint does, asking Keymint, and turning the verdict into the answer
 * Keymint's own Rust extractor gives (401 / 403 / 429 with `Retry-After` /
 * 503). Framework-free, so both adapters behave identically.
 */

import { VerifyCache, sha256Hex, type VerifyCacheOptions } from "./cache.js";
import { KeymintError } from "./errors.js";
import type { Keymint } from "./keymint.js";
import type { RateLimitCost, VerifyResult } from "./types.js";

/** A static value or one computed from the request (Express `req`, Hono `c`). */
export type PerRequest<T, Ctx> = T | ((ctx: Ctx) => T | Promise<T>);

export interface RequireApiKeyOptions<Ctx> {
  /** A permission query the key must satisfy (`"billing.read AND (billing.write OR admin)"`): 403 otherwise. */
  permissions?: PerRequest<string | undefined, Ctx>;
  /** Credits the call costs (Keymint's default: 1 when the key has credits): 429 `usage_exceeded` without them. */
  cost?: PerRequest<number | undefined, Ctx>;
  /** The key's rate limits to apply, with their cost: 429 `rate_limited` over them. */
  ratelimits?: PerRequest<readonly RateLimitCost[] | undefined, Ctx>;
  /** Tags to count the call under in usage analytics (`["path=/v1/charges"]`). */
  tags?: PerRequest<readonly string[] | undefined, Ctx>;
  /**
   * A local cache of VALID verdicts: `true` (1 000 entries, 10 s), options, or
   * a {@link VerifyCache} to share between routes. Off by default. Only keys
   * without credits or rate limits are cached, and never for a route with a
   * `cost` or `ratelimits`: a cached call would spend nothing. A cache hit is
   * not counted in Keymint's analytics and does not move `last_used_at`, and
   * a revoked key keeps passing until its entry's TTL ends.
   */
  cache?: boolean | VerifyCacheOptions | VerifyCache<VerifyResult>;
  /** Timeout of each verification call, in ms. Default 5 000. */
  timeoutMs?: number;
}

/** The API key a request presents, read from its headers. */
export type Presented =
  | { kind: "key"; key: string }
  | { kind: "none" }
  | { kind: "ambiguous" };

/** What to answer, or whom to let through. */
export type Decision =
  | { kind: "allow"; result: VerifyResult }
  | { kind: "deny"; status: 401 | 403 | 429 | 503; code: string; detail: string; headers: Record<string, string> }
  | { kind: "error"; error: unknown };

const WWW_AUTHENTICATE = 'Bearer realm="api-key"';
/** What Keymint's extractor sends with a failure-budget 429 and a 503. */
const DEFAULT_RETRY_AFTER = "5";

/**
 * The key in `x-api-key` or `Authorization: Bearer` (one of each at most).
 * `xApiKey` and `authorization` hold every value of each header as received;
 * a header given twice, or two different keys, is ambiguous (Keymint's rule).
 * A bearer JWT or another scheme presents no key.
 */
export function presentedApiKey(xApiKey: readonly string[], authorization: readonly string[]): Presented {
  if (xApiKey.length > 1 || authorization.length > 1) return { kind: "ambiguous" };
  const fromHeader = xApiKey.length === 1 ? (xApiKey[0] ?? "").trim() : undefined;
  let bearer: string | undefined;
  if (authorization.length === 1) {
    const value = (authorization[0] ?? "").trim();
    const space = value.indexOf(" ");
    if (space > 0) {
      const scheme = value.slice(0, space);
      const token = value.slice(space + 1).trim();
      if (scheme.toLowerCase() === "bearer" && !isJwt(token)) bearer = token;
    }
  }
  if (fromHeader !== undefined && bearer !== undefined && fromHeader !== bearer) return { kind: "ambiguous" };
  const key = fromHeader ?? bearer;
  return key === undefined ? { kind: "none" } : { kind: "key", key };
}

/**
 * Every value of a header from a Fetch `Headers`, which joins repeated headers
 * with ", ". Keys never contain white space, so ", " always separates two.
 */
export function splitJoined(value: string | null): string[] {
  if (value === null) return [];
  return value.split(", ");
}

function isJwt(token: string): boolean {
  return token.startsWith("eyJ") && token.split(".").length === 3;
}

async function resolve<T, Ctx>(value: PerRequest<T, Ctx> | undefined, ctx: Ctx): Promise<T | undefined> {
  return typeof value === "function" ? await (value as (ctx: Ctx) => T | Promise<T>)(ctx) : value;
}

/** Seconds from now until `at` (RFC 3339), at least 1, as the extractor rounds. */
function secondsUntil(at: string, now: number): number | null {
  const when = Date.parse(at);
  if (Number.isNaN(when)) return null;
  return Math.max(1, Math.ceil((when - now) / 1000));
}

/**
 * `Retry-After` for a key's own RATE_LIMITED: the latest reset among the limits
 * that refused (fewer left than this call takes of them: a refused call spends
 * nothing, so the answer shows what refused it), else among all that applied.
 */
export function retryAfterForLimits(result: VerifyResult, costs: readonly RateLimitCost[], now = Date.now()): number | null {
  const limits = result.ratelimits ?? [];
  const cost = (name: string) => costs.find((limit) => limit.name === name)?.cost ?? 1;
  const refused = limits.filter((limit) => limit.remaining < Math.max(cost(limit.name), 1));
  let seconds: number | null = null;
  for (const limit of refused.length ? refused : limits) {
    const wait = secondsUntil(limit.reset, now);
    if (wait !== null && (seconds === null || wait > seconds)) seconds = wait;
  }
  return seconds;
}

function deny(
  status: 401 | 403 | 429 | 503,
  code: string,
  detail: string,
  headers: Record<string, string> = {},
): Decision {
  return { kind: "deny", status, code, detail, headers };
}

function rejected(code: string, detail: string): Decision {
  return deny(401, code, detail, { "www-authenticate": WWW_AUTHENTICATE });
}

/** The verdict for `result` as the Rust extractor answers it. */
export function decide(result: VerifyResult, permissions: string | undefined, costs: readonly RateLimitCost[]): Decision {
  if (result.valid && result.code === "VALID") return { kind: "allow", result };
  switch (result.code) {
    case "REVOKED":
      return rejected("api_key_revoked", "The API key has been revoked");
    case "EXPIRED":
      return rejected("api_key_expired", "The API key has expired");
    case "INSUFFICIENT_PERMISSIONS":
      return deny(
        403,
        "insufficient_permissions",
        permissions
          ? `The API key lacks the permissions this call requires: ${permissions}`
          : "The API key lacks the permissions this call requires",
      );
    case "RATE_LIMITED": {
      if (result.keyId === null) {
        // The failure budget of this client (Keymint sees this service), no key named.
        return deny(429, "rate_limited", "Too many failed attempts; retry later", { "retry-after": DEFAULT_RETRY_AFTER });
      }
      const wait = retryAfterForLimits(result, costs);
      return deny(
        429,
        "rate_limited",
        "The API key's rate limit is reached; retry later",
        wait === null ? {} : { "retry-after": String(wait) },
      );
    }
    case "USAGE_EXCEEDED":
      // The verify answer does not say when the next refill is, so no Retry-After.
      return deny(429, "usage_exceeded", "The API key has no credits left for this call");
    default:
      // NOT_FOUND, and any code this client does not know: not valid.
      return rejected("invalid_api_key", "The API key is not valid");
  }
}

/** The shared middleware logic, built once per `requireApiKey(...)`. */
export function createGuard<Ctx>(km: Keymint, options: RequireApiKeyOptions<Ctx> = {}) {
  const cache =
    options.cache instanceof VerifyCache
      ? options.cache
      : options.cache
        ? new VerifyCache<VerifyResult>(options.cache === true ? {} : options.cache)
        : null;
  if (cache) {
    const subtle = (globalThis as { crypto?: { subtle?: unknown } }).crypto?.subtle;
    if (!subtle) throw new Error("requireApiKey: `cache` needs Web Crypto (globalThis.crypto.subtle)");
  }
  const timeoutMs = options.timeoutMs ?? 5_000;

  async function check(presented: Presented, ctx: Ctx): Promise<Decision> {
    if (presented.kind === "ambiguous") {
      return rejected("ambiguous_api_key", "Send the API key once: in one x-api-key header or one Authorization header");
    }
    if (presented.kind === "none") {
      return rejected("api_key_required", "An API key is required: send it as x-api-key or Authorization: Bearer");
    }
    if (presented.key === "") return rejected("invalid_api_key", "The API key is not valid");
    let permissions: string | undefined;
    let cost: number | undefined;
    let ratelimits: readonly RateLimitCost[];
    let tags: readonly string[] | undefined;
    try {
      permissions = await resolve(options.permissions, ctx);
      cost = await resolve(options.cost, ctx);
      ratelimits = (await resolve(options.ratelimits, ctx)) ?? [];
      tags = await resolve(options.tags, ctx);
    } catch (error) {
      return { kind: "error", error };
    }
    const spends = (cost !== undefined && cost > 0) || ratelimits.length > 0;
    const cacheId = cache && !spends ? `${await sha256Hex(presented.key)}\n${permissions ?? ""}` : null;
    if (cache && cacheId !== null) {
      const hit = cache.get(cacheId);
      if (hit) return { kind: "allow", result: hit };
    }
    let result: VerifyResult;
    try {
      result = await km.verify(presented.key, {
        permissions,
        credits: cost === undefined ? undefined : { cost },
        ratelimits: ratelimits.length ? ratelimits : undefined,
        tags: tags && tags.length ? tags : undefined,
        timeoutMs,
      });
    } catch (error) {
      if (error instanceof KeymintError && (error.status === 0 || error.status >= 500 || error.status === 429 || error.status === 408)) {
        const retryAfter = error.retryAfter === null ? DEFAULT_RETRY_AFTER : String(error.retryAfter);
        return deny(503, "keymint_unavailable", "API keys cannot be verified right now; retry later", { "retry-after": retryAfter });
      }
      // A 4xx is this route's configuration (a malformed permission query, a
      // rate limit the key does not have): a bug to surface, as the extractor's 500.
      return { kind: "error", error };
    }
    const decision = decide(result, permissions, ratelimits);
    if (
      cache &&
      cacheId !== null &&
      decision.kind === "allow" &&
      result.credits === null &&
      (result.ratelimits ?? []).length === 0
    ) {
      const expires = result.expiresAt ? Date.parse(result.expiresAt) : Number.NaN;
      cache.set(cacheId, result, Number.isNaN(expires) ? undefined : expires);
    }
    return decision;
  }

  return { check, cache };
}
