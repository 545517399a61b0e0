/**
 * Lists that Keymint pages with `Link: <…?cursor=…>; rel="next"` (RFC 8288).
 */

import type { HttpClient, HttpResponse, QueryValue, RequestOptions } from "./http.js";

/** One page of a list. */
export interface Page<T> {
  /** This page's items, in the order Keymint answered. */
  readonly items: T[];
  /** The cursor of the next page (pass it as `cursor` to resume later), `null` on the last page. */
  readonly nextCursor: string | null;
  /** The response's `x-request-id`. */
  readonly requestId: string | null;
  /** Whether a next page exists. */
  hasNextPage(): boolean;
  /** The next page, or `null` after the last one. */
  nextPage(): Promise<Page<T> | null>;
}

/**
 * A list that is read page by page as it is iterated:
 *
 * ```ts
 * for await (const key of km.keys.list({ environment: "live" })) { … } // every page
 * const page = await km.keys.list({ limit: 20 }).firstPage();            // one page
 * ```
 */
export class PagedList<T> implements AsyncIterable<T> {
  readonly #http: HttpClient;
  readonly #path: string;
  readonly #query: Record<string, QueryValue>;
  readonly #options: RequestOptions;
  readonly #map: (raw: unknown) => T;

  /** @internal */
  constructor(
    http: HttpClient,
    path: string,
    query: Record<string, QueryValue>,
    options: RequestOptions,
    map: (raw: unknown) => T,
  ) {
    this.#http = http;
    this.#path = path;
    this.#query = query;
    this.#options = options;
    this.#map = map;
  }

  /** The first page (from `cursor` if one was given). */
  firstPage(): Promise<Page<T>> {
    return this.#fetch(this.#http.url(this.#path, this.#query));
  }

  /** Every page, one request each, following `Link: rel="next"`. */
  async *pages(): AsyncGenerator<Page<T>, void, undefined> {
    let page: Page<T> | null = await this.firstPage();
    while (page) {
      yield page;
      page = await page.nextPage();
    }
  }

  /** Every item of every page. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages()) yield* page.items;
  }

  /** Every item of every page, in one array (mind large lists). */
  async toArray(): Promise<T[]> {
    const all: T[] = [];
    for await (const item of this) all.push(item);
    return all;
  }

  async #fetch(url: URL): Promise<Page<T>> {
    const response = await this.#http.request({ ...this.#options, method: "GET", path: url.href });
    return this.#page(response);
  }

  #page(response: HttpResponse): Page<T> {
    if (!Array.isArray(response.body)) {
      throw new TypeError("Keymint: a list answered something other than a JSON array");
    }
    const items = response.body.map(this.#map);
    const next = nextUrl(response.url, response.headers.get("link"));
    const nextCursor = next?.searchParams.get("cursor") ?? null;
    return {
      items,
      nextCursor,
      requestId: response.requestId,
      hasNextPage: () => next !== null,
      nextPage: () => (next ? this.#fetch(next) : Promise.resolve(null)),
    };
  }
}

/**
 * The next page's URL: the `rel="next"` link's query on this page's own URL.
 * Keymint writes the link as an absolute path (`</api/v2/api-keys?…>`); taking
 * only its query keeps a path prefix that a reverse proxy added to the base URL.
 */
export function nextUrl(current: URL, header: string | null): URL | null {
  if (!header) return null;
  for (const target of parseLinks(header, "next")) {
    let link: URL;
    try {
      link = new URL(target, current);
    } catch {
      continue;
    }
    const next = new URL(current.href);
    next.search = link.search;
    return next;
  }
  return null;
}

/** The targets of the links in `header` whose `rel` includes `rel`. */
export function parseLinks(header: string, rel: string): string[] {
  const found: string[] = [];
  const pattern = /<([^>]*)>((?:\s*;\s*[^;,]+(?:=(?:"[^"]*"|[^;,]*))?)*)/g;
  for (const match of header.matchAll(pattern)) {
    const target = match[1] ?? "";
    const params = match[2] ?? "";
    const relMatch = /;\s*rel\s*=\s*(?:"([^"]*)"|([^;,\s]+))/i.exec(params);
    const rels = (relMatch?.[1] ?? relMatch?.[2] ?? "").toLowerCase().split(/\s+/);
    if (rels.includes(rel)) found.push(target);
  }
  return found;
}
