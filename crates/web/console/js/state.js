// The console's state that more than one module reads: how to sign in, who is
// signed in, a private key waiting to be shown, and which render is current.
// Only the functions below change it, so every change is a call to find.

let config = null;
let session = null;
// A private key shown once: set by create or rotate, taken as soon as the
// reveal is rendered, so a reload or a later visit never finds it.
let pendingReveal = null;
// Counts page renders: an answer that arrives after its page was left is
// dropped instead of drawn over the next page.
let rendering = 0;

// How people sign in, from /console/config.json (null until it is read).
export function getConfig() {
  return config;
}

export function setConfig(value) {
  config = value;
}

// The signed-in session ({ token, mode, expires_at, subject, org_id }) or null.
export function getSession() {
  return session;
}

export function setSession(value) {
  session = value;
}

// Keeps a secret for the key page with this id to show once.
export function setPendingReveal(reveal) {
  pendingReveal = reveal;
}

// The secret waiting for the key `id`, removed as it is taken; null if none.
export function takePendingReveal(id) {
  if (!pendingReveal || pendingReveal.id !== id) return null;
  const reveal = pendingReveal;
  pendingReveal = null;
  return reveal;
}

// Starts a new render; returns its token.
export function beginRender() {
  rendering += 1;
  return rendering;
}

// The current render's token, for a page to keep while it waits for answers.
export function renderToken() {
  return rendering;
}

// Whether the render that took `token` is still the one on screen.
export function isCurrentRender(token) {
  return token === rendering;
}
