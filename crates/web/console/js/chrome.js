// The page's frame around each page: the navigation, who is signed in, and the
// development banner.

import { getConfig, getSession } from './state.js';
import { sessionValid } from './session.js';

export function updateChrome() {
  const signedIn = sessionValid();
  const config = getConfig();
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  document.getElementById('dev-banner').hidden = !(config && config.sign_in === 'development');
  if (signedIn) {
    const session = getSession();
    const who = [session.subject, session.org_id ? `organisation ${session.org_id}` : ''].filter(Boolean).join(' · ');
    document.getElementById('who-text').textContent = who;
  }
}
