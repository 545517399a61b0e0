/**
 * Errors thrown by the client. Every answer of Keymint that is not a success
 * becomes a {@link KeymintError} subclass chosen by its HTTP status; a request
 * that got no answer becomes a {@link ConnectionError} (or its
 * {@link TimeoutError} subclass).
 *
 * Messages are built from the status, Keymint's stable `code`, its `detail`
 * and the `x-request-id`: never from a request's headers or body, so neither
 * the bearer token nor an API key can appear in a message, `toString()` or a
 * logged error.
 */

/** One failing field of a 422, as Keymint names it (`loc`, `msg`, `type`). */
export interface FieldError {
  /** Where the problem is: `["body", "name"]`, `["query", "limit"]`, `["body", "keys", "3", "key"]`. */
  loc: string[];
  /** A sentence saying what is wrong. */
  msg: string;
  /** A stable machine type: `string_too_short`, `extra_forbidden`, `missing`, … */
  type: string;
}

export interface KeymintErrorInit {
  status: number;
  code: string;
  detail: string;
  requestId: string | null;
  retryAfter?: number | null;
  fieldErrors?: readonly FieldError[];
  cause?: unknown;
}

/** Any answer from Keymint that is not a success, or no answer at all. */
export class KeymintError extends Error {
  /** The HTTP status; 0 when there was no answer (connection error, timeout). */
  readonly status: number;
  /** Keymint's stable machine code (`not_found`, `validation_error`, …). */
  readonly code: string;
  /** Keymint's explanation (for a 422, a summary of the field errors). */
  readonly detail: string;
  /** The response's `x-request-id`, which Keymint's log carries too; `null` without an answer. */
  readonly requestId: string | null;
  /** Seconds the server asked to wait (`Retry-After`), when it said. */
  readonly retryAfter: number | null;

  constructor(init: KeymintErrorInit) {
    const where = init.requestId ? ` (request ${init.requestId})` : "";
    const status = init.status ? `${init.status} ` : "";
    super(`${status}${init.code}: ${init.detail}${where}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.code = init.code;
    this.detail = init.detail;
    this.requestId = init.requestId;
    this.retryAfter = init.retryAfter ?? null;
  }
}

/** 401: the bearer token is missing, expired or otherwise refused. */
export class AuthenticationError extends KeymintError {}

/** 403: the token is valid but may not do this (`no_organization`, `insufficient_permissions`). */
export class PermissionDeniedError extends KeymintError {}

/** 404: no such key or webhook in the token's organisation (or an unknown path). */
export class NotFoundError extends KeymintError {}

/**
 * 409: the request conflicts with the current state (`key_revoked`,
 * `key_expired`, `key_limit_reached`, `insufficient_credits`,
 * `credits_unlimited`, `idempotency_key_reused`, …).
 */
export class ConflictError extends KeymintError {}

/** 400 or 422 (and 413, 415): the request itself is wrong; for a 422, `fieldErrors` names every failing field. */
export class ValidationError extends KeymintError {
  /** Each failing field (empty for a 400, 413 or 415). */
  readonly fieldErrors: readonly FieldError[];

  constructor(init: KeymintErrorInit) {
    super(init);
    this.fieldErrors = init.fieldErrors ?? [];
  }
}

/** 429: too many requests; `retryAfter` says how long to wait when Keymint said. */
export class RateLimitError extends KeymintError {}

/** 5xx: Keymint or a dependency of it failed (`storage_unavailable`, `internal_error`, …). */
export class ServerError extends KeymintError {}

/** No answer: the connection failed or was cut. `status` is 0. */
export class ConnectionError extends KeymintError {
  constructor(detail: string, cause?: unknown, code = "connection_error") {
    super({ status: 0, code, detail, requestId: null, cause });
  }
}

/** No answer within `timeoutMs`. */
export class TimeoutError extends ConnectionError {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`, undefined, "timeout");
  }
}

/**
 * The error for an answer with status `status` and Keymint's error body
 * `body` (`{"detail": string | FieldError[], "code": string}`; anything else
 * is tolerated).
 */
export function errorFromResponse(
  status: number,
  body: unknown,
  requestId: string | null,
  retryAfter: number | null,
): KeymintError {
  let code = `http_${status}`;
  let detail = `HTTP ${status}`;
  let fieldErrors: FieldError[] | undefined;
  if (body !== null && typeof body === "object") {
    const record = body as Record<string, unknown>;
    if (typeof record.code === "string") code = record.code;
    if (typeof record.detail === "string") {
      detail = record.detail;
    } else if (Array.isArray(record.detail)) {
      fieldErrors = record.detail.filter(isFieldError).map((entry) => ({
        loc: entry.loc.map(String),
        msg: entry.msg,
        type: entry.type,
      }));
      detail = fieldErrors.length
        ? fieldErrors.map((entry) => `${entry.loc.join(".")}: ${entry.msg}`).join("; ")
        : "Request validation failed";
    }
  }
  const init: KeymintErrorInit = { status, code, detail, requestId, retryAfter, fieldErrors };
  if (status === 401) return new AuthenticationError(init);
  if (status === 403) return new PermissionDeniedError(init);
  if (status === 404) return new NotFoundError(init);
  if (status === 409) return new ConflictError(init);
  if (status === 429) return new RateLimitError(init);
  if (status === 400 || status === 413 || status === 415 || status === 422) return new ValidationError(init);
  if (status >= 500) return new ServerError(init);
  return new KeymintError(init);
}

function isFieldError(value: unknown): value is { loc: unknown[]; msg: string; type: string } {
  if (value === null || typeof value !== "object") return false;
  const entry = value as Record<string, unknown>;
  return Array.isArray(entry.loc) && typeof entry.msg === "string" && typeof entry.type === "string";
}
