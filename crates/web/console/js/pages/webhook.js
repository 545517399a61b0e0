// /console/webhooks/{id}: an endpoint's details, its deliveries (a failed one
// can be sent again), and what can be done to it.

import { HOOKS, call, nextCursor } from '../api.js';
import { alertBox, field, h, missing, olderButton, page, skeleton, time, toast } from '../dom.js';
import { showError } from '../forms.js';
import { navigate } from '../nav.js';
import { isCurrentRender, renderToken } from '../state.js';
import { confirmDialog } from '../widgets/confirm.js';
import { chosenEvents, eventChoices, hookRows } from '../widgets/hooks.js';
import { revealPanel } from '../widgets/reveal.js';

const DELIVERY_COLUMNS = ['Event', 'Key', 'Status', 'Attempts', 'Created', 'Next attempt', 'Action'];
const ROTATE_TEXT = 'A new secret signs every delivery from now on. The current one keeps signing alongside it '
  + 'for a while (a day by default), so the receiver can switch without rejecting any.';
const ROTATED_WARNING = 'This is the only time Keymint shows this secret. Deliveries are signed with both secrets '
  + 'for now; switch the receiver to the new one.';

function deliveryBadge(status) {
  const kind = { delivered: 'ok', failed: 'bad', pending: 'warn' }[status] || '';
  return h('span', { class: `badge ${kind}`, text: status });
}

// The page's parts, empty or held by placeholders until the endpoint arrives.
function hookView() {
  const view = {
    alert: alertBox(),
    heading: h('h1', { text: 'Webhook endpoint' }),
    actions: h('div', { class: 'actions' }),
    details: h('dl', { class: 'details', 'aria-busy': 'true' },
      skeleton(hookRows({ enabled: false, event_types: [], id: '' }))),
    deliveries: h('div', { 'aria-busy': 'true' }),
    older: h('div'),
    revealSlot: h('div'),
  };
  view.body = h('div', {},
    h('section', { class: 'card', 'aria-labelledby': 'hook-details-title' },
      h('h2', { id: 'hook-details-title', text: 'Details' }), view.details),
    h('section', { class: 'card', 'aria-labelledby': 'deliveries-title' },
      h('h2', { id: 'deliveries-title', text: 'Deliveries' }),
      h('p', { class: 'hint', text: 'Newest first, with every attempt. A failed delivery can be sent again.' }),
      view.deliveries, view.older));
  return view;
}

function retryButton(ctx, d) {
  if (d.status === 'delivered') return '';
  return h('button', {
    type: 'button', class: 'button quiet', text: 'Send again',
    'aria-label': `Send the ${d.event_type} delivery again`,
    onclick: async (event) => {
      event.target.disabled = true;
      try {
        await call(`${HOOKS}/${ctx.id}/deliveries/${d.id}/retry`, { method: 'POST' });
        toast(`The ${d.event_type} delivery is being sent again.`);
        setTimeout(() => loadDeliveries(ctx).catch(() => {}), 800);
      } catch (error) {
        event.target.disabled = false;
        showError(ctx.view.alert, error, 'The delivery was not sent again');
      }
    },
  });
}

function deliveryRow(ctx, d) {
  const last = d.attempts[d.attempts.length - 1];
  const outcome = last
    ? `${last.status_code ? `HTTP ${last.status_code}` : last.error || 'no answer'} in ${last.latency_ms} ms`
    : 'not attempted yet';
  return h('tr', { 'data-status': d.status },
    h('td', { 'data-label': 'Event' }, h('code', { class: 'event', text: d.event_type })),
    h('td', { 'data-label': 'Key' }, h('a', {
      href: `/console/keys/${d.key_id}`, class: 'key-id', title: d.key_id,
      'aria-label': `Key ${d.key_id}`, text: `${d.key_id.slice(0, 8)}…`,
    })),
    h('td', { 'data-label': 'Status' }, deliveryBadge(d.status)),
    h('td', { 'data-label': 'Attempts', text: `${d.attempts.length}: ${outcome}` }),
    h('td', { 'data-label': 'Created' }, time(d.created_at)),
    h('td', { 'data-label': 'Next attempt' }, d.next_attempt_at ? time(d.next_attempt_at) : '—'),
    h('td', { 'data-label': '' }, retryButton(ctx, d)));
}

function deliveriesTable(rows) {
  // The last column holds buttons: its name is for screen readers only.
  const heading = (c) => h('th', { scope: 'col' },
    c === 'Action' ? h('span', { class: 'visually-hidden', text: c }) : c);
  return h('table', {},
    h('caption', { class: 'visually-hidden', text: 'Deliveries, newest first' }),
    h('thead', {}, h('tr', {}, DELIVERY_COLUMNS.map(heading))),
    h('tbody', {}, rows));
}

// The deliveries, newest first: the first page, or the one at `cursor`
// appended below.
async function loadDeliveries(ctx, cursor) {
  const { view } = ctx;
  const params = new URLSearchParams({ limit: '20' });
  if (cursor) params.set('cursor', cursor);
  const { data, headers } = await call(`${HOOKS}/${ctx.id}/deliveries?${params}`);
  view.deliveries.removeAttribute('aria-busy');
  const rows = data.map((d) => deliveryRow(ctx, d));
  if (!cursor) {
    view.deliveries.replaceChildren(data.length ? deliveriesTable(rows)
      : h('div', { class: 'empty', text: 'Nothing sent yet: deliveries appear here as keys change.' }));
  } else {
    view.deliveries.querySelector('tbody').append(...rows);
  }
  const more = (next) => loadDeliveries(ctx, next).catch((e) => showError(view.alert, e, 'Could not load deliveries'));
  view.older.replaceChildren(olderButton(nextCursor(headers), 'Show older deliveries', more));
}

async function toggleHook(ctx) {
  try {
    const { data } = await call(`${HOOKS}/${ctx.id}`, { method: 'PATCH', body: { enabled: !ctx.hook.enabled } });
    showHook(ctx, data);
    toast(data.enabled
      ? 'Enabled: waiting deliveries go out now.'
      : 'Disabled: deliveries wait until it is enabled again.');
  } catch (error) {
    showError(ctx.view.alert, error, 'The endpoint was not changed');
  }
}

function editHook(ctx) {
  const { hook } = ctx;
  const url = h('input', {
    type: 'text', name: 'url', inputmode: 'url', autocomplete: 'off', spellcheck: 'false', value: hook.url,
  });
  const events = eventChoices('edit', hook.event_types);
  confirmDialog({
    title: `Edit ${hook.url}`,
    body: [field({ id: 'edit-url', label: 'URL', input: url }), events],
    confirm: 'Save changes',
    failure: 'The endpoint was not changed',
    fields: 'edit',
    onConfirm: async () => {
      const { data } = await call(`${HOOKS}/${ctx.id}`, {
        method: 'PATCH', body: { url: url.value.trim(), event_types: chosenEvents(events) },
      });
      showHook(ctx, data);
      toast('Saved the endpoint.');
      ctx.view.heading.focus();
    },
  });
}

function rotateSecret(ctx) {
  confirmDialog({
    title: `Rotate the signing secret of ${ctx.hook.url}?`,
    body: [h('p', { text: ROTATE_TEXT })],
    confirm: 'Rotate secret',
    failure: 'The secret was not rotated',
    onConfirm: async () => {
      const { data } = await call(`${HOOKS}/${ctx.id}/rotate-secret`, { method: 'POST' });
      const panel = revealPanel({
        privateKey: data.secret, noun: 'secret', title: 'Copy the new signing secret now', warning: ROTATED_WARNING,
      }, () => ctx.view.heading.focus());
      ctx.view.revealSlot.replaceChildren(panel);
      toast('Rotated the signing secret.');
      setTimeout(() => panel.focus(), 0);
    },
  });
}

function deleteHook(ctx) {
  const { hook } = ctx;
  confirmDialog({
    title: `Delete ${hook.url}?`,
    body: [h('p', {
      text: `Nothing more is sent to ${hook.url}, and its deliveries are forgotten. This cannot be undone.`,
    })],
    confirm: 'Delete endpoint',
    failure: 'The endpoint was not deleted',
    danger: true,
    onConfirm: async () => {
      await call(`${HOOKS}/${ctx.id}`, { method: 'DELETE' });
      navigate('/console/webhooks');
      toast(`Deleted ${hook.url}.`);
    },
  });
}

// Draws `hook` into the page and keeps it as the one the actions act on.
function showHook(ctx, hook) {
  const { view } = ctx;
  ctx.hook = hook;
  document.title = `${hook.url} · Keymint console`;
  view.heading.textContent = hook.url;
  view.details.removeAttribute('aria-busy');
  view.details.replaceChildren(...hookRows(hook));
  const button = (cls, text, act) => h('button', {
    type: 'button', class: `button ${cls}`, text, onclick: () => act(ctx),
  });
  view.actions.replaceChildren(
    button('quiet', 'Edit', editHook),
    button('secondary', hook.enabled ? 'Disable' : 'Enable', toggleHook),
    button('secondary', 'Rotate secret', rotateSecret),
    button('danger', 'Delete', deleteHook));
}

export async function webhookPage(id) {
  const view = hookView();
  page('Webhook',
    h('p', {}, h('a', { href: '/console/webhooks', text: '← All endpoints' })),
    h('div', { class: 'page-head' }, view.heading, view.actions),
    view.alert, view.revealSlot, view.body);
  // What the actions work with: the endpoint as last loaded.
  const ctx = { id, view, hook: null };
  const token = renderToken();
  try {
    const { data } = await call(`${HOOKS}/${id}`);
    showHook(ctx, data);
    await loadDeliveries(ctx);
  } catch (error) {
    if (!isCurrentRender(token)) return;
    view.body.replaceWith(missing(error, 'endpoint', '/console/webhooks', 'All endpoints'));
    if (error.status === 404) view.heading.textContent = 'Endpoint not found';
    showError(view.alert, error, 'Could not load the endpoint');
  }
}
