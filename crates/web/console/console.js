// Keymint console: a client of Keymint's public HTTP API, nothing more. It
// builds every element with the DOM API (never from HTML strings), so text from
// the API is always text. The session lives in sessionStorage (this tab only,
// gone when it closes), never in localStorage or a URL; the page's
// Content-Security-Policy allows no script but this file.

const API = '/api/v2/api-keys';
const SESSION = 'keymint.console.session';
const PENDING = 'keymint.console.oidc';
const DRAFTS = 'keymint.console.drafts';
const PAGE_SIZE = 20;

let config = null;
let session = null;
let discovery = null;
// A private key shown once: set by create or rotate, cleared as soon as the
// reveal is rendered, so a reload or a later visit never finds it.
let pendingReveal = null;
// Counts page renders: an answer that arrives after its page was left is
// dropped instead of drawn over the next page.
let rendering = 0;

// ---------------------------------------------------------------- elements

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') el.textContent = value;
    else if (name === 'class') el.className = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function time(iso) {
  if (!iso) return h('span', { text: 'never' });
  const at = new Date(iso);
  return h('time', { datetime: iso, title: at.toISOString() }, at.toLocaleString(undefined, {
    dateStyle: 'medium', timeStyle: 'short',
  }));
}

let toastTimer = 0;
function toast(message) {
  const el = document.getElementById('toast');
  el.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.textContent = ''; }, 6000);
}

function page(title, ...children) {
  document.title = `${title} · Keymint console`;
  const main = document.getElementById('main');
  main.replaceChildren(h('div', { class: 'page' }, ...children));
  return main;
}

// An error as the API gave it: its message and the request id to quote.
function errorView(error, doing) {
  const box = h('div', { class: 'alert', role: 'alert', tabindex: '-1' });
  box.append(h('p', {}, h('strong', { text: doing ? `${doing}: ` : '' }), error.message));
  if (error.fields && error.fields.length) {
    box.append(h('ul', {}, error.fields.map((f) => h('li', {}, f.field ? `${f.field}: ` : '', f.msg))));
  }
  if (error.requestId) {
    box.append(h('p', { class: 'request-id' }, 'Request id: ', h('code', { text: error.requestId })));
  }
  return box;
}

function showError(slot, error, doing) {
  if (error instanceof SessionEnded) return;
  const view = errorView(error, doing);
  slot.replaceChildren(...view.childNodes);
  slot.setAttribute('role', 'alert');
  slot.focus();
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(message, { status = 0, code = '', fields = [], requestId = '' } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.requestId = requestId;
  }
}

class SessionEnded extends Error {}

function sessionValid() {
  return session && session.expires_at * 1000 > Date.now() + 5000;
}

async function call(path, { method = 'GET', body, bearer = true, headers = {} } = {}) {
  if (bearer && !sessionValid()) {
    sessionEnded();
    throw new SessionEnded('Your session has ended.');
  }
  const sent = { ...headers };
  if (bearer) sent.Authorization = `Bearer ${session.token}`;
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
  if (response.status === 401 && bearer) {
    sessionEnded();
    throw new SessionEnded('Your session has ended.');
  }
  if (!response.ok) {
    const detail = data && data.detail;
    if (Array.isArray(detail)) {
      const fields = detail.map((d) => ({
        field: Array.isArray(d.loc) ? d.loc.slice(1).join('.') : '',
        msg: d.msg,
      }));
      throw new ApiError('The request has invalid fields.', {
        status: response.status, code: data.code, fields, requestId,
      });
    }
    const message = typeof detail === 'string' ? detail : `Keymint answered ${response.status}.`;
    throw new ApiError(message, { status: response.status, code: data && data.code, requestId });
  }
  return { data, headers: response.headers, requestId };
}

// Where the next page starts, from a list's `Link: <…cursor=…>; rel="next"`
// header, or null on the last page.
function nextCursor(headers) {
  const next = /<[^>]*[?&]cursor=([^&>]+)[^>]*>;\s*rel="next"/.exec(headers.get('link') || '');
  return next ? decodeURIComponent(next[1]) : null;
}

// ---------------------------------------------------------------- session

function loadSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION) || 'null');
    session = stored && stored.token ? stored : null;
  } catch {
    session = null;
  }
}

function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

function startSession(token, expiresAt, mode) {
  const claims = claimsOf(token);
  session = {
    token,
    mode,
    expires_at: expiresAt || claims.exp || Math.floor(Date.now() / 1000) + 300,
    subject: claims.name || claims.email || claims.sub || '',
    org_id: claims[config.org_claim || 'org_id'] || '',
  };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
}

function endSession() {
  session = null;
  sessionStorage.removeItem(SESSION);
}

// What the person typed on this page, kept across a sign-in (never secrets:
// inputs marked data-secret are left out).
function saveDrafts() {
  const values = {};
  for (const el of document.querySelectorAll('main [data-draft]')) {
    if (el.dataset.secret !== undefined) continue;
    values[el.dataset.draft] = el.type === 'radio' ? (el.checked ? el.value : values[el.dataset.draft]) : el.value;
  }
  sessionStorage.setItem(DRAFTS, JSON.stringify({ path: location.pathname, values }));
}

function restoreDrafts() {
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(DRAFTS) || 'null'); } catch { saved = null; }
  if (!saved || saved.path !== location.pathname) return;
  sessionStorage.removeItem(DRAFTS);
  for (const el of document.querySelectorAll('main [data-draft]')) {
    const value = saved.values[el.dataset.draft];
    if (value === undefined) continue;
    if (el.type === 'radio') el.checked = el.value === value;
    else el.value = value;
  }
}

let endedDialog = null;
function sessionEnded() {
  endSession();
  saveDrafts();
  if (endedDialog && endedDialog.open) return;
  endedDialog = h('dialog', { 'aria-labelledby': 'ended-title', class: 'session-ended' });
  const body = h('div');
  endedDialog.append(
    h('h2', { id: 'ended-title', text: 'Your session has ended' }),
    h('p', { text: 'Sign in again to carry on. What you typed on this page is kept.' }),
    body,
  );
  const done = () => {
    endedDialog.close();
    endedDialog.remove();
    updateChrome();
    toast('Signed in again. Repeat the last action to complete it.');
  };
  body.append(signInForm(done, true));
  document.body.append(endedDialog);
  endedDialog.addEventListener('cancel', (event) => event.preventDefault());
  endedDialog.showModal();
}

// ---------------------------------------------------------------- OIDC

function base64url(bytes) {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomText(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function discover() {
  if (discovery) return discovery;
  const base = config.issuer.endsWith('/') ? config.issuer : `${config.issuer}/`;
  const response = await fetch(`${base}.well-known/openid-configuration`, { credentials: 'omit' });
  if (!response.ok) throw new ApiError(`The identity provider answered ${response.status} to discovery.`);
  discovery = await response.json();
  return discovery;
}

function redirectUri() {
  return `${location.origin}/console`;
}

// The authorization-code flow with PKCE. The answer comes back in the URL's
// fragment (response_mode=fragment), which browsers never send to a server, so
// the code reaches no log; the verifier stays in this tab's sessionStorage.
async function startOidc(returnTo) {
  const verifier = randomText(32);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  const state = randomText(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier, returnTo }));
  const provider = await discover();
  const url = new URL(provider.authorization_endpoint);
  const params = {
    response_type: 'code',
    response_mode: 'fragment',
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: 'S256',
  };
  if (config.audience) params.audience = config.audience;
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  location.assign(url.toString());
}

function isAnswer(params) {
  return params.has('state') && (params.has('code') || params.has('error'));
}

async function finishOidc() {
  // Asked for in the fragment; an issuer that ignores response_mode answers in
  // the query (Keymint never logs query strings).
  let answer = new URLSearchParams(location.hash.slice(1));
  if (!isAnswer(answer)) answer = new URLSearchParams(location.search);
  if (!isAnswer(answer)) return null;
  history.replaceState(null, '', location.pathname);
  let pending = null;
  try { pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null'); } catch { pending = null; }
  sessionStorage.removeItem(PENDING);
  if (answer.has('error')) {
    throw new ApiError(`The identity provider refused the sign-in: ${answer.get('error_description') || answer.get('error')}`);
  }
  if (!pending || answer.get('state') !== pending.state) {
    throw new ApiError('This sign-in answer was not asked for by this tab; sign in again.');
  }
  const provider = await discover();
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: answer.get('code'),
    redirect_uri: redirectUri(),
    client_id: config.client_id,
    code_verifier: pending.verifier,
  });
  const response = await fetch(provider.token_endpoint, {
    method: 'POST', body: form, credentials: 'omit',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok || !tokens.access_token) {
    throw new ApiError(`The identity provider refused the code: ${tokens.error_description || tokens.error || response.status}`);
  }
  const expiresAt = tokens.expires_in ? Math.floor(Date.now() / 1000) + Number(tokens.expires_in) : 0;
  startSession(tokens.access_token, expiresAt, 'oidc');
  return pending.returnTo || '/console';
}

async function signOut() {
  const mode = session && session.mode;
  endSession();
  sessionStorage.removeItem(DRAFTS);
  if (mode === 'oidc') {
    const provider = await discover().catch(() => null);
    if (provider && provider.end_session_endpoint) {
      const url = new URL(provider.end_session_endpoint);
      url.searchParams.set('client_id', config.client_id);
      url.searchParams.set('post_logout_redirect_uri', redirectUri());
      location.assign(url.toString());
      return;
    }
  }
  navigate('/console/sign-in', { replace: true });
  toast('Signed out.');
}

// ---------------------------------------------------------------- sign-in

function field({ id, label, hint, input, error = true }) {
  const describedBy = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  if (describedBy) input.setAttribute('aria-describedby', describedBy);
  input.id = id;
  return h('div', { class: 'field' },
    h('label', { for: id, text: label }),
    hint ? h('p', { class: 'hint', id: `${id}-hint`, text: hint }) : null,
    input,
    error ? h('p', { class: 'field-error', id: `${id}-error` }) : null);
}

// Marks the fields a 422 names; returns the messages it could not place.
function markFields(form, error, prefix) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
  const unplaced = [];
  for (const f of error.fields || []) {
    // The most specific field the form has: credits.refill.amount is shown at
    // #…-credits_refill_amount if there is one, else at #…-credits.
    const parts = f.field.split('.');
    let input = null;
    let slot = null;
    for (let n = parts.length; n > 0 && !(input && slot); n -= 1) {
      const name = CSS.escape(parts.slice(0, n).join('_'));
      input = form.querySelector(`#${prefix}-${name}`);
      slot = form.querySelector(`#${prefix}-${name}-error`);
    }
    if (input && slot) {
      input.setAttribute('aria-invalid', 'true');
      slot.textContent = slot.textContent ? `${slot.textContent} ${f.msg}` : f.msg;
    } else {
      unplaced.push(f);
    }
  }
  return unplaced;
}

// A refused form: the API's message beside each field it names, the rest and
// the request id in the form's alert, focus on the first field to mend (in a
// folded section, opened).
function showRefusal(form, alert, error, prefix, failure) {
  if (error instanceof SessionEnded) return;
  if (!error.fields) {
    showError(alert, error, failure);
    return;
  }
  const unplaced = markFields(form, error, prefix);
  const count = error.fields.length;
  showError(alert, new ApiError(`${failure}: ${count} ${count === 1 ? 'field needs' : 'fields need'} attention.`,
    { fields: unplaced, requestId: error.requestId }), '');
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) {
    const folded = first.closest('details');
    if (folded) folded.open = true;
    (first.matches('input, select, textarea') ? first : first.querySelector('input, select, textarea') || first).focus();
  }
}

function signInForm(done, again, returnTo) {
  if (!config || config.sign_in === 'unavailable') {
    return h('div', {},
      h('p', { text: 'No sign-in is configured on this server.' }),
      h('p', {}, 'Set ', h('code', { text: 'auth.issuer' }), ' and ', h('code', { text: 'console.client_id' }),
        ' to sign in with your identity provider, or run Keymint in the development profile.'));
  }
  if (config.sign_in === 'oidc') {
    const host = new URL(config.issuer).host;
    const alert = h('div', { class: 'alert', tabindex: '-1' });
    const button = h('button', { type: 'button', class: 'button', text: `Sign in with ${host}` });
    button.addEventListener('click', async () => {
      button.disabled = true;
      saveDrafts();
      try {
        await startOidc(returnTo || location.pathname + location.search);
      } catch (error) {
        button.disabled = false;
        showError(alert, error, 'Could not start the sign-in');
      }
    });
    return h('div', {}, alert, button);
  }
  const alert = h('div', { class: 'alert', tabindex: '-1' });
  const org = h('input', {
    type: 'text', name: 'org_id', autocomplete: 'off', spellcheck: 'false', inputmode: 'text',
    value: (session && session.org_id) || lastOrg() || '',
  });
  const name = h('input', { type: 'text', name: 'name', autocomplete: 'username', value: lastName() || 'developer' });
  const submit = h('button', { type: 'submit', class: 'button', text: again ? 'Sign in again' : 'Sign in' });
  const fresh = h('button', { type: 'button', class: 'button secondary', text: 'New organisation id' });
  fresh.addEventListener('click', () => { org.value = crypto.randomUUID(); org.focus(); });
  const form = h('form', { novalidate: true, class: 'sign-in' },
    h('p', { class: 'banner', text: 'Development sign-in: anyone who can reach this server can act for any organisation.' }),
    alert,
    field({ id: 'dev-org_id', label: 'Organisation id', hint: 'The UUID of the organisation to act for.', input: org }),
    field({ id: 'dev-name', label: 'Your name', hint: 'Recorded as the actor in audit trails.', input: name }),
    h('div', { class: 'actions' }, submit, again ? null : fresh));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const { data } = await call('/console/dev-session', {
        method: 'POST', bearer: false, body: { org_id: org.value.trim(), name: name.value.trim() },
      });
      localStorage.setItem('keymint.console.last-org', org.value.trim());
      localStorage.setItem('keymint.console.last-name', name.value.trim());
      startSession(data.access_token, data.expires_at, 'development');
      session.org_id = org.value.trim();
      sessionStorage.setItem(SESSION, JSON.stringify(session));
      done();
    } catch (error) {
      showRefusal(form, alert, error, 'dev', 'Not signed in');
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// The last organisation and name are remembered to save typing; neither is a
// secret (the token is not kept here).
function lastOrg() { return localStorage.getItem('keymint.console.last-org'); }
function lastName() { return localStorage.getItem('keymint.console.last-name'); }

function signInPage() {
  const next = new URLSearchParams(location.search).get('next');
  const target = next && next.startsWith('/console') && !next.startsWith('//') ? next : '/console';
  if (sessionValid()) {
    navigate(target, { replace: true });
    return;
  }
  page('Sign in',
    h('h1', { text: 'Sign in to Keymint' }),
    h('p', { class: 'lead', text: 'The console manages your organisation\'s API keys with the same API your scripts use.' }),
    h('div', { class: 'card' }, signInForm(() => { updateChrome(); navigate(target, { replace: true }); }, false, target)));
}

// ---------------------------------------------------------------- keys list

// The API decides a key's status; the console only names and colours it.
const STATUS = {
  active: ['ok', 'Active'],
  leaked: ['warn', 'Leaked'],
  expired: ['bad', 'Expired'],
  revoked: ['bad', 'Revoked'],
};

function statusBadge(key) {
  const [kind, label] = STATUS[key.status] || ['', key.status];
  return h('span', { class: `badge ${kind}`, text: label });
}

const COLUMNS = ['Name', 'Environment', 'Key', 'Owner', 'Created', 'Last used', 'Status'];

function keyRow(key) {
  const cells = [
    h('a', { href: `/console/keys/${key.id}`, text: key.name }),
    h('span', { class: 'badge', text: key.environment }),
    h('code', { text: key.private_key_display }),
    key.owner_id ? h('span', { text: key.owner_id }) : h('span', { text: '—' }),
    time(key.created_at),
    time(key.last_used_at),
    statusBadge(key),
  ];
  return h('tr', {}, cells.map((cell, i) => h('td', { 'data-label': COLUMNS[i], class: i === 0 ? 'name' : '' }, cell)));
}

function keysTable(rows) {
  return h('table', {},
    h('caption', { class: 'visually-hidden', text: 'API keys, newest first' }),
    h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', {}, rows));
}

function skeletonRows(n) {
  return Array.from({ length: n }, () => h('tr', { 'aria-hidden': 'true' },
    COLUMNS.map((c) => h('td', { 'data-label': c }, h('span', { class: 'skeleton-bar' })))));
}

async function keysPage() {
  const query = new URLSearchParams(location.search);
  const filters = {
    name: query.get('name') || '',
    environment: query.get('environment') || '',
    is_revoked: query.get('is_revoked') || '',
    owner_id: query.get('owner_id') || '',
  };
  const select = (name, options) => h('select', { name }, options.map(([value, label]) =>
    h('option', { value, selected: filters[name] === value, text: label })));
  const nameInput = h('input', { type: 'search', name: 'name', value: filters.name, maxlength: '100', autocomplete: 'off' });
  const ownerInput = h('input', { type: 'text', name: 'owner_id', value: filters.owner_id, maxlength: '255', autocomplete: 'off' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter keys' },
    field({ id: 'filter-name', label: 'Name contains', input: nameInput, error: false }),
    field({ id: 'filter-environment', label: 'Environment', error: false,
      input: select('environment', [['', 'All'], ['live', 'Live'], ['test', 'Test']]) }),
    field({ id: 'filter-status', label: 'Status', error: false,
      input: select('is_revoked', [['', 'All'], ['false', 'Not revoked'], ['true', 'Revoked']]) }),
    field({ id: 'filter-owner', label: 'Owner', input: ownerInput, error: false }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'button', text: 'Apply filters' }),
      h('a', { href: '/console', class: 'button quiet', text: 'Clear' })));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) next.set(k, String(v).trim());
    navigate(`/console${next.toString() ? `?${next}` : ''}`);
  });
  const alert = h('div', { class: 'alert', tabindex: '-1' });
  const results = h('div', { class: 'results', 'aria-busy': 'true' }, keysTable(skeletonRows(5)));
  // Made when the rows arrive, inside the results: nothing on the page sits
  // below them to be pushed down as they fill in.
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const status = h('p', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  page('Keys',
    h('div', { class: 'page-head' },
      h('h1', { text: 'API keys' }),
      h('a', { href: '/console/keys/new', class: 'button', text: 'Create key' })),
    // Folded on a phone unless a filter is on, so the keys come first there.
    h('details', {
      class: 'filter-box card',
      open: window.matchMedia('(min-width: 721px)').matches || Object.values(filters).some(Boolean),
    }, h('summary', { text: 'Filters' }), form),
    alert, status, results);

  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  if (query.get('cursor')) params.set('cursor', query.get('cursor'));
  const token = rendering;
  try {
    const { data, headers } = await call(`${API}?${params}`);
    if (token !== rendering) return;
    results.removeAttribute('aria-busy');
    const filtered = Object.values(filters).some(Boolean);
    if (!data.length) {
      results.replaceChildren(h('div', { class: 'empty' },
        filtered ? 'No keys match these filters.' : 'No keys yet. ',
        filtered ? null : h('a', { href: '/console/keys/new', text: 'Create the first one.' })));
    } else {
      results.replaceChildren(keysTable(data.map(keyRow)));
    }
    status.textContent = `${data.length} ${data.length === 1 ? 'key' : 'keys'} shown.`;
    const next = nextCursor(headers);
    // Cursors only go forward: "Previous" is the page this one was reached
    // from; a page opened from a link can only go back to the first.
    const cameFromPrevious = history.state && history.state.paged;
    let newer = h('span');
    if (query.get('cursor')) {
      newer = cameFromPrevious
        ? h('button', { type: 'button', class: 'button quiet', text: 'Previous page', onclick: () => history.back() })
        : h('button', {
          type: 'button', class: 'button quiet', text: 'First page',
          onclick: () => {
            const first = new URLSearchParams(location.search);
            first.delete('cursor');
            navigate(`/console${first.toString() ? `?${first}` : ''}`);
          },
        });
    }
    const older = next
      ? h('button', {
        type: 'button', class: 'button quiet', text: 'Next page',
        onclick: () => {
          const forward = new URLSearchParams(location.search);
          forward.set('cursor', next);
          navigate(`/console?${forward}`, { state: { paged: true } });
        },
      })
      : h('span');
    pager.replaceChildren(newer, older);
    if (next || query.get('cursor')) results.append(pager);
  } catch (error) {
    if (token !== rendering) return;
    results.removeAttribute('aria-busy');
    results.replaceChildren(h('div', { class: 'empty', text: 'The keys could not be loaded.' }));
    showError(alert, error, 'Could not list the keys');
  }
}

// ---------------------------------------------------------------- create

function createPage() {
  const alert = h('div', { class: 'alert', tabindex: '-1' });
  const input = (attrs) => h('input', { type: 'text', autocomplete: 'off', ...attrs });
  const name = input({ name: 'name', maxlength: '100', 'data-draft': 'name' });
  const description = h('textarea', { name: 'description', maxlength: '255', rows: '3', 'data-draft': 'description' });
  const live = h('input', { type: 'radio', name: 'environment', value: 'live', checked: true, id: 'create-environment-live', 'data-draft': 'environment' });
  const test = h('input', { type: 'radio', name: 'environment', value: 'test', id: 'create-environment-test', 'data-draft': 'environment' });
  const expires = h('input', { type: 'datetime-local', name: 'expires_at', 'data-draft': 'expires_at' });
  const owner = input({ name: 'owner_id', maxlength: '255', 'data-draft': 'owner_id' });
  const permissions = input({ name: 'permissions', 'data-draft': 'permissions', spellcheck: 'false' });
  const credits = h('input', { type: 'number', name: 'credits', min: '0', step: '1', inputmode: 'numeric', 'data-draft': 'credits' });
  const refill = h('select', { name: 'refill', 'data-draft': 'refill' },
    [['', 'Never'], ['daily', 'Every day (UTC)'], ['monthly', 'Every month, on the 1st (UTC)']].map(([value, label]) => h('option', { value, text: label })));
  const refillAmount = h('input', { type: 'number', name: 'refill_amount', min: '1', step: '1', inputmode: 'numeric', 'data-draft': 'refill_amount' });
  const limitName = input({ name: 'ratelimit_name', value: 'requests', maxlength: '64', 'data-draft': 'ratelimit_name', spellcheck: 'false' });
  const limit = h('input', { type: 'number', name: 'ratelimit_limit', min: '1', step: '1', inputmode: 'numeric', 'data-draft': 'ratelimit_limit' });
  const windowSize = h('select', { name: 'ratelimit_window', 'data-draft': 'ratelimit_window' },
    [['1000', 'second'], ['60000', 'minute'], ['3600000', 'hour'], ['86400000', 'day']].map(([value, label]) => h('option', { value, text: `per ${label}` })));
  const meta = h('textarea', { name: 'meta', rows: '3', spellcheck: 'false', 'data-draft': 'meta', class: 'mono' });
  const ratelimits = h('fieldset', { id: 'create-ratelimits', 'aria-describedby': 'create-ratelimits-hint create-ratelimits-error' },
    h('legend', { text: 'Rate limit (optional)' }),
    h('p', { class: 'hint', id: 'create-ratelimits-hint', text: 'Every verification takes one use; over the limit, verifications answer RATE_LIMITED until the window ends. Empty limit: none. (More than one: the API or `keymint keys`.)' }),
    h('div', { class: 'inline-fields' },
      field({ id: 'create-ratelimit-name', label: 'Name', input: limitName, error: false }),
      field({ id: 'create-ratelimit-limit', label: 'Uses', input: limit, error: false }),
      field({ id: 'create-ratelimit-window', label: 'Window', input: windowSize, error: false })),
    h('p', { class: 'field-error', id: 'create-ratelimits-error' }));
  const advanced = h('details', { class: 'advanced' },
    h('summary', { text: 'Usage limits and metadata' }),
    field({ id: 'create-credits_refill_interval', label: 'Refill credits', hint: 'Sets the credits back to an amount, once a period.', input: refill }),
    field({ id: 'create-credits_refill_amount', label: 'Refill to', input: refillAmount }),
    ratelimits,
    field({ id: 'create-meta', label: 'Metadata (optional)', hint: 'A JSON object of your own, returned with the key and its verifications, e.g. {"plan": "pro"}.', input: meta }));
  const submit = h('button', { type: 'submit', class: 'button', text: 'Create key' });
  const environment = h('fieldset', { 'aria-describedby': 'create-environment-error', id: 'create-environment' },
    h('legend', { text: 'Environment' }),
    h('label', { for: 'create-environment-live' }, live, 'Live'),
    h('label', { for: 'create-environment-test' }, test, 'Test'),
    h('p', { class: 'field-error', id: 'create-environment-error' }));
  const form = h('form', { novalidate: true, class: 'card' },
    alert,
    field({ id: 'create-name', label: 'Name', hint: 'Required. Up to 100 characters, shown in lists and audit trails.', input: name }),
    field({ id: 'create-description', label: 'Description (optional)', hint: 'Up to 255 characters.', input: description }),
    environment,
    field({ id: 'create-expires_at', label: 'Expires (optional)', hint: 'Your local time. Empty: the key never expires.', input: expires }),
    field({ id: 'create-owner_id', label: 'Owner (optional)', hint: 'Whom the key belongs to, in your terms, e.g. a user or team id.', input: owner }),
    field({ id: 'create-permissions', label: 'Permissions (optional)', hint: 'Separated by spaces or commas, e.g. documents.read documents.write', input: permissions }),
    field({ id: 'create-credits', label: 'Credits (optional)', hint: 'How many verifications the key allows. Empty: unlimited.', input: credits }),
    advanced,
    h('div', { class: 'actions' }, submit, h('a', { href: '/console', class: 'button quiet', text: 'Cancel' })));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = {
      name: name.value,
      environment: live.checked ? 'live' : 'test',
    };
    if (description.value) body.description = description.value;
    if (expires.value) {
      const at = new Date(expires.value);
      body.expires_at = Number.isNaN(at.getTime()) ? expires.value : at.toISOString();
    }
    if (owner.value) body.owner_id = owner.value;
    const names = permissions.value.split(/[\s,]+/).filter(Boolean);
    if (names.length) body.permissions = names;
    if (credits.value !== '' || refill.value) {
      body.credits = {};
      if (credits.value !== '') body.credits.remaining = Number(credits.value);
      if (refill.value) body.credits.refill = { interval: refill.value, amount: Number(refillAmount.value || 0) };
    }
    if (limit.value !== '') {
      body.ratelimits = [{ name: limitName.value.trim(), limit: Number(limit.value), duration_ms: Number(windowSize.value) }];
    }
    for (const el of [meta]) { el.removeAttribute('aria-invalid'); }
    document.getElementById('create-meta-error').textContent = '';
    if (meta.value.trim()) {
      try {
        body.meta = JSON.parse(meta.value);
      } catch {
        // Not JSON at all: said here, as the API could only say the same.
        advanced.open = true;
        meta.setAttribute('aria-invalid', 'true');
        document.getElementById('create-meta-error').textContent = 'Metadata must be JSON, e.g. {"plan": "pro"}.';
        meta.focus();
        return;
      }
    }
    submit.disabled = true;
    submit.textContent = 'Creating…';
    try {
      const { data } = await call(API, { method: 'POST', body });
      sessionStorage.removeItem(DRAFTS);
      pendingReveal = { id: data.id, privateKey: data.private_key, why: 'created' };
      navigate(`/console/keys/${data.id}`);
      toast(`Created “${data.name}”.`);
    } catch (error) {
      showRefusal(form, alert, error, 'create', 'The key was not created');
    } finally {
      submit.disabled = false;
      submit.textContent = 'Create key';
    }
  });
  page('Create key',
    h('div', { class: 'page-head' }, h('h1', { text: 'Create an API key' })),
    h('p', { class: 'lead', text: 'The private key is shown once, right after it is created. Keymint keeps only a hash of it.' }),
    form);
  restoreDrafts();
}

// ---------------------------------------------------------------- reveal

// A secret shown once: a private key (the default) or a webhook's signing
// secret (`noun: 'secret'`).
function revealPanel(reveal, onDone) {
  let secret = reveal.privateKey;
  const noun = reveal.noun || 'key';
  // The kind stays readable (acme_sk_live_…, whsec_…); the secret does not.
  const prefix = /^(?:(?:[a-z0-9]+_)?[a-z]+_(?:live|test)_|whsec_)/.exec(secret);
  const masked = `${prefix ? prefix[0] : ''}${'•'.repeat(24)}`;
  const shown = h('code', { class: 'secret', id: 'reveal-secret', text: masked, 'aria-live': 'polite' });
  const toggle = h('button', { type: 'button', class: 'button secondary', 'aria-pressed': 'false', 'aria-controls': 'reveal-secret', text: `Show ${noun}` });
  const copy = h('button', { type: 'button', class: 'button', text: `Copy ${noun}` });
  const copied = h('p', { role: 'status', class: 'hint' });
  const done = h('button', { type: 'button', class: 'button quiet', text: 'I have saved it' });
  toggle.addEventListener('click', () => {
    const show = toggle.getAttribute('aria-pressed') !== 'true';
    toggle.setAttribute('aria-pressed', String(show));
    toggle.textContent = show ? `Hide ${noun}` : `Show ${noun}`;
    shown.textContent = show ? secret : masked;
  });
  copy.addEventListener('click', async () => {
    try {
      if (navigator.clipboard) {
        await navigator.clipboard.writeText(secret);
      } else {
        // Plain-http pages other than localhost get no Clipboard API.
        const area = h('textarea', { class: 'visually-hidden', 'aria-hidden': 'true', readonly: true });
        area.value = secret;
        document.body.append(area);
        area.select();
        const done = document.execCommand('copy');
        area.remove();
        if (!done) throw new Error('refused');
      }
      copied.textContent = 'Copied to the clipboard.';
    } catch {
      copied.textContent = `The browser refused the clipboard: choose Show ${noun} and copy it by hand.`;
    }
  });
  const panel = h('section', { class: 'card reveal', 'aria-labelledby': 'reveal-title', tabindex: '-1', id: 'reveal' },
    h('h2', { id: 'reveal-title', text: reveal.title || (reveal.why === 'rotated' ? 'Copy the new private key now' : 'Copy your new private key now') }),
    h('p', { class: 'warning', text: reveal.warning || 'This is the only time Keymint shows this key: it is not stored and can never be shown again. If it is lost, rotate the key.' }),
    shown,
    h('div', { class: 'actions' }, toggle, copy, done),
    copied);
  done.addEventListener('click', () => {
    secret = '';
    panel.remove();
    onDone();
  });
  return panel;
}

// ---------------------------------------------------------------- key detail

const ACTIONS = {
  created: 'Created',
  imported: 'Imported',
  updated: 'Updated',
  rotated: 'Rotated',
  revoked: 'Revoked',
  deleted: 'Deleted',
  leaked: 'Reported leaked',
  credits_changed: 'Credits changed',
};

// Where a leak report came from, in words: its holder, or the place a secret
// scanner found it (GitHub's location types, such as pull_request_title).
function leakSource(source) {
  if (source === 'self_report') return 'by its holder';
  return `found in a ${source.replaceAll('_', ' ')}`;
}

function eventItem(event) {
  const what = ACTIONS[event.action] || event.action;
  const extra = event.fields && event.fields.length ? `: ${event.fields.join(', ')}` : '';
  const leak = event.leak ? ` ${leakSource(event.leak.source)}${event.leak.url ? ` (${event.leak.url})` : ''}` : '';
  return h('li', { 'data-action': event.action },
    h('span', { class: 'what', text: `${what}${extra}${leak}` }),
    h('span', { class: 'meta' }, time(event.occurred_at), event.actor ? ` · by ${event.actor}` : '',
      event.request_id ? ` · request ${event.request_id}` : ''));
}

function detailRows(key) {
  const text = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));
  const rows = [
    ['Status', statusBadge(key)],
    ['Key id', h('code', { text: key.id })],
    ['Environment', text(key.environment)],
    ['Private key', h('code', { text: key.private_key_display })],
    ['Public key', h('code', { text: key.public_key })],
    ['Description', text(key.description)],
    ['Owner', text(key.owner_id)],
    ['Permissions', key.permissions.length ? key.permissions.join(', ') : 'none'],
    ['Rate limits', key.ratelimits.length
      ? key.ratelimits.map((r) => `${r.name}: ${r.limit} per ${r.duration_ms / 1000} s`).join('; ') : 'none'],
    ['Credits', key.credits
      ? `${key.credits.remaining} remaining${key.credits.refill ? `, refilled ${key.credits.refill.interval} to ${key.credits.refill.amount}` : ''}`
      : 'unlimited'],
    ['Metadata', key.meta ? h('pre', { class: 'mono', text: JSON.stringify(key.meta, null, 2) }) : '—'],
    ['Created', time(key.created_at)],
    ['Last used', time(key.last_used_at)],
    ['Expires', key.expires_at ? time(key.expires_at) : 'never'],
    ['Revoked', key.revoked_at ? time(key.revoked_at) : 'no'],
    // After a rotation with a grace period, the replaced private key still
    // verifies: say until when, so nobody has to work it out from the trail.
    ['Previous private key', key.previous_key_valid_until
      ? h('span', { class: 'previous-key' }, 'works until ', time(key.previous_key_valid_until))
      : 'stopped working'],
    ['Reported leaked', key.leaked_at ? time(key.leaked_at) : 'no'],
    ['Organisation', h('code', { text: key.org_id })],
  ];
  return definitions(rows);
}

// [label, value] pairs as a description list's dt and dd elements.
function definitions(rows) {
  return rows.flatMap(([label, value]) => [h('dt', { text: label }), h('dd', {}, value)]);
}

// The rows of a details list before its data arrives: the same labels and as
// many rows, values held by placeholders, so the card does not grow (and push
// what is below it on a phone) when the values fill in.
function skeleton(rows) {
  for (let i = 1; i < rows.length; i += 2) rows[i].replaceChildren(h('span', { class: 'skeleton-bar' }));
  return rows;
}

function detailSkeleton() {
  return skeleton(detailRows({
    id: '', org_id: '', environment: '', private_key_display: '', public_key: '', permissions: [],
    ratelimits: [], is_revoked: false,
  }));
}

function confirmDialog({ title, body, confirm, danger, typed, failure, fields, onConfirm }) {
  const alert = h('div', { class: 'alert', tabindex: '-1' });
  const ok = h('button', { type: 'submit', class: `button${danger ? ' danger' : ''}`, text: confirm });
  const cancel = h('button', { type: 'button', class: 'button quiet', text: 'Cancel' });
  const dialog = h('dialog', { 'aria-labelledby': 'confirm-title' });
  const form = h('form', { method: 'dialog', novalidate: true },
    h('h2', { id: 'confirm-title', text: title }), ...body, alert,
    h('div', { class: 'actions' }, cancel, ok));
  if (typed) {
    const input = form.querySelector('input[data-confirm]');
    ok.disabled = true;
    input.addEventListener('input', () => { ok.disabled = input.value !== typed; });
  }
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    ok.disabled = true;
    try {
      await onConfirm(form);
      dialog.close();
    } catch (error) {
      ok.disabled = false;
      if (error instanceof SessionEnded) return;
      if (fields) showRefusal(form, alert, error, fields, failure);
      else showError(alert, error, failure);
    }
  });
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

// What a page shows in place of a thing that could not be loaded: why, and
// the way back (the alert above carries the error and its request id).
function missing(error, noun, back, backText) {
  const why = error.status === 404
    ? `No ${noun} has this id in your organisation: it may have been deleted, or the link may be wrong.`
    : `The ${noun} could not be loaded. Try again in a moment.`;
  return h('div', { class: 'card missing' },
    h('p', { text: why }),
    h('p', {}, h('a', { href: back, text: `← ${backText}` })));
}

async function keyPage(id) {
  const alert = h('div', { class: 'alert', tabindex: '-1' });
  const heading = h('h1', { text: 'API key' });
  const badges = h('div');
  const actions = h('div', { class: 'actions' });
  const details = h('dl', { class: 'details', 'aria-busy': 'true' }, detailSkeleton());
  const timeline = h('ol', { class: 'timeline', 'aria-busy': 'true' },
    h('li', { 'aria-hidden': 'true' }, h('span', { class: 'skeleton-bar' }), h('span', { class: 'skeleton-bar' })));
  const older = h('div');
  const revealSlot = h('div');
  const layout = h('div', { class: 'layout' },
    h('section', { class: 'card', 'aria-labelledby': 'details-title' },
      h('h2', { id: 'details-title', text: 'Details' }), details),
    h('section', { class: 'card', 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title', text: 'Audit trail' }), timeline, older));
  page('Key',
    h('p', {}, h('a', { href: '/console', text: '← All keys' })),
    h('div', { class: 'page-head' }, h('div', {}, heading, badges), actions),
    alert,
    revealSlot,
    layout);

  if (pendingReveal && pendingReveal.id === id) {
    const reveal = pendingReveal;
    pendingReveal = null;
    const panel = revealPanel(reveal, () => heading.focus());
    revealSlot.replaceChildren(panel);
    heading.setAttribute('tabindex', '-1');
    setTimeout(() => panel.focus(), 0);
  }

  const token = rendering;
  let key = null;
  const loadEvents = async (cursor) => {
    const params = new URLSearchParams({ limit: '50' });
    if (cursor) params.set('cursor', cursor);
    const { data, headers } = await call(`${API}/${id}/events?${params}`);
    if (!cursor) timeline.replaceChildren();
    timeline.removeAttribute('aria-busy');
    timeline.append(...data.map(eventItem));
    const next = nextCursor(headers);
    older.replaceChildren(next ? h('button', {
      type: 'button', class: 'button quiet', text: 'Show older events',
      onclick: () => loadEvents(next).catch((e) => showError(alert, e, 'Could not load events')),
    }) : '');
  };
  const show = (loaded) => {
    key = loaded;
    document.title = `${key.name} · Keymint console`;
    heading.textContent = key.name;
    badges.replaceChildren(statusBadge(key), ' ', h('span', { class: 'badge', text: key.environment }));
    details.removeAttribute('aria-busy');
    details.replaceChildren(...detailRows(key));
    actions.replaceChildren(...[
      h('button', { type: 'button', class: 'button quiet', text: 'Edit', onclick: edit }),
      key.credits ? h('button', { type: 'button', class: 'button quiet', text: 'Credits', onclick: credits }) : null,
      h('button', { type: 'button', class: 'button secondary', text: 'Rotate', disabled: key.is_revoked, onclick: rotate }),
      h('button', { type: 'button', class: 'button danger secondary', text: 'Revoke', disabled: key.is_revoked, onclick: revoke }),
      h('button', { type: 'button', class: 'button danger', text: 'Delete', onclick: remove }),
    ].filter(Boolean));
  };
  const refresh = async () => {
    const { data } = await call(`${API}/${id}`);
    show(data);
    await loadEvents();
  };
  const edit = () => {
    const name = h('input', { type: 'text', name: 'name', maxlength: '100', autocomplete: 'off', value: key.name });
    const description = h('textarea', { name: 'description', maxlength: '255', rows: '3' });
    description.value = key.description || '';
    const owner = h('input', { type: 'text', name: 'owner_id', maxlength: '255', autocomplete: 'off', value: key.owner_id || '' });
    confirmDialog({
      title: `Edit “${key.name}”`,
      body: [
        field({ id: 'edit-name', label: 'Name', input: name }),
        field({ id: 'edit-description', label: 'Description', hint: 'Empty: no description.', input: description }),
        field({ id: 'edit-owner_id', label: 'Owner', hint: 'Empty: no owner.', input: owner }),
      ],
      confirm: 'Save changes',
      failure: 'The key was not changed',
      fields: 'edit',
      onConfirm: async () => {
        const patch = {};
        if (name.value !== key.name) patch.name = name.value;
        if (description.value !== (key.description || '')) patch.description = description.value || null;
        if (owner.value !== (key.owner_id || '')) patch.owner_id = owner.value || null;
        if (!Object.keys(patch).length) return;
        const { data } = await call(`${API}/${id}`, { method: 'PATCH', body: patch });
        toast(`Saved “${data.name}”.`);
        await refresh();
        heading.focus();
      },
    });
  };
  const credits = () => {
    const op = h('select', { name: 'op' },
      [['increment', 'Add'], ['decrement', 'Take away'], ['set', 'Set to']].map(([value, label]) => h('option', { value, text: label })));
    const value = h('input', { type: 'number', name: 'value', min: '0', step: '1', inputmode: 'numeric' });
    // One change per dialog, however often it is submitted: a retry after a
    // lost answer replays the first instead of applying twice.
    const idempotency = crypto.randomUUID();
    confirmDialog({
      title: `Change the credits of “${key.name}”`,
      body: [
        h('p', { text: `${key.credits.remaining} remaining now. The change is applied at once, in step with the verifications spending them.` }),
        h('div', { class: 'inline-fields' },
          field({ id: 'credits-op', label: 'Change', input: op }),
          field({ id: 'credits-value', label: 'Credits', input: value })),
      ],
      confirm: 'Apply',
      failure: 'The credits were not changed',
      fields: 'credits',
      onConfirm: async () => {
        const { data } = await call(`${API}/${id}/credits`, {
          method: 'POST',
          headers: { 'Idempotency-Key': idempotency },
          body: { op: op.value, value: value.value === '' ? null : Number(value.value) },
        });
        toast(`${data.remaining} credits remaining.`);
        await refresh();
        heading.focus();
      },
    });
  };
  const rotate = () => {
    // An hour by default: rotating is how a running integration moves to a
    // new key, and cutting the old one off at once is the exception.
    const grace = h('select', { id: 'rotate-grace', name: 'grace' },
      [['0', 'None: the current private key stops working at once'], ['3600', '1 hour'], ['86400', '24 hours'], ['604800', '7 days']]
        .map(([value, label]) => h('option', { value, text: label, selected: value === '3600' })));
    confirmDialog({
      title: `Rotate “${key.name}”?`,
      body: [
        h('p', { text: 'A new private key replaces the current one. During the grace period the current private key keeps working, so the integration can switch without downtime.' }),
        h('div', { class: 'field' }, h('label', { for: 'rotate-grace', text: 'Grace period' }), grace),
      ],
      confirm: 'Rotate key',
      failure: 'The key was not rotated',
      onConfirm: async () => {
        const seconds = Number(grace.value);
        const { data } = await call(`${API}/${id}/rotate`, {
          method: 'POST', body: seconds ? { grace_period_seconds: seconds } : undefined,
        });
        const panel = revealPanel({ id, privateKey: data.private_key, why: 'rotated' }, () => heading.focus());
        revealSlot.replaceChildren(panel);
        toast(`Rotated “${data.name}”.`);
        await refresh();
        setTimeout(() => panel.focus(), 0);
      },
    });
  };
  const revoke = () => confirmDialog({
    title: `Revoke “${key.name}”?`,
    body: [h('p', { text: `“${key.name}” (${key.private_key_display}) stops verifying at once, everywhere. Revoking cannot be undone.` })],
    confirm: 'Revoke key',
    failure: 'The key was not revoked',
    danger: true,
    onConfirm: async () => {
      await call(`${API}/${id}/revoke`, { method: 'PUT' });
      toast(`Revoked “${key.name}”.`);
      await refresh();
      heading.focus();
    },
  });
  const remove = () => confirmDialog({
    title: `Delete “${key.name}”?`,
    body: [
      h('p', { text: `“${key.name}” is removed and stops verifying. Its audit trail is kept. This cannot be undone.` }),
      h('div', { class: 'field' },
        h('label', { for: 'delete-confirm' }, 'Type the key\'s name, ', h('strong', { text: key.name }), ', to confirm'),
        h('input', { type: 'text', id: 'delete-confirm', autocomplete: 'off', spellcheck: 'false', 'data-confirm': true })),
    ],
    confirm: 'Delete key',
    failure: 'The key was not deleted',
    danger: true,
    typed: key.name,
    onConfirm: async () => {
      await call(`${API}/${id}`, { method: 'DELETE' });
      navigate('/console');
      toast(`Deleted “${key.name}”.`);
    },
  });
  try {
    const { data } = await call(`${API}/${id}`);
    if (token !== rendering) return;
    show(data);
    await loadEvents();
  } catch (error) {
    if (token !== rendering) return;
    // Placeholders wait for data; with none coming they would wait forever.
    layout.replaceWith(missing(error, 'key', '/console', 'All keys'));
    if (error.status === 404) heading.textContent = 'Key not found';
    showError(alert, error, 'Could not load the key');
  }
}

// ---------------------------------------------------------------- verify

function verifyPage() {
  const alert = h('div', { class: 'alert', tabindex: '-1' });
  const key = h('input', { type: 'password', name: 'key', autocomplete: 'off', spellcheck: 'false', 'data-secret': true });
  const show = h('button', { type: 'button', class: 'button quiet', 'aria-pressed': 'false', 'aria-controls': 'verify-key', text: 'Show' });
  show.addEventListener('click', () => {
    const visible = key.type === 'password';
    key.type = visible ? 'text' : 'password';
    show.setAttribute('aria-pressed', String(visible));
    show.textContent = visible ? 'Hide' : 'Show';
  });
  const permissions = h('input', { type: 'text', name: 'permissions', autocomplete: 'off', spellcheck: 'false', 'data-draft': 'permissions' });
  const submit = h('button', { type: 'submit', class: 'button', text: 'Verify' });
  const result = h('section', { class: 'card', 'aria-labelledby': 'verdict', hidden: true });
  key.id = 'verify-key';
  key.setAttribute('aria-describedby', 'verify-key-hint verify-key-error');
  const form = h('form', { novalidate: true, class: 'card' },
    alert,
    h('div', { class: 'field' },
      h('label', { for: 'verify-key', text: 'Private key' }),
      h('p', { class: 'hint', id: 'verify-key-hint', text: 'The key as a caller presents it, e.g. sk_live_…' }),
      h('div', { class: 'with-button' }, key, show),
      h('p', { class: 'field-error', id: 'verify-key-error' })),
    field({ id: 'verify-permissions', label: 'Required permissions (optional)', hint: 'A permission the key must hold, or a query such as a.read AND b.write.', input: permissions }),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { key: key.value.trim() };
    if (permissions.value.trim()) body.permissions = permissions.value.trim();
    submit.disabled = true;
    try {
      const { data, requestId } = await call(`${API}/verify`, { method: 'POST', bearer: false, body });
      alert.replaceChildren();
      for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
      key.removeAttribute('aria-invalid');
      const rows = [
        ['Code', h('code', { text: data.code })],
        ['Key', data.key_id ? h('a', { href: `/console/keys/${data.key_id}`, text: data.name || data.key_id }) : '—'],
        ['Environment', data.environment || '—'],
        ['Expires', data.expires_at ? time(data.expires_at) : (data.valid ? 'never' : '—')],
        ['Permissions', data.permissions ? data.permissions.join(', ') || 'none' : '—'],
        ['Credits left', data.credits ? String(data.credits.remaining) : (data.valid ? 'unlimited' : '—')],
        ['Request id', h('code', { text: requestId })],
      ];
      // Told apart by colour, by an icon and by the words, so no one of them
      // has to carry the verdict alone.
      const verdict = h('h2', { id: 'verdict', class: `verdict ${data.valid ? 'good' : 'bad'}` },
        h('span', { class: 'verdict-icon', 'aria-hidden': 'true', text: data.valid ? '✓' : '✗' }),
        data.valid ? 'Valid' : `Not valid: ${data.code}`);
      // What the key lacks is the difference between what it holds and what
      // was asked, whichever way the query is written: show both.
      const why = data.code === 'INSUFFICIENT_PERMISSIONS'
        ? h('p', { class: 'verdict-why' },
          'The key holds ', h('strong', { text: (data.permissions || []).join(', ') || 'no permissions' }),
          '; this check asked for ', h('code', { text: body.permissions || '' }), '.')
        : null;
      result.replaceChildren(...[verdict, why, h('dl', { class: 'details' }, definitions(rows))].filter(Boolean));
      result.hidden = false;
      result.setAttribute('tabindex', '-1');
      result.focus();
    } catch (error) {
      result.hidden = true;
      showRefusal(form, alert, error, 'verify', 'The key was not checked');
    } finally {
      submit.disabled = false;
    }
  });
  page('Verify',
    h('div', { class: 'page-head' }, h('h1', { text: 'Verify a key' })),
    h('p', { class: 'lead', text: 'Checks a key exactly as your services do (POST /api/v2/api-keys/verify). It is a real verification: it counts as a use, spends credits and counts against rate limits.' }),
    form, result);
  restoreDrafts();
}

// ---------------------------------------------------------------- webhooks

const HOOKS = '/api/v2/webhooks';
const EVENT_TYPES = [
  ['key.created', 'A key is created'],
  ['key.updated', 'A key is changed'],
  ['key.rotated', 'A key is rotated'],
  ['key.revoked', 'A key is revoked'],
  ['key.deleted', 'A key is deleted'],
  ['key.leaked', 'A key is reported leaked'],
  ['key.expiring', 'A key expires soon'],
  ['key.credits_low', 'A key runs low on credits'],
];

// One checkbox per event type, in a fieldset that errors can name.
function eventChoices(prefix, chosen) {
  const boxes = EVENT_TYPES.map(([value, label]) => {
    const id = `${prefix}-event-${value.replace(/[._]/g, '-')}`;
    return h('label', { for: id, class: 'choice' },
      h('input', { type: 'checkbox', id, name: 'event_types', value, checked: !chosen || chosen.includes(value) }),
      h('span', {}, label, ' ', h('code', { text: value })));
  });
  return h('fieldset', { id: `${prefix}-event_types`, 'aria-describedby': `${prefix}-event_types-hint ${prefix}-event_types-error`, class: 'choices' },
    h('legend', { text: 'Events' }),
    h('p', { class: 'hint', id: `${prefix}-event_types-hint`, text: 'Which events are sent to this endpoint.' }),
    ...boxes,
    h('p', { class: 'field-error', id: `${prefix}-event_types-error` }));
}

function chosenEvents(fieldset) {
  return [...fieldset.querySelectorAll('input[type=checkbox]:checked')].map((box) => box.value);
}

// An enabled endpoint's state is its circuit breaker's: paused endpoints get
// nothing until the time shown, then one delivery probes them.
function hookState(hook) {
  if (!hook.enabled) return h('span', { class: 'badge', text: 'Disabled' });
  const health = hook.health || { state: 'healthy', consecutive_failures: 0 };
  const failures = health.consecutive_failures;
  const [kind, text] = {
    healthy: ['ok', 'Enabled'],
    failing: ['warn', `Failing: ${failures} in a row`],
    paused: ['bad', 'Paused: keeps failing'],
    probing: ['warn', 'Probing after a pause'],
  }[health.state] || ['', health.state];
  return h('span', { class: `badge ${kind}`, text });
}

function hookHealth(hook) {
  const health = hook.health;
  if (!health) return '';
  if (health.state === 'paused') {
    return h('span', {}, `Nothing is sent until `, time(health.paused_until),
      `, after ${health.consecutive_failures} failed attempts in a row; then one delivery tries again. Send a delivery again to try now.`);
  }
  if (health.state === 'probing') return 'The pause is over: one delivery at a time tries the endpoint until one succeeds.';
  if (health.state === 'failing') return `The last ${health.consecutive_failures} attempts failed.`;
  return 'Its last attempt succeeded (or none was made yet).';
}

function hookRows(hook) {
  return definitions([
    ['State', hookState(hook)],
    ['Delivery health', hookHealth(hook)],
    ['Events', hook.event_types.join(', ')],
    ['Endpoint id', h('code', { text: hook.id })],
    ['Created', time(hook.created_at)],
    ['Changed', time(hook.updated_at)],
  ]);
}

function deliveryBadge(status) {
  const kind = { delivered: 'ok', failed: 'bad', pending: 'warn' }[status] || '';
  return h('span', { class: `badge ${kind}`, text: status });
}

async function webhooksPage() {
  const alert = h('div', { class: 'alert', tabindex: '-1' });
  // No reserved height (unlike the keys list): the form below is placed only
  // once the list is in, so nothing moves, and a short list leaves no gap.
  const results = h('div', { class: 'hook-list', 'aria-busy': 'true' });
  const revealSlot = h('div');
  const url = h('input', { type: 'text', name: 'url', inputmode: 'url', autocomplete: 'off', spellcheck: 'false', placeholder: 'https://', 'data-draft': 'url' });
  const events = eventChoices('hook', null);
  const submit = h('button', { type: 'submit', class: 'button', text: 'Add endpoint' });
  const formAlert = h('div', { class: 'alert', tabindex: '-1' });
  const form = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'add-hook-title' },
    h('h2', { id: 'add-hook-title', text: 'Add an endpoint' }),
    formAlert,
    field({ id: 'hook-url', label: 'URL', hint: 'Where Keymint POSTs each event, signed (Standard Webhooks).', input: url }),
    events,
    h('div', { class: 'actions' }, submit));
  const table = (hooks) => h('table', {},
    h('caption', { class: 'visually-hidden', text: 'Webhook endpoints, oldest first' }),
    h('thead', {}, h('tr', {}, ['Endpoint', 'Events', 'State', 'Created'].map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', {}, hooks.map((hook) => h('tr', {},
      h('td', { 'data-label': 'Endpoint', class: 'name' }, h('a', { href: `/console/webhooks/${hook.id}`, text: hook.url })),
      h('td', { 'data-label': 'Events', text: hook.event_types.length === EVENT_TYPES.length ? 'all' : hook.event_types.join(', ') }),
      h('td', { 'data-label': 'State' }, hookState(hook)),
      h('td', { 'data-label': 'Created' }, time(hook.created_at))))));
  const load = async () => {
    const { data } = await call(HOOKS);
    results.removeAttribute('aria-busy');
    results.replaceChildren(data.length ? table(data)
      : h('div', { class: 'empty', text: 'No endpoints yet. Add one below to hear about every change to your keys.' }));
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const { data } = await call(HOOKS, { method: 'POST', body: { url: url.value.trim(), event_types: chosenEvents(events) } });
      sessionStorage.removeItem(DRAFTS);
      markFields(form, { fields: [] }, 'hook');
      formAlert.replaceChildren();
      url.value = '';
      const panel = revealPanel({
        privateKey: data.secret, noun: 'secret',
        title: 'Copy the endpoint\'s signing secret now',
        warning: 'This is the only time Keymint shows this secret. Your receiver checks each delivery\'s signature with it; if it is lost, rotate the secret.',
      }, () => document.querySelector('main h1').focus());
      revealSlot.replaceChildren(panel);
      toast(`Added ${data.url}.`);
      await load();
      panel.focus();
    } catch (error) {
      showRefusal(form, formAlert, error, 'hook', 'The endpoint was not added');
    } finally {
      submit.disabled = false;
    }
  });
  page('Webhooks',
    h('div', { class: 'page-head' }, h('h1', { text: 'Webhooks' })),
    h('p', { class: 'lead', text: 'Keymint tells your endpoints about changes to your keys as they happen, signed, retried until they answer.' }),
    alert, revealSlot, results);
  const token = rendering;
  try {
    await load();
  } catch (error) {
    results.removeAttribute('aria-busy');
    results.replaceChildren();
    showError(alert, error, 'Could not list the endpoints');
  }
  if (token !== rendering) return;
  // Placed once the list is in, so the list filling in never pushes it down.
  results.after(form);
  restoreDrafts();
}

async function webhookPage(id) {
  const alert = h('div', { class: 'alert', tabindex: '-1' });
  const heading = h('h1', { text: 'Webhook endpoint' });
  const actions = h('div', { class: 'actions' });
  const details = h('dl', { class: 'details', 'aria-busy': 'true' },
    skeleton(hookRows({ enabled: false, event_types: [], id: '' })));
  const deliveries = h('div', { 'aria-busy': 'true' });
  const older = h('div');
  const revealSlot = h('div');
  const body = h('div', {},
    h('section', { class: 'card', 'aria-labelledby': 'hook-details-title' },
      h('h2', { id: 'hook-details-title', text: 'Details' }), details),
    h('section', { class: 'card', 'aria-labelledby': 'deliveries-title' },
      h('h2', { id: 'deliveries-title', text: 'Deliveries' }),
      h('p', { class: 'hint', text: 'Newest first, with every attempt. A failed delivery can be sent again.' }),
      deliveries, older));
  page('Webhook',
    h('p', {}, h('a', { href: '/console/webhooks', text: '← All endpoints' })),
    h('div', { class: 'page-head' }, heading, actions),
    alert, revealSlot, body);
  let hook = null;
  const token = rendering;
  const deliveryRow = (d) => {
    const last = d.attempts[d.attempts.length - 1];
    const outcome = last
      ? `${last.status_code ? `HTTP ${last.status_code}` : last.error || 'no answer'} in ${last.latency_ms} ms`
      : 'not attempted yet';
    const retry = d.status === 'delivered' ? '' : h('button', {
      type: 'button', class: 'button quiet', text: 'Send again',
      'aria-label': `Send the ${d.event_type} delivery again`,
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          await call(`${HOOKS}/${id}/deliveries/${d.id}/retry`, { method: 'POST' });
          toast(`The ${d.event_type} delivery is being sent again.`);
          setTimeout(() => loadDeliveries().catch(() => {}), 800);
        } catch (error) {
          event.target.disabled = false;
          showError(alert, error, 'The delivery was not sent again');
        }
      },
    });
    return h('tr', { 'data-status': d.status },
      h('td', { 'data-label': 'Event' }, h('code', { class: 'event', text: d.event_type })),
      h('td', { 'data-label': 'Key' }, h('a', {
        href: `/console/keys/${d.key_id}`, class: 'key-id', title: d.key_id,
        'aria-label': `Key ${d.key_id}`, text: `${d.key_id.slice(0, 8)}…`,
      })),
      h('td', { 'data-label': 'Status' }, deliveryBadge(d.status)),
      h('td', { 'data-label': 'Attempts', text: `${d.attempts.length}: ${outcome}` }),
      h('td', { 'data-label': 'Created' }, time(d.created_at)),
      h('td', { 'data-label': 'Next attempt' }, d.next_attempt_at ? time(d.next_attempt_at) : '—'),
      h('td', { 'data-label': '' }, retry));
  };
  const loadDeliveries = async (cursor) => {
    const params = new URLSearchParams({ limit: '20' });
    if (cursor) params.set('cursor', cursor);
    const { data, headers } = await call(`${HOOKS}/${id}/deliveries?${params}`);
    deliveries.removeAttribute('aria-busy');
    const rows = data.map(deliveryRow);
    if (!cursor) {
      deliveries.replaceChildren(data.length ? h('table', {},
        h('caption', { class: 'visually-hidden', text: 'Deliveries, newest first' }),
        h('thead', {}, h('tr', {}, ['Event', 'Key', 'Status', 'Attempts', 'Created', 'Next attempt', 'Action'].map((c) =>
          h('th', { scope: 'col' }, c === 'Action' ? h('span', { class: 'visually-hidden', text: c }) : c)))),
        h('tbody', {}, rows)) : h('div', { class: 'empty', text: 'Nothing sent yet: deliveries appear here as keys change.' }));
    } else {
      deliveries.querySelector('tbody').append(...rows);
    }
    const next = nextCursor(headers);
    older.replaceChildren(next ? h('button', {
      type: 'button', class: 'button quiet', text: 'Show older deliveries',
      onclick: () => loadDeliveries(next).catch((e) => showError(alert, e, 'Could not load deliveries')),
    }) : '');
  };
  const show = (loaded) => {
    hook = loaded;
    document.title = `${hook.url} · Keymint console`;
    heading.textContent = hook.url;
    details.removeAttribute('aria-busy');
    details.replaceChildren(...hookRows(hook));
    actions.replaceChildren(
      h('button', { type: 'button', class: 'button quiet', text: 'Edit', onclick: edit }),
      h('button', { type: 'button', class: 'button secondary', text: hook.enabled ? 'Disable' : 'Enable', onclick: toggle }),
      h('button', { type: 'button', class: 'button secondary', text: 'Rotate secret', onclick: rotate }),
      h('button', { type: 'button', class: 'button danger', text: 'Delete', onclick: remove }));
  };
  const refresh = async () => {
    const { data } = await call(`${HOOKS}/${id}`);
    show(data);
    await loadDeliveries();
  };
  const toggle = async () => {
    try {
      const { data } = await call(`${HOOKS}/${id}`, { method: 'PATCH', body: { enabled: !hook.enabled } });
      show(data);
      toast(data.enabled ? 'Enabled: waiting deliveries go out now.' : 'Disabled: deliveries wait until it is enabled again.');
    } catch (error) {
      showError(alert, error, 'The endpoint was not changed');
    }
  };
  const edit = () => {
    const url = h('input', { type: 'text', name: 'url', inputmode: 'url', autocomplete: 'off', spellcheck: 'false', value: hook.url });
    const events = eventChoices('edit', hook.event_types);
    confirmDialog({
      title: `Edit ${hook.url}`,
      body: [field({ id: 'edit-url', label: 'URL', input: url }), events],
      confirm: 'Save changes',
      failure: 'The endpoint was not changed',
      fields: 'edit',
      onConfirm: async () => {
        const { data } = await call(`${HOOKS}/${id}`, {
          method: 'PATCH', body: { url: url.value.trim(), event_types: chosenEvents(events) },
        });
        show(data);
        toast('Saved the endpoint.');
        heading.focus();
      },
    });
  };
  const rotate = () => confirmDialog({
    title: `Rotate the signing secret of ${hook.url}?`,
    body: [h('p', { text: 'A new secret signs every delivery from now on. The current one keeps signing alongside it for a while (a day by default), so the receiver can switch without rejecting any.' })],
    confirm: 'Rotate secret',
    failure: 'The secret was not rotated',
    onConfirm: async () => {
      const { data } = await call(`${HOOKS}/${id}/rotate-secret`, { method: 'POST' });
      const panel = revealPanel({
        privateKey: data.secret, noun: 'secret', title: 'Copy the new signing secret now',
        warning: 'This is the only time Keymint shows this secret. Deliveries are signed with both secrets for now; switch the receiver to the new one.',
      }, () => heading.focus());
      revealSlot.replaceChildren(panel);
      toast('Rotated the signing secret.');
      setTimeout(() => panel.focus(), 0);
    },
  });
  const remove = () => confirmDialog({
    title: `Delete ${hook.url}?`,
    body: [h('p', { text: `Nothing more is sent to ${hook.url}, and its deliveries are forgotten. This cannot be undone.` })],
    confirm: 'Delete endpoint',
    failure: 'The endpoint was not deleted',
    danger: true,
    onConfirm: async () => {
      await call(`${HOOKS}/${id}`, { method: 'DELETE' });
      navigate('/console/webhooks');
      toast(`Deleted ${hook.url}.`);
    },
  });
  try {
    await refresh();
  } catch (error) {
    if (token !== rendering) return;
    body.replaceWith(missing(error, 'endpoint', '/console/webhooks', 'All endpoints'));
    if (error.status === 404) heading.textContent = 'Endpoint not found';
    showError(alert, error, 'Could not load the endpoint');
  }
}

// ---------------------------------------------------------------- routing

const ROUTES = [
  [/^\/console\/?$/, keysPage, 'keys'],
  [/^\/console\/keys\/new\/?$/, createPage, 'new'],
  [/^\/console\/keys\/([0-9a-fA-F-]{36})\/?$/, keyPage, 'keys'],
  [/^\/console\/verify\/?$/, verifyPage, 'verify'],
  [/^\/console\/webhooks\/?$/, webhooksPage, 'webhooks'],
  [/^\/console\/webhooks\/([0-9a-fA-F-]{36})\/?$/, webhookPage, 'webhooks'],
  [/^\/console\/sign-in\/?$/, signInPage, ''],
];

function notFoundPage() {
  page('Not found',
    h('h1', { text: 'Page not found' }),
    h('p', {}, 'There is no console page here. ', h('a', { href: '/console', text: 'Go to the keys.' })));
}

function updateChrome() {
  const signedIn = sessionValid();
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  document.getElementById('dev-banner').hidden = !(config && config.sign_in === 'development');
  if (signedIn) {
    const who = [session.subject, session.org_id ? `organisation ${session.org_id}` : ''].filter(Boolean).join(' · ');
    document.getElementById('who-text').textContent = who;
  }
}

function render(focus) {
  rendering += 1;
  for (const dialog of document.querySelectorAll('dialog:not(.session-ended)')) dialog.remove();
  const path = location.pathname;
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  updateChrome();
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (found && link.dataset.nav === found[2] && (found[2] !== 'keys' || path === '/console' || path === '/console/')) {
      link.setAttribute('aria-current', 'page');
    } else {
      link.removeAttribute('aria-current');
    }
  }
  if (!found) return notFoundPage();
  const [pattern, view] = found;
  if (view !== signInPage && !sessionValid()) {
    const next = encodeURIComponent(location.pathname + location.search);
    history.replaceState(null, '', `/console/sign-in?next=${next}`);
    signInPage();
  } else {
    view(...(pattern.exec(path).slice(1)));
  }
  if (focus) {
    const heading = document.querySelector('main h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus();
    }
  }
  return undefined;
}

function navigate(url, { replace = false, state = null } = {}) {
  if (replace) history.replaceState(state, '', url);
  else history.pushState(state, '', url);
  render(true);
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || link.getAttribute('href').startsWith('#') || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/console') || url.pathname.startsWith('/console/assets')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => render(true));

async function start() {
  document.getElementById('sign-out').addEventListener('click', signOut);
  try {
    const response = await fetch('/console/config.json', { cache: 'no-store' });
    config = await response.json();
  } catch {
    config = { sign_in: 'unavailable' };
  }
  loadSession();
  if (config.sign_in === 'oidc') {
    try {
      const returnTo = await finishOidc();
      if (returnTo) history.replaceState(null, '', returnTo);
    } catch (error) {
      endSession();
      history.replaceState(null, '', '/console/sign-in');
      render(false);
      showError(document.querySelector('main .alert') || document.getElementById('main'), error, 'Not signed in');
      return;
    }
  }
  render(false);
}

start();
