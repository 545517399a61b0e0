// Keymint console: a client of Keymint's public HTTP API, nothing more. This
// is its entry module: it wires the modules together, follows links and the
// back button within the console, and starts the page. The page's
// Content-Security-Policy allows no script but these modules ('self').

import { onSessionEnded } from './api.js';
import { showError } from './forms.js';
import { navigate, onNavigate } from './nav.js';
import { finishOidc, signOut } from './oidc.js';
import { render } from './router.js';
import { endSession, loadSession } from './session.js';
import { getConfig, setConfig } from './state.js';
import { sessionEnded } from './widgets/session-ended.js';

onNavigate(render);
onSessionEnded(sessionEnded);

// A plain left click on a link to a console page: drawn here, not reloaded.
function followLink(event) {
  const link = event.target.closest('a[href]');
  if (!link || link.getAttribute('href').startsWith('#') || event.defaultPrevented) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/console')) return;
  if (url.pathname.startsWith('/console/assets')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

document.addEventListener('click', followLink);
window.addEventListener('popstate', () => render(true));

async function start() {
  document.getElementById('sign-out').addEventListener('click', signOut);
  try {
    const response = await fetch('/console/config.json', { cache: 'no-store' });
    setConfig(await response.json());
  } catch {
    setConfig({ sign_in: 'unavailable' });
  }
  loadSession();
  if (getConfig().sign_in === 'oidc') {
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
