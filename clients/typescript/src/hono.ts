/**
 * `@keymint/client/hono`: Hono middleware that lets a request through only
 * with a valid Keymint API key; the verification is in `c.get("keymint")`.
 *
 * ```ts
 * import { requireApiKey, type KeymintVariables } from "@keymint/client/hono";
 * const app = new Hono<{ Variables: KeymintVariables }>();
 * app.use("/v1/*", requireApiKey(km, { permissions: "reports.read" }));
 * app.get("/v1/reports", (c) => c.json({ org: c.get("keymint").orgId }));
 * ```
 */

import type { Context, MiddlewareHandler } from "hono";

import { createGuard, presentedApiKey, splitJoined, type Presented, type RequireApiKeyOptions } from "./guard.js";
import type { Keymint } from "./keymint.js";
import type { VerifyResult } from "./types.js";

export { VerifyCache, type VerifyCacheOptions } from "./cache.js";
export type { PerRequest } from "./guard.js";

/** The variables the middleware sets: `c.get("keymint")`. */
export type KeymintVariables = { keymint: VerifyResult };

export type HonoRequireApiKeyOptions = RequireApiKeyOptions<Context>;

/**
 * The key a Fetch `Request` presents (`x-api-key` or `Authorization: Bearer`),
 * by Keymint's rules. `Headers` joins a repeated header with ", ", which no
 * key contains, so a repeated header is still seen (and refused).
 */
export function presentedKey(headers: Headers): Presented {
  return presentedApiKey(splitJoined(headers.get("x-api-key")), splitJoined(headers.get("authorization")));
}

/**
 * Middleware requiring a valid API key in `x-api-key` or `Authorization:
 * Bearer`, with the same answers as the Express middleware (and Keymint's
 * Rust extractor): 401 with `WWW-Authenticate`, 403, 429 with `Retry-After`
 * when known, 503 when Keymint cannot answer. A valid key's verification is
 * set as `c.get("keymint")`. A route misconfiguration Keymint refuses is
 * thrown, for `app.onError`.
 */
export function requireApiKey(
  km: Keymint,
  options: HonoRequireApiKeyOptions = {},
): MiddlewareHandler<{ Variables: KeymintVariables }> {
  const guard = createGuard<Context>(km, options);
  return async (c, next) => {
    const decision = await guard.check(presentedKey(c.req.raw.headers), c);
    if (decision.kind === "allow") {
      c.set("keymint", decision.result);
      await next();
      return;
    }
    if (decision.kind === "error") throw decision.error;
    return c.json({ detail: decision.detail, code: decision.code }, decision.status, {
      ...decision.headers,
      "cache-control": "no-store",
    });
  };
}
