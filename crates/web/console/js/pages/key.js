// /console/keys/{id}: a key's details, its audit trail, and what can be done
// to it (the dialogs are in key-actions.js).

import { API, call, nextCursor } from '../api.js';
import { alertBox, definitions, h, missing, olderButton, page, skeleton, time } from '../dom.js';
import { showError } from '../forms.js';
import { isCurrentRender, renderToken, takePendingReveal } from '../state.js';
import { statusBadge } from '../widgets/key-status.js';
import { chartPlaceholder, periodPicker, periodQuery, usageChart } from '../widgets/usage-chart.js';
import { revealPanel } from '../widgets/reveal.js';
import { keyActions } from './key-actions.js';

const ACTIONS = {
  created: 'Created',
  imported: 'Imported',
  updated: 'Updated',
  rotated: 'Rotated',
  revoked: 'Revoked',
  deleted: 'Deleted',
  leaked: 'Reported leaked',
  credits_changed: 'Credits changed',
};

// Where a leak report came from, in words: its holder, or the place a secret
// scanner found it (GitHub's location types, such as pull_request_title).
function leakSource(source) {
  if (source === 'self_report') return 'by its holder';
  return `found in a ${source.replaceAll('_', ' ')}`;
}

function eventItem(event) {
  const what = ACTIONS[event.action] || event.action;
  const extra = event.fields && event.fields.length ? `: ${event.fields.join(', ')}` : '';
  const leak = event.leak ? ` ${leakSource(event.leak.source)}${event.leak.url ? ` (${event.leak.url})` : ''}` : '';
  return h('li', { 'data-action': event.action },
    h('span', { class: 'what', text: `${what}${extra}${leak}` }),
    h('span', { class: 'meta' }, time(event.occurred_at), event.actor ? ` · by ${event.actor}` : '',
      event.request_id ? ` · request ${event.request_id}` : ''));
}

function creditsText(credits) {
  if (!credits) return 'unlimited';
  const refill = credits.refill ? `, refilled ${credits.refill.interval} to ${credits.refill.amount}` : '';
  return `${credits.remaining} remaining${refill}`;
}

function detailRows(key) {
  const text = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));
  const rows = [
    ['Status', statusBadge(key)],
    ['Key id', h('code', { text: key.id })],
    ['Environment', text(key.environment)],
    ['Private key', h('code', { text: key.private_key_display })],
    ['Public key', h('code', { text: key.public_key })],
    ['Description', text(key.description)],
    ['Owner', text(key.owner_id)],
    ['Permissions', key.permissions.length ? key.permissions.join(', ') : 'none'],
    ['Rate limits', key.ratelimits.length
      ? key.ratelimits.map((r) => `${r.name}: ${r.limit} per ${r.duration_ms / 1000} s`).join('; ') : 'none'],
    ['Credits', creditsText(key.credits)],
    ['Metadata', key.meta ? h('pre', { class: 'mono', text: JSON.stringify(key.meta, null, 2) }) : '—'],
    ['Created', time(key.created_at)],
    ['Last used', time(key.last_used_at)],
    ['Expires', key.expires_at ? time(key.expires_at) : 'never'],
    ['Revoked', key.revoked_at ? time(key.revoked_at) : 'no'],
    // After a rotation with a grace period, the replaced private key still
    // verifies: say until when, so nobody has to work it out from the trail.
    ['Previous private key', key.previous_key_valid_until
      ? h('span', { class: 'previous-key' }, 'works until ', time(key.previous_key_valid_until))
      : 'stopped working'],
    ['Reported leaked', key.leaked_at ? time(key.leaked_at) : 'no'],
    ['Organisation', h('code', { text: key.org_id })],
  ];
  return definitions(rows);
}

function detailSkeleton() {
  return skeleton(detailRows({
    id: '', org_id: '', environment: '', private_key_display: '', public_key: '', permissions: [],
    ratelimits: [], is_revoked: false,
  }));
}

// The page's parts, empty or held by placeholders until the key arrives.
function keyView() {
  const view = {
    alert: alertBox(),
    heading: h('h1', { text: 'API key' }),
    badges: h('div'),
    actions: h('div', { class: 'actions' }),
    details: h('dl', { class: 'details', 'aria-busy': 'true' }, detailSkeleton()),
    timeline: h('ol', { class: 'timeline', 'aria-busy': 'true' },
      h('li', { 'aria-hidden': 'true' }, h('span', { class: 'skeleton-bar' }), h('span', { class: 'skeleton-bar' }))),
    older: h('div'),
    revealSlot: h('div'),
    usage: h('div', {}, chartPlaceholder()),
  };
  view.usageCard = h('section', { class: 'card', 'aria-labelledby': 'usage-title' },
    h('h2', { id: 'usage-title', text: 'Verifications' }), view.periods = h('div'), view.usage);
  view.layout = h('div', { class: 'layout' },
    h('section', { class: 'card', 'aria-labelledby': 'details-title' },
      h('h2', { id: 'details-title', text: 'Details' }), view.details),
    h('section', { class: 'card', 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title', text: 'Audit trail' }), view.timeline, view.older));
  return view;
}

// The private key that create left for this page, shown once.
function showPendingReveal(view, id) {
  const reveal = takePendingReveal(id);
  if (!reveal) return;
  const panel = revealPanel(reveal, () => view.heading.focus());
  view.revealSlot.replaceChildren(panel);
  view.heading.setAttribute('tabindex', '-1');
  setTimeout(() => panel.focus(), 0);
}

// The audit trail, newest first: the first page, or the one at `cursor`
// appended below.
async function loadEvents(view, id, cursor) {
  const params = new URLSearchParams({ limit: '50' });
  if (cursor) params.set('cursor', cursor);
  const { data, headers } = await call(`${API}/${id}/events?${params}`);
  if (!cursor) view.timeline.replaceChildren();
  view.timeline.removeAttribute('aria-busy');
  view.timeline.append(...data.map(eventItem));
  const more = (next) => loadEvents(view, id, next).catch((e) => showError(view.alert, e, 'Could not load events'));
  view.older.replaceChildren(olderButton(nextCursor(headers), 'Show older events', more));
}

// The key's verifications by outcome over `period` (24h, 7d, 30d).
async function loadUsage(view, id, period) {
  const { params, granularity } = periodQuery(period);
  const { data } = await call(`${API}/${id}/usage?${params}`);
  view.usage.replaceChildren(usageChart(data, granularity, 'Verifications of this key by outcome'));
}

// Draws `key` into the page and keeps it as the one the actions act on.
function showKey(ctx, key) {
  const { view } = ctx;
  ctx.key = key;
  document.title = `${key.name} · Keymint console`;
  view.heading.textContent = key.name;
  view.badges.replaceChildren(statusBadge(key), ' ', h('span', { class: 'badge', text: key.environment }));
  view.details.removeAttribute('aria-busy');
  view.details.replaceChildren(...detailRows(key));
  view.actions.replaceChildren(...keyActions(ctx));
}

export async function keyPage(id) {
  const view = keyView();
  page('Key',
    h('p', {}, h('a', { href: '/console', text: '← All keys' })),
    h('div', { class: 'page-head' }, h('div', {}, view.heading, view.badges), view.actions),
    view.alert,
    view.revealSlot,
    view.usageCard,
    view.layout);
  showPendingReveal(view, id);

  // What the actions work with: the key as last loaded, and how to reload it.
  const ctx = { id, view, key: null };
  ctx.refresh = async () => {
    const { data } = await call(`${API}/${id}`);
    showKey(ctx, data);
    await loadEvents(view, id);
  };
  const token = renderToken();
  try {
    const { data } = await call(`${API}/${id}`);
    if (!isCurrentRender(token)) return;
    showKey(ctx, data);
    const usage = (period) => loadUsage(view, id, period)
      .catch((e) => showError(view.alert, e, 'Could not load the verifications'));
    view.periods.replaceChildren(periodPicker('24h', usage));
    await Promise.all([loadEvents(view, id), usage('24h')]);
  } catch (error) {
    if (!isCurrentRender(token)) return;
    // Placeholders wait for data; with none coming they would wait forever.
    view.usageCard.remove();
    view.layout.replaceWith(missing(error, 'key', '/console', 'All keys'));
    if (error.status === 404) view.heading.textContent = 'Key not found';
    showError(view.alert, error, 'Could not load the key');
  }
}
