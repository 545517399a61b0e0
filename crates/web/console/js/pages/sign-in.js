// /console/sign-in: how to sign in; then on to `?next=` (a console path) or
// the keys.

import { updateChrome } from '../chrome.js';
import { h, page } from '../dom.js';
import { navigate } from '../nav.js';
import { sessionValid } from '../session.js';
import { signInForm } from '../widgets/sign-in-form.js';

export function signInPage() {
  const next = new URLSearchParams(location.search).get('next');
  const target = next && next.startsWith('/console') && !next.startsWith('//') ? next : '/console';
  if (sessionValid()) {
    navigate(target, { replace: true });
    return;
  }
  const done = () => { updateChrome(); navigate(target, { replace: true }); };
  page('Sign in',
    h('h1', { text: 'Sign in to Keymint' }),
    h('p', {
      class: 'lead', text: 'The console manages your organisation\'s API keys with the same API your scripts use.',
    }),
    h('div', { class: 'card' }, signInForm(done, false, target)));
}
