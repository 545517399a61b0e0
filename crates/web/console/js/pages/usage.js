// /console/usage: the organisation's verifications at a glance — how many,
// how many refused and why, which keys are used most, and which keys nobody
// has used for 30 days (candidates for revocation).

import { API, call, nextCursor } from '../api.js';
import { alertBox, h, page, time } from '../dom.js';
import { showError } from '../forms.js';
import { isCurrentRender, renderToken } from '../state.js';
import { chartPlaceholder, OUTCOMES, periodPicker, periodQuery, usageChart } from '../widgets/usage-chart.js';

const ANALYTICS = '/api/v2/analytics/verifications';
const DAY = 24 * 3600e3;
// Keys read for names and for the unused list: ten pages of the list.
const MAX_KEY_PAGES = 10;

function stat(label, value, id) {
  return h('li', {}, h('span', { class: 'number', id, text: value }), label);
}

// The keys, newest first, up to MAX_KEY_PAGES pages; whether more exist.
async function allKeys() {
  const keys = [];
  let cursor = null;
  for (let i = 0; i < MAX_KEY_PAGES; i += 1) {
    const params = new URLSearchParams({ limit: '100' });
    if (cursor) params.set('cursor', cursor);
    const { data, headers } = await call(`${API}?${params}`);
    keys.push(...data);
    cursor = nextCursor(headers);
    if (!cursor) return { keys, complete: true };
  }
  return { keys, complete: false };
}

function keyLink(id, names) {
  return h('a', { href: `/console/keys/${id}`, text: names.get(id) || id });
}

// The keys verified most, each with its refusals: `top` is the answer of a
// count-ordered total per key, `split` the same keys' totals by outcome.
function topKeys(top, split, names) {
  const refused = new Map();
  for (const row of split.data) {
    if (row.outcome !== 'VALID') refused.set(row.key_id, (refused.get(row.key_id) || 0) + row.count);
  }
  if (!top.data.length) return h('p', { class: 'hint', text: 'No key was verified in this period.' });
  return h('table', {},
    h('thead', {}, h('tr', {}, ['Key', 'Verifications', 'Refused'].map((t) => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, top.data.map((row) => h('tr', {},
      h('td', { 'data-label': 'Key' }, keyLink(row.key_id, names)),
      h('td', { 'data-label': 'Verifications', text: String(row.count) }),
      h('td', { 'data-label': 'Refused', text: String(refused.get(row.key_id) || 0) })))));
}

function refusals(sums) {
  const refused = OUTCOMES.filter(([id]) => id !== 'VALID' && sums[id]);
  if (!refused.length) return h('p', { class: 'hint', text: 'Nothing was refused in this period.' });
  return h('ul', {}, refused.map(([id, name]) => h('li', {}, `${name}: ${sums[id]}`)));
}

// Unrevoked keys older than 30 days that no caller presented with their
// secret in the last 30 (their last_used_at: no analytics query, so it reads
// the same at 100 000 keys).
function unused(keys, complete) {
  const cutoff = Date.now() - 30 * DAY;
  const idle = keys.filter((key) => !key.is_revoked && Date.parse(key.created_at) <= cutoff
    && (!key.last_used_at || Date.parse(key.last_used_at) <= cutoff));
  const note = complete ? null : h('p', { class: 'hint', text: `Of the newest ${keys.length} keys.` });
  if (!idle.length) {
    return h('div', {}, h('p', { class: 'hint', text: 'Every key older than 30 days was used.' }), note);
  }
  return h('div', {}, note, h('ul', { class: 'unused' }, idle.map((key) =>
    h('li', {}, keyLink(key.id, new Map([[key.id, key.name]])), ' · last used ', time(key.last_used_at)))));
}

// The ten keys verified most in the period, and their totals by outcome.
async function busiest(params) {
  const top = new URLSearchParams({ from: params.get('from'), to: params.get('to'), granularity: 'total',
    group_by: 'key_id', order_by: 'count', limit: '10' });
  const { data } = await call(`${ANALYTICS}?${top}`);
  if (!data.data.length) return { top: data, split: { data: [] } };
  const split = new URLSearchParams({ from: params.get('from'), to: params.get('to'), granularity: 'total',
    group_by: 'key_id,outcome' });
  for (const row of data.data) split.append('key_id', row.key_id);
  return { top: data, split: (await call(`${ANALYTICS}?${split}`)).data };
}

async function load(view, period, token) {
  const { params, granularity } = periodQuery(period);
  const byOutcome = new URLSearchParams(params);
  byOutcome.set('group_by', 'outcome');
  const [outcomes, keys, list] = await Promise.all([
    call(`${ANALYTICS}?${byOutcome}`), busiest(params), allKeys(),
  ]);
  if (!isCurrentRender(token)) return;
  const sums = {};
  let spent = 0;
  for (const row of outcomes.data.data) {
    sums[row.outcome] = (sums[row.outcome] || 0) + row.count;
    spent += row.spent_credits;
  }
  const total = Object.values(sums).reduce((a, b) => a + b, 0);
  view.total.textContent = String(total);
  view.refused.textContent = String(total - (sums.VALID || 0));
  view.spent.textContent = String(spent);
  view.chart.replaceChildren(usageChart(outcomes.data, granularity, 'Verifications by outcome'));
  const names = new Map(list.keys.map((key) => [key.id, key.name]));
  view.top.replaceChildren(topKeys(keys.top, keys.split, names));
  view.refusals.replaceChildren(refusals(sums));
  view.unused.replaceChildren(unused(list.keys, list.complete));
}

export async function usagePage() {
  const card = (id, title, ...children) => h('section', { class: 'card', 'aria-labelledby': id },
    h('h2', { id, text: title }), ...children);
  const view = {
    alert: alertBox(),
    total: h('span'), refused: h('span'), spent: h('span'),
    chart: h('div', {}, chartPlaceholder()),
    top: h('div', { 'aria-busy': 'true' }), refusals: h('div'), unused: h('div'),
  };
  const token = renderToken();
  const choose = (period) => load(view, period, token).catch((e) => showError(view.alert, e, 'Could not load usage'));
  page('Usage',
    h('h1', { text: 'Usage' }),
    h('p', { class: 'hint', text: 'Every verification that named one of your keys, as of the last minute.' }),
    view.alert,
    periodPicker('24h', choose),
    h('ul', { class: 'stats' },
      stat('verifications', '—', 'stat-total'), stat('refused', '—', 'stat-refused'),
      stat('credits spent', '—', 'stat-spent')),
    card('chart-title', 'Verifications by outcome', view.chart),
    h('div', { class: 'layout' },
      card('top-title', 'Most used keys', view.top),
      h('div', {}, card('refusals-title', 'Refusals', view.refusals),
        card('unused-title', 'Unused for 30 days', view.unused))));
  view.total = document.getElementById('stat-total');
  view.refused = document.getElementById('stat-refused');
  view.spent = document.getElementById('stat-spent');
  await choose('24h');
  view.top.removeAttribute('aria-busy');
}
