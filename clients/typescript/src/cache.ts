/**
 * A small local cache of VALID verifications, for the middleware: bounded in
 * entries (least recently used evicted first) and in age (TTL), keyed by the
 * SHA-256 of the presented key (the key itself is never kept) together with
 * the permission query asked.
 */

export interface VerifyCacheOptions {
  /** Most entries kept; the least recently used goes first. Default 1 000. */
  maxEntries?: number;
  /** How long a VALID verdict is trusted, in ms. Default 10 000 (Keymint's own cache: 30 s). */
  ttlMs?: number;
  /** The clock, in ms (for tests). Default `Date.now`. */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
}

export class VerifyCache<V = unknown> {
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry<V>>();
  #hits = 0;
  #misses = 0;

  constructor(options: VerifyCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 1_000;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError("VerifyCache: maxEntries must be a positive integer");
    if (!Number.isFinite(this.ttlMs) || this.ttlMs <= 0) throw new RangeError("VerifyCache: ttlMs must be positive");
  }

  /** Entries held now (expired ones included until they are next touched or evicted). */
  get size(): number {
    return this.#entries.size;
  }

  /** Lookups answered from the cache, and not. */
  get stats(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }

  get(id: string): V | undefined {
    const entry = this.#entries.get(id);
    if (!entry) {
      this.#misses++;
      return undefined;
    }
    this.#entries.delete(id);
    if (entry.expiresAt <= this.#now()) {
      this.#misses++;
      return undefined;
    }
    this.#entries.set(id, entry); // most recently used now
    this.#hits++;
    return entry.value;
  }

  /** Keeps `value` for the TTL, or until `notAfter` (ms since the epoch) if sooner. */
  set(id: string, value: V, notAfter?: number): void {
    const now = this.#now();
    let expiresAt = now + this.ttlMs;
    if (notAfter !== undefined && notAfter < expiresAt) expiresAt = notAfter;
    if (expiresAt <= now) return;
    this.#entries.delete(id);
    this.#entries.set(id, { value, expiresAt });
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }

  clear(): void {
    this.#entries.clear();
  }
}

/** Hex SHA-256 of `text` (UTF-8) with Web Crypto, as every runtime with `crypto.subtle` has. */
export async function sha256Hex(text: string): Promise<string> {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (!subtle) {
    throw new Error("Keymint: the verification cache needs Web Crypto (globalThis.crypto.subtle): Node ≥ 19, or Node 18 with --experimental-global-webcrypto");
  }
  const digest = await subtle.digest("SHA-256", new TextEncoder().encode(text));
  let hex = "";
  for (const byte of new Uint8Array(digest)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}
