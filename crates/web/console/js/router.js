// Which page a console path is, and drawing it: the navigation's current
// link, the sign-in for a page that needs a session, focus on the heading.

import { updateChrome } from './chrome.js';
import { createPage } from './pages/create.js';
import { keyPage } from './pages/key.js';
import { keysPage } from './pages/keys.js';
import { notFoundPage } from './pages/not-found.js';
import { signInPage } from './pages/sign-in.js';
import { usagePage } from './pages/usage.js';
import { verifyPage } from './pages/verify.js';
import { webhookPage } from './pages/webhook.js';
import { webhooksPage } from './pages/webhooks.js';
import { sessionValid } from './session.js';
import { beginRender } from './state.js';

// [path, page (given the path's captures), the navigation link it belongs to]
const ROUTES = [
  [/^\/console\/?$/, keysPage, 'keys'],
  [/^\/console\/keys\/new\/?$/, createPage, 'new'],
  [/^\/console\/keys\/([0-9a-fA-F-]{36})\/?$/, keyPage, 'keys'],
  [/^\/console\/usage\/?$/, usagePage, 'usage'],
  [/^\/console\/verify\/?$/, verifyPage, 'verify'],
  [/^\/console\/webhooks\/?$/, webhooksPage, 'webhooks'],
  [/^\/console\/webhooks\/([0-9a-fA-F-]{36})\/?$/, webhookPage, 'webhooks'],
  [/^\/console\/sign-in\/?$/, signInPage, ''],
];

// Marks the navigation link of the page shown (Keys only on the list itself).
function markCurrent(found, path) {
  for (const link of document.querySelectorAll('[data-nav]')) {
    const nav = found ? found[2] : null;
    if (nav && link.dataset.nav === nav && (nav !== 'keys' || path === '/console' || path === '/console/')) {
      link.setAttribute('aria-current', 'page');
    } else {
      link.removeAttribute('aria-current');
    }
  }
}

function focusHeading() {
  const heading = document.querySelector('main h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}

export function render(focus) {
  beginRender();
  for (const dialog of document.querySelectorAll('dialog:not(.session-ended)')) dialog.remove();
  const path = location.pathname;
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  updateChrome();
  markCurrent(found, path);
  if (!found) {
    notFoundPage();
    return;
  }
  const [pattern, view] = found;
  if (view !== signInPage && !sessionValid()) {
    const next = encodeURIComponent(location.pathname + location.search);
    history.replaceState(null, '', `/console/sign-in?next=${next}`);
    signInPage();
  } else {
    view(...(pattern.exec(path).slice(1)));
  }
  if (focus) focusHeading();
}
