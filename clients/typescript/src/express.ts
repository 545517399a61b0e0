/**
 * `@keymint/client/express`: Express (4 and 5) middleware that lets a request
 * through only with a valid Keymint API key.
 *
 * ```ts
 * import { requireApiKey } from "@keymint/client/express";
 * app.get("/v1/reports", requireApiKey(km, { permissions: "reports.read" }), (req, res) => {
 *   res.json({ org: req.keymint!.orgId });
 * });
 * ```
 *
 * At run time it imports nothing of Express and uses only Node's `res.statusCode`,
 * `setHeader` and `end`, so it also fits Connect. Its types default to
 * Express's `Request` (from `@types/express`).
 */

import type { Request as ExpressRequest } from "express";

import { createGuard, presentedApiKey, type Decision, type Presented, type RequireApiKeyOptions } from "./guard.js";
import type { Keymint } from "./keymint.js";
import type { VerifyResult } from "./types.js";

export { VerifyCache, type VerifyCacheOptions } from "./cache.js";
export type { PerRequest } from "./guard.js";

declare global {
  // Express's own request type gains the verdict (declaration merging).
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verification that let this request in, set by `requireApiKey`. */
      keymint?: VerifyResult;
    }
  }
}

/** What the middleware reads of a request. */
export interface ExpressLikeRequest {
  headers: Record<string, string | string[] | undefined>;
  /** Node's raw header list (name, value, name, value, …): the only way to see a repeated `Authorization`. */
  rawHeaders?: string[];
  keymint?: VerifyResult;
}

/** What the middleware uses of a response: Node's `ServerResponse` API. */
export interface ExpressLikeResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

export type ExpressRequireApiKeyOptions<Req extends ExpressLikeRequest = ExpressRequest> = RequireApiKeyOptions<Req>;

/** Every value of header `name` (lower case) as received. */
function headerValues(req: ExpressLikeRequest, name: string): string[] {
  if (Array.isArray(req.rawHeaders)) {
    const values: string[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]?.toLowerCase() === name) values.push(req.rawHeaders[i + 1] ?? "");
    }
    return values;
  }
  const value = req.headers[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : value.split(", ");
}

/** The key `req` presents (`x-api-key` or `Authorization: Bearer`), by Keymint's rules. */
export function presentedKey(req: ExpressLikeRequest): Presented {
  return presentedApiKey(headerValues(req, "x-api-key"), headerValues(req, "authorization"));
}

function send(res: ExpressLikeResponse, decision: Extract<Decision, { kind: "deny" }>): void {
  res.statusCode = decision.status;
  for (const [name, value] of Object.entries(decision.headers)) res.setHeader(name, value);
  res.setHeader("content-type", "application/json");
  res.setHeader("cache-control", "no-store");
  res.end(JSON.stringify({ detail: decision.detail, code: decision.code }));
}

/**
 * Middleware requiring a valid API key in `x-api-key` or `Authorization:
 * Bearer`. A valid key sets `req.keymint` (the verification) and calls
 * `next()`; otherwise the request is answered as Keymint's Rust extractor
 * answers it: 401 (`api_key_required`, `invalid_api_key`, `api_key_revoked`,
 * `api_key_expired`, `ambiguous_api_key`; with `WWW-Authenticate`), 403
 * `insufficient_permissions`, 429 `rate_limited` / `usage_exceeded` (with
 * `Retry-After` when the wait is known), or 503 `keymint_unavailable` when
 * Keymint cannot answer. A route misconfiguration Keymint refuses (a
 * malformed permission query, a rate limit the key lacks) goes to `next(err)`.
 */
export function requireApiKey<Req extends ExpressLikeRequest = ExpressRequest>(
  km: Keymint,
  options: ExpressRequireApiKeyOptions<Req> = {},
): (req: Req, res: ExpressLikeResponse, next: (error?: unknown) => void) => void {
  const guard = createGuard<Req>(km, options);
  return (req, res, next) => {
    guard.check(presentedKey(req), req).then(
      (decision) => {
        if (decision.kind === "allow") {
          req.keymint = decision.result;
          next();
        } else if (decision.kind === "deny") {
          send(res, decision);
        } else {
          next(decision.error);
        }
      },
      (error: unknown) => next(error),
    );
  };
}
