// Verifications over time by outcome: a stacked bar chart in plain SVG (no
// library, no CDN), its summary in words for screen readers, and the same
// numbers as a table for anyone who would rather read them.

import { h } from '../dom.js';

const SVG = 'http://www.w3.org/2000/svg';

// Every outcome, in the order bars stack (bottom first) and legends list them.
export const OUTCOMES = [
  ['VALID', 'Valid'],
  ['INSUFFICIENT_PERMISSIONS', 'Insufficient permissions'],
  ['RATE_LIMITED', 'Rate limited'],
  ['USAGE_EXCEEDED', 'Usage exceeded'],
  ['EXPIRED', 'Expired'],
  ['REVOKED', 'Revoked'],
];

// The periods the console offers: how far back, and the bucket width that
// keeps the bars readable.
export const PERIODS = [
  ['24h', '24 hours', 24 * 3600e3, 'hour'],
  ['7d', '7 days', 7 * 24 * 3600e3, 'hour'],
  ['30d', '30 days', 30 * 24 * 3600e3, 'day'],
];

const WIDTH = { hour: 3600e3, day: 24 * 3600e3 };

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  el.append(...children);
  return el;
}

// The query string of a period, as of now.
export function periodQuery(periodId) {
  const [, , span, granularity] = PERIODS.find(([id]) => id === periodId) || PERIODS[0];
  const to = new Date();
  const from = new Date(to.getTime() - span);
  return { params: new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), granularity }), granularity };
}

// Every bucket of the answer's range, each with its count per outcome (empty
// buckets, which the API leaves out, as zeros).
function buckets(answer, granularity) {
  const step = WIDTH[granularity];
  const start = Date.parse(answer.from);
  const end = Date.parse(answer.to);
  const rows = [];
  for (let t = start; t < end; t += step) rows.push({ time: t, counts: {} });
  for (const row of answer.data) {
    const index = Math.floor((Date.parse(row.time) - start) / step);
    if (rows[index]) rows[index].counts[row.outcome] = (rows[index].counts[row.outcome] || 0) + row.count;
  }
  return rows;
}

function totals(rows) {
  const sums = {};
  for (const row of rows) {
    for (const [outcome, n] of Object.entries(row.counts)) sums[outcome] = (sums[outcome] || 0) + n;
  }
  return sums;
}

// "120 verifications: 100 valid, 20 revoked." — what the chart shows, in words.
export function summary(sums) {
  const total = Object.values(sums).reduce((a, b) => a + b, 0);
  if (!total) return 'No verifications in this period.';
  const parts = OUTCOMES.filter(([id]) => sums[id]).map(([id, label]) => `${sums[id]} ${label.toLowerCase()}`);
  return `${total} verification${total === 1 ? '' : 's'}: ${parts.join(', ')}.`;
}

function label(time, granularity) {
  const at = new Date(time);
  return granularity === 'day'
    ? at.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
    : at.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function bars(rows, granularity) {
  const max = Math.max(1, ...rows.map((row) => Object.values(row.counts).reduce((a, b) => a + b, 0)));
  const width = 600;
  const height = 160;
  const slot = width / Math.max(1, rows.length);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', 'aria-hidden': 'true',
    focusable: 'false', class: 'bars' });
  rows.forEach((row, i) => {
    let y = height;
    for (const [id, name] of OUTCOMES) {
      const n = row.counts[id] || 0;
      if (!n) continue;
      const barHeight = (n / max) * (height - 4);
      y -= barHeight;
      chart.append(svg('rect', { x: i * slot + slot * 0.1, y, width: Math.max(1, slot * 0.8), height: barHeight,
        class: `outcome-${id}` }, svg('title', {}, `${label(row.time, granularity)}: ${n} ${name.toLowerCase()}`)));
    }
  });
  return chart;
}

function legend(sums) {
  return h('ul', { class: 'legend' }, OUTCOMES.filter(([id]) => sums[id]).map(([id, name]) =>
    h('li', {}, h('span', { class: `swatch outcome-${id}`, 'aria-hidden': 'true' }), `${name}: ${sums[id]}`)));
}

function table(rows, granularity) {
  const shown = OUTCOMES.filter(([id]) => rows.some((row) => row.counts[id]));
  return h('table', {},
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Time' }),
      shown.map(([, name]) => h('th', { scope: 'col', text: name })))),
    h('tbody', {}, rows.filter((row) => Object.keys(row.counts).length).map((row) =>
      h('tr', {}, h('th', { scope: 'row', text: label(row.time, granularity) }),
        shown.map(([id]) => h('td', { text: String(row.counts[id] || 0) }))))));
}

// The chart of `answer` (grouped by outcome) as a figure: bars, legend,
// summary as its accessible name, and a table view behind a disclosure.
export function usageChart(answer, granularity, caption) {
  const rows = buckets(answer, granularity);
  const sums = totals(rows);
  const words = summary(sums);
  const hasData = answer.data.length > 0;
  return h('figure', { class: 'usage-chart', role: 'group', 'aria-label': `${caption}. ${words}` },
    h('figcaption', {}, h('span', { class: 'total', text: words })),
    hasData ? bars(rows, granularity) : h('div', { class: 'bars empty', text: 'Nothing to draw yet' }),
    h('div', { class: 'axis', 'aria-hidden': 'true' }, h('span', { text: label(Date.parse(answer.from), granularity) }),
      h('span', { text: label(Date.parse(answer.to), granularity) })),
    hasData ? legend(sums) : null,
    hasData ? h('details', { class: 'table-view' }, h('summary', { text: 'Show as a table' }),
      h('div', { class: 'table-wrap' }, table(rows, granularity))) : null);
}

// A placeholder of the chart's size while its data loads, so nothing below moves.
export function chartPlaceholder() {
  return h('figure', { class: 'usage-chart', 'aria-busy': 'true' },
    h('figcaption', {}, h('span', { class: 'skeleton-bar' })),
    h('div', { class: 'bars empty', 'aria-hidden': 'true' }),
    h('div', { class: 'axis', 'aria-hidden': 'true' }, h('span', { text: '\u00a0' })));
}

// A row of period buttons; `choose(id)` is called with the period picked.
export function periodPicker(current, choose) {
  return h('div', { class: 'periods', role: 'group', 'aria-label': 'Period' }, PERIODS.map(([id, name]) =>
    h('button', { type: 'button', class: 'button quiet', 'aria-pressed': String(id === current), text: name,
      onclick: (event) => {
        for (const button of event.target.parentElement.children) button.setAttribute('aria-pressed', 'false');
        event.target.setAttribute('aria-pressed', 'true');
        choose(id);
      } })));
}
