/**
 * Between the API's snake_case JSON and the client's camelCase objects.
 * `meta` is the caller's own data: it passes through untouched both ways.
 */

/** Fields whose value is user data, never renamed. */
const OPAQUE = new Set(["meta"]);

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, next: string) => next.toUpperCase());
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (upper) => `_${upper.toLowerCase()}`);
}

/** A response body with camelCase field names (deeply, `meta` excepted). */
export function fromWire<T>(value: unknown): T {
  return convert(value, camel, false) as T;
}

/**
 * A request body with snake_case field names (deeply, `meta` excepted);
 * `undefined` fields are left out (so "not given" differs from `null`) and
 * `Date`s become RFC 3339 strings.
 */
export function toWire(value: unknown): unknown {
  return convert(value, snake, true);
}

function convert(value: unknown, rename: (name: string) => string, outgoing: boolean): unknown {
  if (Array.isArray(value)) return value.map((item) => convert(item, rename, outgoing));
  if (outgoing && value instanceof Date) return value.toISOString();
  if (value === null || typeof value !== "object") return value;
  const result: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) {
    if (field === undefined) continue;
    result[rename(name)] = OPAQUE.has(name) ? field : convert(field, rename, outgoing);
  }
  return result;
}

/** Makes `object[name]` non-enumerable: kept out of logs, `JSON.stringify`, spreads and `util.inspect`. */
export function hideSecret<T extends object>(object: T, name: keyof T & string): T {
  const value = object[name];
  Object.defineProperty(object, name, { value, enumerable: false, writable: false, configurable: true });
  return object;
}
