/**
 * The client's public types: Keymint's schemas in camelCase.
 *
 * Each is written out (so editors show documentation), and checked at compile
 * time against the types `openapi-typescript` generated from Keymint's
 * OpenAPI document (`src/generated/openapi.ts`): the same fields, each of the
 * same type once camelCased, except where noted ("narrowed": this client
 * promises more than the document says, always something the document
 * allows). When the server's document changes, `npm run check:drift` fails;
 * once regenerated, any difference that matters here fails `tsc`.
 */

import type { components } from "./generated/openapi.js";
import type { FieldError } from "./errors.js";

type Schemas = components["schemas"];

// ---------------------------------------------------------------------------
// Shared pieces

/** A key's environment. */
export type Environment = "live" | "test";

/**
 * Your own data about a key: any JSON object (at most 4 096 bytes as compact
 * JSON), returned as given and never converted to camelCase.
 *
 * The server's schema says `{"type": ["object", "null"]}` without
 * `additionalProperties`, which openapi-typescript reads as
 * `Record<string, never>`; this type is what the field really holds.
 */
export type Meta = Record<string, unknown>;

/** Where a key stands: `revoked`, `expired`, `leaked` (still verifies; rotate it) or `active`. */
export type KeyStatus = Schemas["KeyStatus"];

/** A webhook event type. */
export type EventType = Schemas["EventType"];

/** A verification's outcome as analytics count it (every verify code but `NOT_FOUND`). */
export type VerificationOutcome = Schemas["VerificationOutcome"];

/**
 * A verification's code. Narrowed: the document says `string`; the README
 * lists these seven.
 */
export type VerifyCode =
  | "VALID"
  | "NOT_FOUND"
  | "REVOKED"
  | "EXPIRED"
  | "RATE_LIMITED"
  | "INSUFFICIENT_PERMISSIONS"
  | "USAGE_EXCEEDED";

/** Bucket width of usage analytics. */
export type Granularity = "minute" | "hour" | "day";

/** A width, or `total`: one row per group for the whole range. */
export type AnalyticsGranularity = Granularity | "total";

/** A dimension analytics can be grouped by. */
export type GroupBy = "key_id" | "owner_id" | "tag" | "outcome";

// ---------------------------------------------------------------------------
// Keys

/** A key's own rate limit. */
export interface RateLimit {
  /** Its name (letters, digits and `_ . : -`, at most 64). */
  name: string;
  /** Uses allowed per window. */
  limit: number;
  /** The window in milliseconds, aligned to the Unix epoch. */
  durationMs: number;
  /** Whether every verification takes 1 (else only verifications that name it). */
  autoApply: boolean;
}

/** How a key's credits are refilled. */
export interface Refill {
  /** Narrowed: the document says `string`. */
  interval: "daily" | "monthly";
  /** What `remaining` is set to at each refill. */
  amount: number;
  /** The day of the month of a monthly refill (`null` for daily). */
  refillDay: number | null;
}

/** A key's credits. */
export interface Credits {
  /** How many verifications (of cost 1) remain. */
  remaining: number;
  /** How they are refilled (`null`: never). */
  refill: Refill | null;
}

/** A key as every read returns it (never its private key). */
export interface ApiKey {
  id: string;
  orgId: string;
  name: string;
  publicKey: string;
  /** The private key masked: `sk_live_…6R7c`. */
  privateKeyDisplay: string;
  createdAt: string;
  description: string | null;
  isRevoked: boolean;
  revokedAt: string | null;
  lastUsedAt: string | null;
  /** Narrowed: the document says `string | null`; reads always carry the key's environment. */
  environment: Environment;
  expiresAt: string | null;
  permissions: string[];
  ownerId: string | null;
  meta: Meta | null;
  ratelimits: RateLimit[];
  /** `null`: unlimited use. */
  credits: Credits | null;
  /** When one of its private keys was last reported leaked, unless rotated since. */
  leakedAt: string | null;
  /** Until when the private key replaced by the last rotation keeps verifying. */
  previousKeyValidUntil: string | null;
  status: KeyStatus;
  /** Its verifications in the last 24 hours. */
  usage24h: number;
}

/**
 * A key just created or rotated, with its private key, shown this once.
 *
 * `privateKey` is non-enumerable: it is not shown by `console.log`,
 * `util.inspect`, `JSON.stringify` or object spread, so logging the object
 * does not leak it. Read it explicitly and hand it over.
 */
export interface CreatedApiKey {
  id: string;
  orgId: string;
  name: string;
  publicKey: string;
  privateKeyDisplay: string;
  createdAt: string;
  /** The private key (non-enumerable; see above). */
  privateKey: string;
  description: string | null;
  isRevoked: boolean;
  revokedAt: string | null;
  lastUsedAt: string | null;
  /** Narrowed: the document says `string | null`. */
  environment: Environment;
  expiresAt: string | null;
  permissions: string[];
  ownerId: string | null;
  meta: Meta | null;
  ratelimits: RateLimit[];
  credits: Credits | null;
  status: KeyStatus;
}

/** The answer to a revocation. */
export interface RevokedApiKey {
  id: string;
  orgId: string;
  name: string;
  isRevoked: boolean;
  createdAt: string;
  description: string | null;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  status: KeyStatus;
}

/** Where a leaked private key was seen. */
export interface Leak {
  /** The scanner's source (`commit`, `content`, …) or `self_report`. */
  source: string;
  url: string | null;
}

/** One entry of a key's audit trail. */
export interface AuditEvent {
  id: string;
  keyId: string;
  /** `created`, `imported`, `updated`, `rotated`, `revoked`, `deleted`, `leaked`. */
  action: string;
  /** The token's `sub`. */
  actor: string | null;
  occurredAt: string;
  /** The `x-request-id` of the request that made the change. */
  requestId: string | null;
  /** For `updated`, the fields it changed (names, never values). */
  fields: string[];
  leak: Leak | null;
}

// ---------------------------------------------------------------------------
// Key inputs

/** A rate limit to give a key. */
export interface RateLimitInput {
  name: string;
  /** 1 to 10⁹ uses per window. */
  limit: number;
  /** 1 000 (a second) to 2 592 000 000 (30 days). */
  durationMs: number;
  /** Default `true`. */
  autoApply?: boolean | null;
}

/** A refill rule to give a key's credits. */
export interface RefillInput {
  /** Narrowed: the document says a string matching `^(daily|monthly)$`. */
  interval: "daily" | "monthly";
  amount: number;
  /** Monthly only, 1 to 31 (default 1). */
  refillDay?: number | null;
}

/** Credits to give a key. */
export interface CreditsInput {
  remaining: number;
  refill?: RefillInput | null;
}

/** `km.keys.create(…)`: only `name` is required. */
export interface CreateKeyParams {
  name: string;
  description?: string | null;
  /** Default: the server's `keys.default_environment`. */
  environment?: Environment | null;
  /** In the future, at most `keys.max_expiry_days` ahead. Widened: a `Date` is sent as RFC 3339. */
  expiresAt?: string | Date | null;
  permissions?: string[] | null;
  ownerId?: string | null;
  meta?: Meta | null;
  ratelimits?: RateLimitInput[] | null;
  /** `null` (the default): unlimited use. */
  credits?: CreditsInput | null;
}

/**
 * `km.keys.update(id, …)`: a field left out (or `undefined`) is not changed;
 * `null` clears it (`description`, `ownerId`, `meta`), removes them all
 * (`permissions`, `ratelimits`) or makes use unlimited (`credits`).
 */
export interface UpdateKeyParams {
  name?: string;
  description?: string | null;
  permissions?: string[] | null;
  ownerId?: string | null;
  meta?: Meta | null;
  ratelimits?: RateLimitInput[] | null;
  credits?: CreditsInput | null;
}

/** A private key's SHA-256, as another system exported it (64 hex digits or base64). */
export interface ImportedHash {
  algorithm: "sha256";
  value: string;
}

/**
 * One key to import: the create fields and exactly one of `key` (plaintext)
 * or `hash`. (The document's `allOf`/`oneOf` for this generates an unusable
 * type, so the two forms are spelled out here.)
 */
export type ImportKeyItem = Omit<CreateKeyParams, "expiresAt"> & { expiresAt?: string | Date | null } & (
    | { key: string; hash?: undefined }
    | { hash: ImportedHash; key?: undefined }
  );

/** What an import did, item by item. */
export interface ImportResult {
  imported: { index: number; id: string }[];
  failed: { index: number; detail: FieldError[] }[];
}

/** `km.keys.list(…)`. */
export interface ListKeysParams {
  /** Page size, 1–100 (default 100). */
  limit?: number;
  /** Resume where a page ended (`page.nextCursor`). */
  cursor?: string;
  environment?: Environment;
  isRevoked?: boolean;
  /** Exact match. */
  ownerId?: string;
  /** Contained in the name, ignoring case. */
  name?: string;
}

/** `km.keys.events(…)`. */
export interface ListEventsParams {
  limit?: number;
  cursor?: string;
}

// ---------------------------------------------------------------------------
// Verification

/** A rate limit a verification applies, with its cost. */
export interface RateLimitCost {
  name: string;
  /** 0 to 10 000, default 1. */
  cost?: number | null;
}

/** A rate limit's state after a verification. */
export interface LimitLeft {
  name: string;
  limit: number;
  remaining: number;
  /** When the current window ends (RFC 3339). */
  reset: string;
}

/** Credits left after a verification. */
export interface CreditsLeft {
  remaining: number;
}

/**
 * A verification's verdict. Serve the call only when `valid` is `true`. The
 * identity fields are set when the key was recognised (`VALID`,
 * `INSUFFICIENT_PERMISSIONS`, `USAGE_EXCEEDED`, a key's own `RATE_LIMITED`),
 * `null` otherwise.
 */
export interface VerifyResult {
  valid: boolean;
  /** Narrowed: the document says `string`. */
  code: VerifyCode;
  keyId: string | null;
  orgId: string | null;
  /** Narrowed: the document says `string | null`. */
  environment: Environment | null;
  name: string | null;
  expiresAt: string | null;
  permissions: string[] | null;
  ownerId: string | null;
  meta: Meta | null;
  /** After this call; `null`: unlimited, or not recognised. */
  credits: CreditsLeft | null;
  /** Each of the key's limits that applied, after this call. */
  ratelimits: LimitLeft[] | null;
}

// ---------------------------------------------------------------------------
// Analytics

/** One bucket of verifications. The grouped-by fields are present only when grouped by them. */
export interface VerificationBucket {
  /** The bucket's start. */
  time: string;
  count: number;
  spentCredits: number;
  keyId?: string | null;
  outcome?: VerificationOutcome | null;
  ownerId?: string | null;
  tag?: string | null;
}

/** Verifications over time. */
export interface VerificationAnalytics {
  /** Narrowed: the document says `string`. */
  granularity: Granularity;
  from: string;
  to: string;
  data: VerificationBucket[];
}

/** `km.analytics.verifications(…)`. Every filter takes one value or several. */
export interface AnalyticsParams {
  /** Default: 24 hours before `to`. */
  from?: string | Date;
  /** Exclusive; default now. */
  to?: string | Date;
  /** `total`: one row per group for the whole range. */
  granularity?: AnalyticsGranularity;
  keyId?: string | readonly string[];
  ownerId?: string | readonly string[];
  tag?: string | readonly string[];
  outcome?: VerificationOutcome | readonly VerificationOutcome[];
  groupBy?: GroupBy | readonly GroupBy[];
  /** `count`: the largest rows first (with `limit`, the top ones). Default `time`. */
  orderBy?: "time" | "count";
  /** At most this many rows (1–10 000). */
  limit?: number;
}

/** `km.keys.usage(id, …)`: one key's verifications, grouped by outcome. */
export interface KeyUsageParams {
  from?: string | Date;
  to?: string | Date;
  granularity?: AnalyticsGranularity;
  tag?: string | readonly string[];
}

// ---------------------------------------------------------------------------
// Webhooks

/** A webhook endpoint's circuit breaker. */
export interface WebhookHealth {
  state: Schemas["WebhookHealthState"];
  consecutiveFailures: number;
  pausedUntil?: string | null;
}

/** A webhook endpoint. */
export interface Webhook {
  id: string;
  url: string;
  eventTypes: EventType[];
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  health: WebhookHealth;
}

/**
 * A webhook with its signing secret (`whsec_…`), shown on create and
 * rotate-secret only. `secret` is non-enumerable, like a key's `privateKey`.
 */
export interface WebhookWithSecret extends Webhook {
  secret: string;
}

/** One attempt to deliver an event. */
export interface DeliveryAttempt {
  attemptedAt: string;
  /** Why it failed without an answer. */
  error?: string | null;
  latencyMs: number;
  /** The endpoint's HTTP status, if it answered. */
  statusCode?: number | null;
}

/** One event's delivery to a webhook. */
export interface WebhookDelivery {
  /** The `webhook-id` header of every attempt. */
  id: string;
  eventType: string;
  keyId: string;
  /** `pending`, `delivered` or `failed`. */
  status: string;
  createdAt: string;
  nextAttemptAt?: string | null;
  /** Oldest first. */
  attempts: DeliveryAttempt[];
}

/** `km.webhooks.create(…)`. */
export interface CreateWebhookParams {
  /** `https://…` (or `http://` when the server allows it). */
  url: string;
  /** Default: every event type. */
  eventTypes?: EventType[] | null;
  /** Default `true`. */
  enabled?: boolean | null;
}

/**
 * `km.webhooks.update(id, …)`: at least one field; a field left out is not
 * changed. Narrowed: the document allows `null` for `eventTypes` and
 * `enabled`, which the server reads as "unchanged" (unlike `null` on create,
 * "every event type"); this type leaves it out to avoid the confusion.
 */
export interface UpdateWebhookParams {
  url?: string;
  eventTypes?: EventType[];
  enabled?: boolean;
}

/** `km.webhooks.deliveries(id, …)`. */
export interface ListDeliveriesParams {
  limit?: number;
  /** Resume where a page ended (`page.nextCursor`). */
  cursor?: string | number;
}

// ---------------------------------------------------------------------------
// Compile-time checks against the generated schema types. A failing line
// reads "Type 'false' does not satisfy the constraint 'true'": the public type
// above no longer matches the server's document.

type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
/** The wire type with camelCase field names, deeply. */
export type Camelize<T> = T extends readonly (infer U)[]
  ? Camelize<U>[]
  : T extends object
    ? { [K in keyof T as K extends string ? CamelCase<K> : K]: Camelize<T[K]> }
    : T;
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : false;
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type All<T extends readonly boolean[]> = T extends readonly true[] ? true : false;
/**
 * P mirrors wire type W: the same fields, each mutually assignable with the
 * camelCased wire field, except `Narrowed` ones, which must be assignable to
 * it (promising more than the document), and `Free` ones (checked apart).
 */
type Mirrors<P, W, Narrowed extends keyof P = never, Free extends keyof P = never> = All<
  [
    SameKeys<P, Camelize<W>>,
    Mutual<Omit<P, Narrowed | Free>, Omit<Camelize<W>, Narrowed | Free>>,
    [Pick<P, Narrowed>] extends [Pick<Camelize<W>, Narrowed & keyof Camelize<W>>] ? true : false,
  ]
>;
/** A request type mirrors wire type W once `Date`s are sent as strings. */
type MirrorsInput<P, W, Narrowed extends keyof P = never, Free extends keyof P = never> = Mirrors<
  { [K in keyof P]: Exclude<P[K], Date> },
  W,
  Narrowed,
  Free
>;
/** `meta` in the document: a nullable object (today `Record<string, never> | null`). */
type MetaOnWire<W> = null extends W ? ([Exclude<W, undefined>] extends [object | null] ? true : false) : false;
type Expect<T extends true> = T;

export type _Checks = [
  Expect<Mirrors<RateLimit, Schemas["RateLimit"]>>,
  Expect<Mirrors<Refill, Schemas["Refill"], "interval">>,
  Expect<Mirrors<Credits, Schemas["Credits"], never, "refill">>,
  Expect<Mirrors<ApiKey, Schemas["ApiKey"], "environment", "meta" | "credits" | "ratelimits">>,
  Expect<MetaOnWire<Schemas["ApiKey"]["meta"]>>,
  Expect<Mirrors<CreatedApiKey, Schemas["ApiKeyCreated"], "environment", "meta" | "credits" | "ratelimits">>,
  Expect<MetaOnWire<Schemas["ApiKeyCreated"]["meta"]>>,
  Expect<Mirrors<RevokedApiKey, Schemas["ApiKeyRevoked"]>>,
  Expect<Mirrors<Leak, Schemas["Leak"]>>,
  Expect<Mirrors<AuditEvent, Schemas["AuditEvent"]>>,
  Expect<Mirrors<RateLimitInput, Schemas["RateLimitInput"]>>,
  Expect<Mirrors<RefillInput, Schemas["RefillInput"], "interval">>,
  Expect<Mirrors<CreditsInput, Schemas["CreditsInput"], never, "refill">>,
  Expect<MirrorsInput<CreateKeyParams, Schemas["CreateApiKeyRequest"], never, "meta" | "credits" | "ratelimits">>,
  Expect<MetaOnWire<Schemas["CreateApiKeyRequest"]["meta"]>>,
  Expect<Mirrors<UpdateKeyParams, Schemas["UpdateApiKeyRequest"], never, "meta" | "credits" | "ratelimits">>,
  Expect<MetaOnWire<Schemas["UpdateApiKeyRequest"]["meta"]>>,
  Expect<Mirrors<ImportedHash, Schemas["ImportedHash"], "algorithm">>,
  Expect<SameKeys<Required<ImportKeyItem>, Camelize<Schemas["ImportApiKeyItem"]>>>,
  Expect<Mirrors<ImportResult["imported"][number], Schemas["ImportedKey"]>>,
  Expect<Mirrors<ImportResult["failed"][number], Schemas["FailedImport"]>>,
  Expect<Mirrors<FieldError, Schemas["FieldError"]>>,
  Expect<Mirrors<RateLimitCost, Schemas["RateLimitCost"]>>,
  Expect<Mirrors<LimitLeft, Schemas["LimitLeft"]>>,
  Expect<Mirrors<CreditsLeft, Schemas["CreditsLeft"]>>,
  Expect<Mirrors<VerifyResult, Schemas["VerifyResult"], "code" | "environment", "meta" | "credits" | "ratelimits">>,
  Expect<MetaOnWire<Schemas["VerifyResult"]["meta"]>>,
  Expect<Mirrors<VerificationBucket, Schemas["VerificationBucket"]>>,
  Expect<Mirrors<VerificationAnalytics, Schemas["VerificationAnalytics"], "granularity", "data">>,
  Expect<Mirrors<WebhookHealth, Schemas["WebhookHealth"]>>,
  Expect<Mirrors<Webhook, Schemas["Webhook"], never, "health">>,
  Expect<Mirrors<WebhookWithSecret, Schemas["WebhookWithSecret"], never, "health">>,
  Expect<Mirrors<DeliveryAttempt, Schemas["AttemptResponse"]>>,
  Expect<Mirrors<WebhookDelivery, Schemas["WebhookDelivery"], never, "attempts">>,
  Expect<Mirrors<CreateWebhookParams, Schemas["CreateWebhookRequest"]>>,
  Expect<Mirrors<UpdateWebhookParams, Schemas["UpdateWebhookRequest"], "eventTypes" | "enabled">>,
  Expect<Mutual<VerifyCode | never, NonNullable<Schemas["VerificationOutcome"]> | "NOT_FOUND">>,
  Expect<SameKeys<Omit<VerifyOptions, "timeoutMs" | "signal" | "maxRetries" | "cost">, Omit<Camelize<Schemas["VerifyApiKeyRequest"]>, "key">>>,
];

/** `km.verify(key, …)`: what the call needs of the key and what it costs. */
export interface VerifyOptions {
  /** A permission query: `"billing.read AND (billing.write OR admin)"`. */
  permissions?: string;
  /** What the call costs in credits (0–10 000; default 1 when the key has credits). */
  credits?: { cost: number };
  /** Shorthand for `credits: { cost }`. */
  cost?: number;
  /** The key's rate limits to apply, with their cost. */
  ratelimits?: readonly RateLimitCost[];
  /** Tags to count the verification under (at most 10). */
  tags?: readonly string[];
  signal?: AbortSignal;
  timeoutMs?: number;
  maxRetries?: number;
}
