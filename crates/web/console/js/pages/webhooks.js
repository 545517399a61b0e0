// /console/webhooks: the organisation's endpoints, and a form to add one (its
// signing secret shown once).

import { HOOKS, call } from '../api.js';
import { alertBox, field, h, page, time, toast } from '../dom.js';
import { clearDrafts, restoreDrafts } from '../drafts.js';
import { markFields, showError, showRefusal } from '../forms.js';
import { isCurrentRender, renderToken } from '../state.js';
import { EVENT_TYPES, chosenEvents, eventChoices, hookState } from '../widgets/hooks.js';
import { revealPanel } from '../widgets/reveal.js';

const LEAD = 'Keymint tells your endpoints about changes to your keys as they happen, signed, '
  + 'retried until they answer.';
const SECRET_WARNING = 'This is the only time Keymint shows this secret. Your receiver checks each delivery\'s '
  + 'signature with it; if it is lost, rotate the secret.';

const COLUMNS = ['Endpoint', 'Events', 'State', 'Created'];

function hooksTable(hooks) {
  const events = (hook) => (hook.event_types.length === EVENT_TYPES.length ? 'all' : hook.event_types.join(', '));
  return h('table', {},
    h('caption', { class: 'visually-hidden', text: 'Webhook endpoints, oldest first' }),
    h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', {}, hooks.map((hook) => h('tr', {},
      h('td', { 'data-label': 'Endpoint', class: 'name' },
        h('a', { href: `/console/webhooks/${hook.id}`, text: hook.url })),
      h('td', { 'data-label': 'Events', text: events(hook) }),
      h('td', { 'data-label': 'State' }, hookState(hook)),
      h('td', { 'data-label': 'Created' }, time(hook.created_at))))));
}

async function loadHooks(results) {
  const { data } = await call(HOOKS);
  results.removeAttribute('aria-busy');
  results.replaceChildren(data.length ? hooksTable(data)
    : h('div', { class: 'empty', text: 'No endpoints yet. Add one below to hear about every change to your keys.' }));
}

// The form that adds an endpoint; `added(data)` runs once the API has it.
function addForm(added) {
  const url = h('input', {
    type: 'text', name: 'url', inputmode: 'url', autocomplete: 'off', spellcheck: 'false', placeholder: 'https://',
    'data-draft': 'url',
  });
  const events = eventChoices('hook', null);
  const submit = h('button', { type: 'submit', class: 'button', text: 'Add endpoint' });
  const formAlert = alertBox();
  const form = h('form', { novalidate: true, class: 'card', 'aria-labelledby': 'add-hook-title' },
    h('h2', { id: 'add-hook-title', text: 'Add an endpoint' }),
    formAlert,
    field({
      id: 'hook-url', label: 'URL', hint: 'Where Keymint POSTs each event, signed (Standard Webhooks).', input: url,
    }),
    events,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const body = { url: url.value.trim(), event_types: chosenEvents(events) };
      const { data } = await call(HOOKS, { method: 'POST', body });
      clearDrafts();
      markFields(form, { fields: [] }, 'hook');
      formAlert.replaceChildren();
      url.value = '';
      await added(data);
    } catch (error) {
      showRefusal(form, formAlert, error, 'hook', 'The endpoint was not added');
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function webhooksPage() {
  const alert = alertBox();
  // No reserved height (unlike the keys list): the form below is placed only
  // once the list is in, so nothing moves, and a short list leaves no gap.
  const results = h('div', { class: 'hook-list', 'aria-busy': 'true' });
  const revealSlot = h('div');
  const form = addForm(async (data) => {
    const panel = revealPanel({
      privateKey: data.secret, noun: 'secret',
      title: 'Copy the endpoint\'s signing secret now',
      warning: SECRET_WARNING,
    }, () => document.querySelector('main h1').focus());
    revealSlot.replaceChildren(panel);
    toast(`Added ${data.url}.`);
    await loadHooks(results);
    panel.focus();
  });
  page('Webhooks',
    h('div', { class: 'page-head' }, h('h1', { text: 'Webhooks' })),
    h('p', { class: 'lead', text: LEAD }),
    alert, revealSlot, results);
  const token = renderToken();
  try {
    await loadHooks(results);
  } catch (error) {
    results.removeAttribute('aria-busy');
    results.replaceChildren();
    showError(alert, error, 'Could not list the endpoints');
  }
  if (!isCurrentRender(token)) return;
  // Placed once the list is in, so the list filling in never pushes it down.
  results.after(form);
  restoreDrafts();
}
