// /console/verify: a real verification of a key, as a service would make it,
// with its verdict.

import { API, call } from '../api.js';
import { alertBox, definitions, field, h, page, time } from '../dom.js';
import { restoreDrafts } from '../drafts.js';
import { showRefusal } from '../forms.js';

const LEAD = 'Checks a key exactly as your services do (POST /api/v2/api-keys/verify). It is a real verification: '
  + 'it counts as a use, spends credits and counts against rate limits.';

// The key's input, hidden as typed, with a button to show it.
function keyInput() {
  const key = h('input', {
    type: 'password', name: 'key', autocomplete: 'off', spellcheck: 'false', 'data-secret': true,
  });
  const show = h('button', {
    type: 'button', class: 'button quiet', 'aria-pressed': 'false', 'aria-controls': 'verify-key', text: 'Show',
  });
  show.addEventListener('click', () => {
    const visible = key.type === 'password';
    key.type = visible ? 'text' : 'password';
    show.setAttribute('aria-pressed', String(visible));
    show.textContent = visible ? 'Hide' : 'Show';
  });
  key.id = 'verify-key';
  key.setAttribute('aria-describedby', 'verify-key-hint verify-key-error');
  const wrapped = h('div', { class: 'field' },
    h('label', { for: 'verify-key', text: 'Private key' }),
    h('p', { class: 'hint', id: 'verify-key-hint', text: 'The key as a caller presents it, e.g. sk_live_…' }),
    h('div', { class: 'with-button' }, key, show),
    h('p', { class: 'field-error', id: 'verify-key-error' }));
  return { key, wrapped };
}

// The verdict, told apart by colour, by an icon and by the words, so no one of
// them has to carry it alone; then why, and the answer's fields.
function verdictView(data, asked, requestId) {
  const rows = [
    ['Code', h('code', { text: data.code })],
    ['Key', data.key_id ? h('a', { href: `/console/keys/${data.key_id}`, text: data.name || data.key_id }) : '—'],
    ['Environment', data.environment || '—'],
    ['Expires', data.expires_at ? time(data.expires_at) : (data.valid ? 'never' : '—')],
    ['Permissions', data.permissions ? data.permissions.join(', ') || 'none' : '—'],
    ['Credits left', data.credits ? String(data.credits.remaining) : (data.valid ? 'unlimited' : '—')],
    ['Request id', h('code', { text: requestId })],
  ];
  const verdict = h('h2', { id: 'verdict', class: `verdict ${data.valid ? 'good' : 'bad'}` },
    h('span', { class: 'verdict-icon', 'aria-hidden': 'true', text: data.valid ? '✓' : '✗' }),
    data.valid ? 'Valid' : `Not valid: ${data.code}`);
  // What the key lacks is the difference between what it holds and what
  // was asked, whichever way the query is written: show both.
  const why = data.code === 'INSUFFICIENT_PERMISSIONS'
    ? h('p', { class: 'verdict-why' },
      'The key holds ', h('strong', { text: (data.permissions || []).join(', ') || 'no permissions' }),
      '; this check asked for ', h('code', { text: asked || '' }), '.')
    : null;
  return [verdict, why, h('dl', { class: 'details' }, definitions(rows))].filter(Boolean);
}

export function verifyPage() {
  const alert = alertBox();
  const { key, wrapped } = keyInput();
  const permissions = h('input', {
    type: 'text', name: 'permissions', autocomplete: 'off', spellcheck: 'false', 'data-draft': 'permissions',
  });
  const submit = h('button', { type: 'submit', class: 'button', text: 'Verify' });
  const result = h('section', { class: 'card', 'aria-labelledby': 'verdict', hidden: true });
  const form = h('form', { novalidate: true, class: 'card' },
    alert,
    wrapped,
    field({
      id: 'verify-permissions', label: 'Required permissions (optional)',
      hint: 'A permission the key must hold, or a query such as a.read AND b.write.', input: permissions,
    }),
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
      result.replaceChildren(...verdictView(data, body.permissions, requestId));
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
    h('p', { class: 'lead', text: LEAD }),
    form, result);
  restoreDrafts();
}
