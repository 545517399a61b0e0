// Keymint's public HTTP API, called with the signed-in person's token: the
// only server the console talks to besides the identity provider.

import { getSession } from './state.js';
import { sessionValid } from './session.js';

export const API = '/api/v2/api-keys';
export const HOOKS = '/api/v2/webhooks';
export const PAGE_SIZE = 20;

export class ApiError extends Error {
  constructor(message, { status = 0, code = '', fields = [], requestId = '' } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.requestId = requestId;
  }
}

// Thrown by `call` once the session has ended (the person is asked to sign in
// again); nothing more is to be said about it.
export class SessionEnded extends Error {}

// What to do when the API says the session has ended: set once by main.js, so
// this module needs nothing that shows the sign-in.
let whenSessionEnds = () => {};
export function onSessionEnded(handler) {
  whenSessionEnds = handler;
}

function ended() {
  whenSessionEnds();
  return new SessionEnded('Your session has ended.');
}

// An answer that is not 2xx, as an ApiError: the API's message, each field a
// 422 names, and the request id to quote.
function refusal(response, data, requestId) {
  const detail = data && data.detail;
  if (Array.isArray(detail)) {
    const fields = detail.map((d) => ({
      field: Array.isArray(d.loc) ? d.loc.slice(1).join('.') : '',
      msg: d.msg,
    }));
    return new ApiError('The request has invalid fields.', {
      status: response.status, code: data.code, fields, requestId,
    });
  }
  const message = typeof detail === 'string' ? detail : `Keymint answered ${response.status}.`;
  return new ApiError(message, { status: response.status, code: data && data.code, requestId });
}

export async function call(path, { method = 'GET', body, bearer = true, headers = {} } = {}) {
  if (bearer && !sessionValid()) throw ended();
  const sent = { ...headers };
  if (bearer) sent.Authorization = `Bearer ${getSession().token}`;
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit', redirect: 'error',
    });
  } catch {
    throw new ApiError('Keymint could not be reached. Check the connection and try again.');
  }
  const requestId = response.headers.get('x-request-id') || '';
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.status === 401 && bearer) throw ended();
  if (!response.ok) throw refusal(response, data, requestId);
  return { data, headers: response.headers, requestId };
}

// Where the next page starts, from a list's `Link: <…cursor=…>; rel="next"`
// header, or null on the last page.
export function nextCursor(headers) {
  const next = /<[^>]*[?&]cursor=([^&>]+)[^>]*>;\s*rel="next"/.exec(headers.get('link') || '');
  return next ? decodeURIComponent(next[1]) : null;
}
