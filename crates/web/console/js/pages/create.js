// /console/keys/new: the create form; on success, the new key's page with its
// private key shown once.

import { API, call } from '../api.js';
import { alertBox, field, h, options, page, toast } from '../dom.js';
import { clearDrafts, restoreDrafts } from '../drafts.js';
import { showRefusal } from '../forms.js';
import { navigate } from '../nav.js';
import { setPendingReveal } from '../state.js';

const RATELIMITS_HINT = 'Every verification takes one use; over the limit, verifications answer RATE_LIMITED '
  + 'until the window ends. Empty limit: none. (More than one: the API or `keymint keys`.)';
const META_HINT = 'A JSON object of your own, returned with the key and its verifications, e.g. {"plan": "pro"}.';

const text = (attrs) => h('input', { type: 'text', autocomplete: 'off', ...attrs });
const count = (attrs) => h('input', { type: 'number', step: '1', inputmode: 'numeric', ...attrs });

// The form's inputs, by the body field each one fills.
function inputs() {
  const radio = (value, checked) => h('input', {
    type: 'radio', name: 'environment', value, checked, id: `create-environment-${value}`, 'data-draft': 'environment',
  });
  return {
    name: text({ name: 'name', maxlength: '100', 'data-draft': 'name' }),
    description: h('textarea', { name: 'description', maxlength: '255', rows: '3', 'data-draft': 'description' }),
    live: radio('live', true),
    test: radio('test', false),
    expires: h('input', { type: 'datetime-local', name: 'expires_at', 'data-draft': 'expires_at' }),
    owner: text({ name: 'owner_id', maxlength: '255', 'data-draft': 'owner_id' }),
    permissions: text({ name: 'permissions', 'data-draft': 'permissions', spellcheck: 'false' }),
    credits: count({ name: 'credits', min: '0', 'data-draft': 'credits' }),
    refill: options({ name: 'refill', 'data-draft': 'refill' },
      [['', 'Never'], ['daily', 'Every day (UTC)'], ['monthly', 'Every month, on the 1st (UTC)']]),
    refillAmount: count({ name: 'refill_amount', min: '1', 'data-draft': 'refill_amount' }),
    limitName: text({
      name: 'ratelimit_name', value: 'requests', maxlength: '64', 'data-draft': 'ratelimit_name', spellcheck: 'false',
    }),
    limit: count({ name: 'ratelimit_limit', min: '1', 'data-draft': 'ratelimit_limit' }),
    windowSize: h('select', { name: 'ratelimit_window', 'data-draft': 'ratelimit_window' },
      [['1000', 'second'], ['60000', 'minute'], ['3600000', 'hour'], ['86400000', 'day']]
        .map(([value, label]) => h('option', { value, text: `per ${label}` }))),
    meta: h('textarea', { name: 'meta', rows: '3', spellcheck: 'false', 'data-draft': 'meta', class: 'mono' }),
  };
}

// The folded section: credits refills, a rate limit and metadata.
function advancedSection(i) {
  const ratelimits = h('fieldset', {
    id: 'create-ratelimits', 'aria-describedby': 'create-ratelimits-hint create-ratelimits-error',
  },
  h('legend', { text: 'Rate limit (optional)' }),
  h('p', { class: 'hint', id: 'create-ratelimits-hint', text: RATELIMITS_HINT }),
  h('div', { class: 'inline-fields' },
    field({ id: 'create-ratelimit-name', label: 'Name', input: i.limitName, error: false }),
    field({ id: 'create-ratelimit-limit', label: 'Uses', input: i.limit, error: false }),
    field({ id: 'create-ratelimit-window', label: 'Window', input: i.windowSize, error: false })),
  h('p', { class: 'field-error', id: 'create-ratelimits-error' }));
  return h('details', { class: 'advanced' },
    h('summary', { text: 'Usage limits and metadata' }),
    field({
      id: 'create-credits_refill_interval', label: 'Refill credits',
      hint: 'Sets the credits back to an amount, once a period.', input: i.refill,
    }),
    field({ id: 'create-credits_refill_amount', label: 'Refill to', input: i.refillAmount }),
    ratelimits,
    field({ id: 'create-meta', label: 'Metadata (optional)', hint: META_HINT, input: i.meta }));
}

function createForm(i, alert, advanced, submit) {
  const environment = h('fieldset', { 'aria-describedby': 'create-environment-error', id: 'create-environment' },
    h('legend', { text: 'Environment' }),
    h('label', { for: 'create-environment-live' }, i.live, 'Live'),
    h('label', { for: 'create-environment-test' }, i.test, 'Test'),
    h('p', { class: 'field-error', id: 'create-environment-error' }));
  return h('form', { novalidate: true, class: 'card' },
    alert,
    field({
      id: 'create-name', label: 'Name', hint: 'Required. Up to 100 characters, shown in lists and audit trails.',
      input: i.name,
    }),
    field({ id: 'create-description', label: 'Description (optional)', hint: 'Up to 255 characters.',
      input: i.description }),
    environment,
    field({ id: 'create-expires_at', label: 'Expires (optional)',
      hint: 'Your local time. Empty: the key never expires.', input: i.expires }),
    field({ id: 'create-owner_id', label: 'Owner (optional)',
      hint: 'Whom the key belongs to, in your terms, e.g. a user or team id.', input: i.owner }),
    field({ id: 'create-permissions', label: 'Permissions (optional)',
      hint: 'Separated by spaces or commas, e.g. documents.read documents.write', input: i.permissions }),
    field({ id: 'create-credits', label: 'Credits (optional)',
      hint: 'How many verifications the key allows. Empty: unlimited.', input: i.credits }),
    advanced,
    h('div', { class: 'actions' }, submit, h('a', { href: '/console', class: 'button quiet', text: 'Cancel' })));
}

// The create request's body from the form, all but the metadata.
function createBody(i) {
  const body = {
    name: i.name.value,
    environment: i.live.checked ? 'live' : 'test',
  };
  if (i.description.value) body.description = i.description.value;
  if (i.expires.value) {
    const at = new Date(i.expires.value);
    body.expires_at = Number.isNaN(at.getTime()) ? i.expires.value : at.toISOString();
  }
  if (i.owner.value) body.owner_id = i.owner.value;
  const names = i.permissions.value.split(/[\s,]+/).filter(Boolean);
  if (names.length) body.permissions = names;
  if (i.credits.value !== '' || i.refill.value) {
    body.credits = {};
    if (i.credits.value !== '') body.credits.remaining = Number(i.credits.value);
    if (i.refill.value) body.credits.refill = { interval: i.refill.value, amount: Number(i.refillAmount.value || 0) };
  }
  if (i.limit.value !== '') {
    body.ratelimits = [{
      name: i.limitName.value.trim(), limit: Number(i.limit.value), duration_ms: Number(i.windowSize.value),
    }];
  }
  return body;
}

// Adds the metadata to `body`; false (said beside the field) when it is not
// JSON at all, as the API could only say the same.
function addMeta(body, meta, advanced) {
  const error = document.getElementById('create-meta-error');
  meta.removeAttribute('aria-invalid');
  error.textContent = '';
  if (!meta.value.trim()) return true;
  try {
    body.meta = JSON.parse(meta.value);
    return true;
  } catch {
    advanced.open = true;
    meta.setAttribute('aria-invalid', 'true');
    error.textContent = 'Metadata must be JSON, e.g. {"plan": "pro"}.';
    meta.focus();
    return false;
  }
}

export function createPage() {
  const alert = alertBox();
  const i = inputs();
  const advanced = advancedSection(i);
  const submit = h('button', { type: 'submit', class: 'button', text: 'Create key' });
  const form = createForm(i, alert, advanced, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = createBody(i);
    if (!addMeta(body, i.meta, advanced)) return;
    submit.disabled = true;
    submit.textContent = 'Creating…';
    try {
      const { data } = await call(API, { method: 'POST', body });
      clearDrafts();
      setPendingReveal({ id: data.id, privateKey: data.private_key, why: 'created' });
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
    h('p', {
      class: 'lead', text: 'The private key is shown once, right after it is created. Keymint keeps only a hash of it.',
    }),
    form);
  restoreDrafts();
}
