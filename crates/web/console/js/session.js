// The signed-in session: kept in this tab's sessionStorage (gone when the tab
// closes), never in localStorage or a URL.

import { getConfig, getSession, setSession } from './state.js';

const SESSION = 'keymint.console.session';

export function loadSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION) || 'null');
    setSession(stored && stored.token ? stored : null);
  } catch {
    setSession(null);
  }
}

// Whether there is a session that lasts at least five more seconds.
export function sessionValid() {
  const session = getSession();
  return Boolean(session && session.expires_at * 1000 > Date.now() + 5000);
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

// Keeps a new session. `orgId`, when given, is the organisation the person
// chose (the development sign-in); otherwise it is read from the token.
export function startSession(token, expiresAt, mode, orgId) {
  const claims = claimsOf(token);
  const session = {
    token,
    mode,
    expires_at: expiresAt || claims.exp || Math.floor(Date.now() / 1000) + 300,
    subject: claims.name || claims.email || claims.sub || '',
    org_id: orgId !== undefined ? orgId : claims[getConfig().org_claim || 'org_id'] || '',
  };
  setSession(session);
  sessionStorage.setItem(SESSION, JSON.stringify(session));
}

export function endSession() {
  setSession(null);
  sessionStorage.removeItem(SESSION);
}
