// How to sign in, as this server offers it: at the OIDC issuer, the
// development profile's form, or a note that none is configured. Used by the
// sign-in page and by the "session has ended" dialog.

import { call } from '../api.js';
import { alertBox, field, h } from '../dom.js';
import { saveDrafts } from '../drafts.js';
import { showError, showRefusal } from '../forms.js';
import { startOidc } from '../oidc.js';
import { startSession } from '../session.js';
import { getConfig, getSession } from '../state.js';

// The last organisation and name are remembered to save typing; neither is a
// secret (the token is not kept here).
const LAST_ORG = 'keymint.console.last-org';
const LAST_NAME = 'keymint.console.last-name';

function unavailable() {
  return h('div', {},
    h('p', { text: 'No sign-in is configured on this server.' }),
    h('p', {}, 'Set ', h('code', { text: 'auth.issuer' }), ' and ', h('code', { text: 'console.client_id' }),
      ' to sign in with your identity provider, or run Keymint in the development profile.'));
}

function oidcButton(returnTo) {
  const host = new URL(getConfig().issuer).host;
  const alert = alertBox();
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

function developmentForm(done, again) {
  const session = getSession();
  const alert = alertBox();
  const org = h('input', {
    type: 'text', name: 'org_id', autocomplete: 'off', spellcheck: 'false', inputmode: 'text',
    value: (session && session.org_id) || localStorage.getItem(LAST_ORG) || '',
  });
  const name = h('input', {
    type: 'text', name: 'name', autocomplete: 'username', value: localStorage.getItem(LAST_NAME) || 'developer',
  });
  const submit = h('button', { type: 'submit', class: 'button', text: again ? 'Sign in again' : 'Sign in' });
  const fresh = h('button', { type: 'button', class: 'button secondary', text: 'New organisation id' });
  fresh.addEventListener('click', () => { org.value = crypto.randomUUID(); org.focus(); });
  const form = h('form', { novalidate: true, class: 'sign-in' },
    h('p', {
      class: 'banner', text: 'Development sign-in: anyone who can reach this server can act for any organisation.',
    }),
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
      localStorage.setItem(LAST_ORG, org.value.trim());
      localStorage.setItem(LAST_NAME, name.value.trim());
      startSession(data.access_token, data.expires_at, 'development', org.value.trim());
      done();
    } catch (error) {
      showRefusal(form, alert, error, 'dev', 'Not signed in');
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// `done` runs once signed in; `again` words it for a session that ended;
// `returnTo` is where the issuer sends the person back to.
export function signInForm(done, again, returnTo) {
  const config = getConfig();
  if (!config || config.sign_in === 'unavailable') return unavailable();
  if (config.sign_in === 'oidc') return oidcButton(returnTo);
  return developmentForm(done, again);
}
