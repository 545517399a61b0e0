/**
 * The Keymint client: `new Keymint({ baseUrl, token })`, then `km.keys`,
 * `km.credits`, `km.webhooks`, `km.analytics` and `km.verify`.
 */

import { fromWire, hideSecret, toWire } from "./convert.js";
import { HttpClient, type ClientOptions, type QueryValue, type RequestOptions } from "./http.js";
import { PagedList } from "./pagination.js";
import type {
  AnalyticsParams,
  ApiKey,
  AuditEvent,
  CreateKeyParams,
  CreateWebhookParams,
  CreatedApiKey,
  Credits,
  ImportKeyItem,
  ImportResult,
  KeyUsageParams,
  ListDeliveriesParams,
  ListEventsParams,
  ListKeysParams,
  RevokedApiKey,
  UpdateKeyParams,
  UpdateWebhookParams,
  VerificationAnalytics,
  VerifyOptions,
  VerifyResult,
  Webhook,
  WebhookDelivery,
  WebhookWithSecret,
} from "./types.js";

const KEYS = "/api/v2/api-keys";
const WEBHOOKS = "/api/v2/webhooks";

function segment(id: string, what: string): string {
  if (typeof id !== "string" || id.length === 0) throw new TypeError(`Keymint: ${what} must be a non-empty string`);
  return encodeURIComponent(id);
}

function created(raw: unknown): CreatedApiKey {
  return hideSecret(fromWire<CreatedApiKey>(raw), "privateKey");
}

function withSecret(raw: unknown): WebhookWithSecret {
  return hideSecret(fromWire<WebhookWithSecret>(raw), "secret");
}

/** A random idempotency key, for calls the caller gave none. */
function randomKey(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (crypto?.randomUUID) return `km-${crypto.randomUUID()}`;
  let key = "km-";
  for (let i = 0; i < 32; i++) key += Math.floor(Math.random() * 16).toString(16);
  return key;
}

function analyticsQuery(params: KeyUsageParams & AnalyticsParams): Record<string, QueryValue> {
  return {
    from: params.from,
    to: params.to,
    granularity: params.granularity,
    key_id: params.keyId,
    owner_id: params.ownerId,
    tag: params.tag,
    outcome: params.outcome,
    group_by: params.groupBy,
    order_by: params.orderBy,
    limit: params.limit,
  };
}

/** `km.keys`: create, read, list, change, rotate, revoke, delete and import API keys. */
export class Keys {
  readonly #http: HttpClient;

  /** @internal */
  constructor(http: HttpClient) {
    this.#http = http;
  }

  /**
   * Creates a key. Its `privateKey` is in this answer only (and
   * non-enumerable: read it explicitly). Not retried (no idempotency on create).
   */
  async create(params: CreateKeyParams, options: RequestOptions = {}): Promise<CreatedApiKey> {
    const response = await this.#http.request({ ...options, method: "POST", path: KEYS, body: toWire(params) });
    return created(response.body);
  }

  /**
   * Lists keys, newest first. Iterate it for every key of every page
   * (`for await (const key of km.keys.list())`), or call `.firstPage()` for one
   * page and `page.nextPage()` / `page.nextCursor` for the next.
   */
  list(params: ListKeysParams = {}, options: RequestOptions = {}): PagedList<ApiKey> {
    const query: Record<string, QueryValue> = {
      limit: params.limit,
      cursor: params.cursor,
      environment: params.environment,
      is_revoked: params.isRevoked,
      owner_id: params.ownerId,
      name: params.name,
    };
    return new PagedList(this.#http, KEYS, query, options, (raw) => fromWire<ApiKey>(raw));
  }

  /** One key (never its private key). */
  async get(id: string, options: RequestOptions = {}): Promise<ApiKey> {
    const response = await this.#http.request({ ...options, method: "GET", path: `${KEYS}/${segment(id, "id")}` });
    return fromWire<ApiKey>(response.body);
  }

  /**
   * Changes a key. A field left out (or `undefined`) stays as it is; `null`
   * clears it. At least one field is needed (`{}` is a 422).
   */
  async update(id: string, params: UpdateKeyParams, options: RequestOptions = {}): Promise<ApiKey> {
    const response = await this.#http.request({
      ...options,
      method: "PATCH",
      path: `${KEYS}/${segment(id, "id")}`,
      body: toWire(params),
    });
    return fromWire<ApiKey>(response.body);
  }

  /** Revokes a key, for good. Repeating it is harmless (so it is retried). */
  async revoke(id: string, options: RequestOptions = {}): Promise<RevokedApiKey> {
    const response = await this.#http.request({ ...options, method: "PUT", path: `${KEYS}/${segment(id, "id")}/revoke` });
    return fromWire<RevokedApiKey>(response.body);
  }

  /**
   * Issues a new private key (in the answer, once). The old one keeps verifying
   * for `gracePeriodSeconds` (0–604 800; default none). Not retried.
   * A revoked or expired key is a `ConflictError` (`key_revoked`, `key_expired`).
   */
  async rotate(id: string, params: { gracePeriodSeconds?: number } = {}, options: RequestOptions = {}): Promise<CreatedApiKey> {
    const body = params.gracePeriodSeconds === undefined ? undefined : toWire(params);
    const response = await this.#http.request({ ...options, method: "POST", path: `${KEYS}/${segment(id, "id")}/rotate`, body });
    return created(response.body);
  }

  /**
   * Deletes a key: gone from every read, never verifies again; deleting again
   * is a `NotFoundError`. Retried like every DELETE, so a retry after a lost
   * answer may report `NotFoundError` for a key this call deleted.
   */
  async delete(id: string, options: RequestOptions = {}): Promise<void> {
    await this.#http.request({ ...options, method: "DELETE", path: `${KEYS}/${segment(id, "id")}` });
  }

  /** A key's audit trail, newest first, paged like `list` (kept after deletion). */
  events(id: string, params: ListEventsParams = {}, options: RequestOptions = {}): PagedList<AuditEvent> {
    const path = `${KEYS}/${segment(id, "id")}/events`;
    return new PagedList(this.#http, path, { limit: params.limit, cursor: params.cursor }, options, (raw) => fromWire<AuditEvent>(raw));
  }

  /** A key's verifications over time, by outcome (counts appear within the server's usage flush interval). */
  async usage(id: string, params: KeyUsageParams = {}, options: RequestOptions = {}): Promise<VerificationAnalytics> {
    const response = await this.#http.request({
      ...options,
      method: "GET",
      path: `${KEYS}/${segment(id, "id")}/usage`,
      query: analyticsQuery(params),
    });
    return fromWire<VerificationAnalytics>(response.body);
  }

  /**
   * Brings in 1–1 000 keys from another system, each with its plaintext `key`
   * or its SHA-256 `hash`; each item is imported or fails on its own. Not retried.
   */
  async import(items: readonly ImportKeyItem[], options: RequestOptions = {}): Promise<ImportResult> {
    const response = await this.#http.request({ ...options, method: "POST", path: `${KEYS}/import`, body: { keys: toWire(items) } });
    return fromWire<ImportResult>(response.body);
  }
}

/** Credits after a change, and whether Keymint replayed an earlier answer. */
export interface ChangedCredits extends Credits {
  /** `true` when this answer is the replay of an earlier request with the same idempotency key. */
  replayed: boolean;
  /** The `Idempotency-Key` sent (yours, or one generated for this call). */
  idempotencyKey: string;
}

export interface CreditsChangeOptions extends RequestOptions {
  /**
   * 1–255 visible ASCII characters. Keymint applies the first request with it
   * and replays that answer for 24 hours. Without one, the client generates
   * one per call, so its own retries are applied once; pass your own (an
   * invoice id) to make retries by anyone safe.
   */
  idempotencyKey?: string;
}

/** `km.credits`: read and change a key's credits, atomically with verifications. */
export class CreditsApi {
  readonly #http: HttpClient;
  readonly #keys: Keys;

  /** @internal */
  constructor(http: HttpClient, keys: Keys) {
    this.#http = http;
    this.#keys = keys;
  }

  /** The key's credits (`null`: unlimited use). */
  async get(id: string, options: RequestOptions = {}): Promise<Credits | null> {
    return (await this.#keys.get(id, options)).credits;
  }

  /** Sets the credits left to `value`. */
  set(id: string, value: number, options: CreditsChangeOptions = {}): Promise<ChangedCredits> {
    return this.#change(id, "set", value, options);
  }

  /** Adds `value` (a top-up). Above 10¹² is a `ConflictError` (`credits_out_of_range`). */
  increment(id: string, value: number, options: CreditsChangeOptions = {}): Promise<ChangedCredits> {
    return this.#change(id, "increment", value, options);
  }

  /** Takes `value` away. Below 0 is a `ConflictError` (`insufficient_credits`). */
  decrement(id: string, value: number, options: CreditsChangeOptions = {}): Promise<ChangedCredits> {
    return this.#change(id, "decrement", value, options);
  }

  async #change(id: string, op: "set" | "increment" | "decrement", value: number, options: CreditsChangeOptions): Promise<ChangedCredits> {
    const idempotencyKey = options.idempotencyKey ?? randomKey();
    const response = await this.#http.request({
      ...options,
      method: "POST",
      path: `${KEYS}/${segment(id, "id")}/credits`,
      body: { op, value },
      idempotencyKey,
    });
    const credits = fromWire<Credits>(response.body);
    return { ...credits, replayed: response.headers.get("idempotent-replayed") === "true", idempotencyKey };
  }
}

/** `km.webhooks`: endpoints that receive the organisation's key events, signed. */
export class Webhooks {
  readonly #http: HttpClient;

  /** @internal */
  constructor(http: HttpClient) {
    this.#http = http;
  }

  /** Every webhook, oldest first (not paged). */
  async list(options: RequestOptions = {}): Promise<Webhook[]> {
    const response = await this.#http.request({ ...options, method: "GET", path: WEBHOOKS });
    return fromWire<Webhook[]>(response.body);
  }

  /** Registers an endpoint; its signing `secret` is in this answer only (non-enumerable). Not retried. */
  async create(params: CreateWebhookParams, options: RequestOptions = {}): Promise<WebhookWithSecret> {
    const response = await this.#http.request({ ...options, method: "POST", path: WEBHOOKS, body: toWire(params) });
    return withSecret(response.body);
  }

  async get(id: string, options: RequestOptions = {}): Promise<Webhook> {
    const response = await this.#http.request({ ...options, method: "GET", path: `${WEBHOOKS}/${segment(id, "id")}` });
    return fromWire<Webhook>(response.body);
  }

  /** Changes `url`, `eventTypes` and/or `enabled` (left out: unchanged). */
  async update(id: string, params: UpdateWebhookParams, options: RequestOptions = {}): Promise<Webhook> {
    const response = await this.#http.request({
      ...options,
      method: "PATCH",
      path: `${WEBHOOKS}/${segment(id, "id")}`,
      body: toWire(params),
    });
    return fromWire<Webhook>(response.body);
  }

  /** Deletes the webhook and its deliveries. */
  async delete(id: string, options: RequestOptions = {}): Promise<void> {
    await this.#http.request({ ...options, method: "DELETE", path: `${WEBHOOKS}/${segment(id, "id")}` });
  }

  /** A new signing secret, in this answer only; the old one keeps signing alongside for a while. Not retried. */
  async rotateSecret(id: string, options: RequestOptions = {}): Promise<WebhookWithSecret> {
    const response = await this.#http.request({ ...options, method: "POST", path: `${WEBHOOKS}/${segment(id, "id")}/rotate-secret` });
    return withSecret(response.body);
  }

  /** The webhook's deliveries, newest first, each with every attempt; paged like `keys.list`. */
  deliveries(id: string, params: ListDeliveriesParams = {}, options: RequestOptions = {}): PagedList<WebhookDelivery> {
    const path = `${WEBHOOKS}/${segment(id, "id")}/deliveries`;
    return new PagedList(this.#http, path, { limit: params.limit, cursor: params.cursor }, options, (raw) => fromWire<WebhookDelivery>(raw));
  }

  /** Sends a delivery again now (same `webhook-id`). Not retried. */
  async retry(webhookId: string, deliveryId: string, options: RequestOptions = {}): Promise<WebhookDelivery> {
    const response = await this.#http.request({
      ...options,
      method: "POST",
      path: `${WEBHOOKS}/${segment(webhookId, "webhookId")}/deliveries/${segment(deliveryId, "deliveryId")}/retry`,
    });
    return fromWire<WebhookDelivery>(response.body);
  }
}

/** `km.analytics`: the organisation's verifications over time. */
export class Analytics {
  readonly #http: HttpClient;

  /** @internal */
  constructor(http: HttpClient) {
    this.#http = http;
  }

  /**
   * Verifications over time, filtered (each filter takes one value or several)
   * and grouped by `keyId`, `ownerId`, `tag` and/or `outcome`.
   */
  async verifications(params: AnalyticsParams = {}, options: RequestOptions = {}): Promise<VerificationAnalytics> {
    const response = await this.#http.request({
      ...options,
      method: "GET",
      path: "/api/v2/analytics/verifications",
      query: analyticsQuery(params),
    });
    return fromWire<VerificationAnalytics>(response.body);
  }
}

/**
 * The Keymint client.
 *
 * ```ts
 * const km = new Keymint({ baseUrl: "https://keys.example.com", token: process.env.KEYMINT_TOKEN });
 * const key = await km.keys.create({ name: "billing", environment: "live" });
 * hand(key.privateKey);
 * ```
 *
 * The token is kept in a private field: it never shows in `console.log(km)`.
 */
export class Keymint {
  readonly keys: Keys;
  readonly credits: CreditsApi;
  readonly webhooks: Webhooks;
  readonly analytics: Analytics;
  readonly #http: HttpClient;

  constructor(options: ClientOptions) {
    this.#http = new HttpClient(options);
    this.keys = new Keys(this.#http);
    this.credits = new CreditsApi(this.#http, this.keys);
    this.webhooks = new Webhooks(this.#http);
    this.analytics = new Analytics(this.#http);
  }

  /** The base URL requests go to. */
  get baseUrl(): string {
    return this.#http.baseUrl.href;
  }

  /** What `console.log(km)` shows in Node: the base URL, never the token. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `Keymint { baseUrl: '${this.baseUrl}' }`;
  }

  /**
   * Asks Keymint whether `key` is good (no token needed: the key is the
   * credential) and, with options, whether it holds `permissions` and can pay
   * `credits` / `ratelimits`. Always resolves with the verdict unless Keymint
   * could not answer: serve the call only when `valid` is `true`.
   *
   * A verification spends credits and rate limits, so it is only retried when
   * the request never left (connection refused) or Keymint refused it unread.
   */
  async verify(key: string, options: VerifyOptions = {}): Promise<VerifyResult> {
    if (typeof key !== "string") throw new TypeError("Keymint: verify needs the key as a string");
    if (options.cost !== undefined && options.credits !== undefined && options.credits.cost !== options.cost) {
      throw new TypeError("Keymint: pass either `cost` or `credits`, not both");
    }
    const credits = options.credits ?? (options.cost === undefined ? undefined : { cost: options.cost });
    const body = toWire({
      key,
      permissions: options.permissions,
      credits,
      ratelimits: options.ratelimits,
      tags: options.tags,
    });
    const response = await this.#http.request({
      method: "POST",
      path: `${KEYS}/verify`,
      body,
      auth: false,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
      maxRetries: options.maxRetries,
    });
    return fromWire<VerifyResult>(response.body);
  }

  /**
   * Reports a leaked private key (no token needed: the key proves itself).
   * Keymint revokes or flags it if it is genuine, and always answers the same.
   */
  async reportLeak(key: string, params: { url?: string } = {}, options: RequestOptions = {}): Promise<void> {
    await this.#http.request({
      ...options,
      method: "POST",
      path: `${KEYS}/revoke-leaked`,
      body: toWire({ key, url: params.url }),
      auth: false,
    });
  }
}
