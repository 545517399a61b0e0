// Signing in at an OIDC issuer (the authorization-code flow with PKCE), and
// signing out, there too when the issuer has an end-session endpoint.

import { ApiError } from './api.js';
import { toast } from './dom.js';
import { clearDrafts } from './drafts.js';
import { navigate } from './nav.js';
import { endSession, startSession } from './session.js';
import { getConfig, getSession } from './state.js';

const PENDING = 'keymint.console.oidc';

// The issuer's discovery document, fetched once per page load.
let discovery = null;

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
  const { issuer } = getConfig();
  const base = issuer.endsWith('/') ? issuer : `${issuer}/`;
  const response = await fetch(`${base}.well-known/openid-configuration`, { credentials: 'omit' });
  if (!response.ok) throw new ApiError(`The identity provider answered ${response.status} to discovery.`);
  discovery = await response.json();
  return discovery;
}

// Which API the token is for, said both ways providers understand: Auth0's
// `audience`, and RFC 8707's `resource` (an absolute URI), without which a
// standards-following provider issues an opaque token Keymint cannot read.
function audienceParams(config) {
  if (!config.audience) return {};
  const params = { audience: config.audience };
  try {
    if (new URL(config.audience).protocol) params.resource = config.audience;
  } catch { /* not a URI: a resource indicator must be one */ }
  return params;
}

// Asks Keymint whether it takes the token just issued, so that a refusal is
// explained at sign-in instead of ending the session on the first page.
async function checkWithKeymint(token) {
  let response;
  try {
    response = await fetch('/api/v2/api-keys?limit=1', {
      headers: { Authorization: `Bearer ${token}` }, cache: 'no-store', credentials: 'omit',
    });
  } catch {
    return; // Keymint unreachable: the pages say so themselves.
  }
  if (response.ok) return;
  const body = await response.json().catch(() => ({}));
  const detail = typeof body.detail === 'string' ? body.detail : `Keymint answered ${response.status}`;
  const requestId = response.headers.get('x-request-id') || '';
  if (response.status === 401) {
    throw new ApiError(`Keymint refused the token the identity provider issued: ${detail}. `
      + 'Keymint reads a JWT issued for its API: set auth.audience to the API identifier the provider '
      + 'knows (the console asks for it as audience and as resource) and check auth.issuer.',
    { status: 401, requestId });
  }
  if (response.status === 403) {
    throw new ApiError(`Keymint accepted the token but: ${detail}. `
      + 'Ask the identity provider for the API permissions (console.scope, e.g. '
      + '"openid profile email read:api_keys write:api_keys") or grant them to this user.',
    { status: 403, requestId });
  }
}

function redirectUri() {
  return `${location.origin}/console`;
}

// The authorization-code flow with PKCE. The answer comes back in the URL's
// fragment (response_mode=fragment), which browsers never send to a server, so
// the code reaches no log; the verifier stays in this tab's sessionStorage.
export async function startOidc(returnTo) {
  const config = getConfig();
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
  Object.assign(params, audienceParams(config));
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  location.assign(url.toString());
}

function isAnswer(params) {
  return params.has('state') && (params.has('code') || params.has('error'));
}

// The issuer's answer in this page's URL (then removed from it), with the
// state this tab asked with; null when the URL holds no answer.
function takeAnswer() {
  // Asked for in the fragment; an issuer that ignores response_mode answers in
  // the query (Keymint never logs query strings).
  let answer = new URLSearchParams(location.hash.slice(1));
  if (!isAnswer(answer)) answer = new URLSearchParams(location.search);
  if (!isAnswer(answer)) return null;
  history.replaceState(null, '', location.pathname);
  let pending = null;
  try { pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null'); } catch { pending = null; }
  sessionStorage.removeItem(PENDING);
  return { answer, pending };
}

// Completes a sign-in the issuer answered: returns where to go, or null when
// this page load is no answer.
export async function finishOidc() {
  const taken = takeAnswer();
  if (!taken) return null;
  const { answer, pending } = taken;
  if (answer.has('error')) {
    const why = answer.get('error_description') || answer.get('error');
    throw new ApiError(`The identity provider refused the sign-in: ${why}`);
  }
  if (!pending || answer.get('state') !== pending.state) {
    throw new ApiError('This sign-in answer was not asked for by this tab; sign in again.');
  }
  const provider = await discover();
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: answer.get('code'),
    redirect_uri: redirectUri(),
    client_id: getConfig().client_id,
    code_verifier: pending.verifier,
    ...audienceParams(getConfig()),
  });
  const response = await fetch(provider.token_endpoint, {
    method: 'POST', body: form, credentials: 'omit',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok || !tokens.access_token) {
    const why = tokens.error_description || tokens.error || response.status;
    throw new ApiError(`The identity provider refused the code: ${why}`);
  }
  await checkWithKeymint(tokens.access_token);
  const expiresAt = tokens.expires_in ? Math.floor(Date.now() / 1000) + Number(tokens.expires_in) : 0;
  startSession(tokens.access_token, expiresAt, 'oidc');
  return pending.returnTo || '/console';
}

export async function signOut() {
  const session = getSession();
  const mode = session && session.mode;
  endSession();
  clearDrafts();
  if (mode === 'oidc') {
    const provider = await discover().catch(() => null);
    if (provider && provider.end_session_endpoint) {
      const url = new URL(provider.end_session_endpoint);
      url.searchParams.set('client_id', getConfig().client_id);
      url.searchParams.set('post_logout_redirect_uri', redirectUri());
      location.assign(url.toString());
      return;
    }
  }
  navigate('/console/sign-in', { replace: true });
  toast('Signed out.');
}
