/**
 * `@keymint/client`: the official TypeScript client for Keymint.
 * ESM, no runtime dependencies: only the global `fetch` (and Web Crypto for
 * the middleware cache), so it runs on Node ≥ 18, Deno, Bun and edge runtimes.
 */

export { Keymint, Keys, CreditsApi, Webhooks, Analytics } from "./keymint.js";
export type { ChangedCredits, CreditsChangeOptions } from "./keymint.js";
export type { ClientOptions, RequestOptions, TokenSource } from "./http.js";
export { PagedList } from "./pagination.js";
export type { Page } from "./pagination.js";
export {
  KeymintError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  ConflictError,
  ValidationError,
  RateLimitError,
  ServerError,
  ConnectionError,
  TimeoutError,
} from "./errors.js";
export type { FieldError } from "./errors.js";
export { VerifyCache } from "./cache.js";
export type { VerifyCacheOptions } from "./cache.js";
export type { RequireApiKeyOptions, PerRequest } from "./guard.js";
export type {
  AnalyticsParams,
  ApiKey,
  AuditEvent,
  CreateKeyParams,
  CreateWebhookParams,
  CreatedApiKey,
  Credits,
  CreditsInput,
  CreditsLeft,
  DeliveryAttempt,
  Environment,
  EventType,
  Granularity,
  GroupBy,
  ImportKeyItem,
  ImportResult,
  ImportedHash,
  KeyStatus,
  KeyUsageParams,
  Leak,
  LimitLeft,
  ListDeliveriesParams,
  ListEventsParams,
  ListKeysParams,
  Meta,
  RateLimit,
  RateLimitCost,
  RateLimitInput,
  Refill,
  RefillInput,
  RevokedApiKey,
  UpdateKeyParams,
  UpdateWebhookParams,
  VerificationAnalytics,
  VerificationBucket,
  VerificationOutcome,
  VerifyCode,
  VerifyOptions,
  VerifyResult,
  Webhook,
  WebhookDelivery,
  WebhookHealth,
  WebhookWithSecret,
} from "./types.js";
