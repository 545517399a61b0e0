// /console: the organisation's keys, newest first, filtered by the query
// string and paged by the API's cursors.

import { API, PAGE_SIZE, call, nextCursor } from '../api.js';
import { field, h, page, time } from '../dom.js';
import { showError } from '../forms.js';
import { navigate } from '../nav.js';
import { isCurrentRender, renderToken } from '../state.js';
import { statusBadge } from '../widgets/key-status.js';

const COLUMNS = ['Name', 'Environment', 'Key', 'Owner', 'Created', 'Last used', 'Status'];

function keyRow(key) {
  const cells = [
    h('a', { href: `/console/keys/${key.id}`, text: key.name }),
    h('span', { class: 'badge', text: key.environment }),
    h('code', { text: key.private_key_display }),
    key.owner_id ? h('span', { text: key.owner_id }) : h('span', { text: '—' }),
    time(key.created_at),
    time(key.last_used_at),
    statusBadge(key),
  ];
  return h('tr', {},
    cells.map((cell, i) => h('td', { 'data-label': COLUMNS[i], class: i === 0 ? 'name' : '' }, cell)));
}

function keysTable(rows) {
  return h('table', {},
    h('caption', { class: 'visually-hidden', text: 'API keys, newest first' }),
    h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', {}, rows));
}

function skeletonRows(n) {
  return Array.from({ length: n }, () => h('tr', { 'aria-hidden': 'true' },
    COLUMNS.map((c) => h('td', { 'data-label': c }, h('span', { class: 'skeleton-bar' })))));
}

// The console's URL for a list query (`/console` alone for none).
function listUrl(query) {
  return `/console${query.toString() ? `?${query}` : ''}`;
}

function filterForm(filters) {
  const select = (name, choices) => h('select', { name }, choices.map(([value, label]) =>
    h('option', { value, selected: filters[name] === value, text: label })));
  const nameInput = h('input', {
    type: 'search', name: 'name', value: filters.name, maxlength: '100', autocomplete: 'off',
  });
  const ownerInput = h('input', {
    type: 'text', name: 'owner_id', value: filters.owner_id, maxlength: '255', autocomplete: 'off',
  });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter keys' },
    field({ id: 'filter-name', label: 'Name contains', input: nameInput, error: false }),
    field({ id: 'filter-environment', label: 'Environment', error: false,
      input: select('environment', [['', 'All'], ['live', 'Live'], ['test', 'Test']]) }),
    field({ id: 'filter-status', label: 'Status', error: false,
      input: select('is_revoked', [['', 'All'], ['false', 'Not revoked'], ['true', 'Revoked']]) }),
    field({ id: 'filter-owner', label: 'Owner', input: ownerInput, error: false }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'button', text: 'Apply filters' }),
      h('a', { href: '/console', class: 'button quiet', text: 'Clear' })));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) next.set(k, String(v).trim());
    navigate(listUrl(next));
  });
  return form;
}

// The pager's two ends. Cursors only go forward: "Previous" is the page this
// one was reached from; a page opened from a link can only go back to the first.
function pagerButtons(query, next) {
  const cameFromPrevious = history.state && history.state.paged;
  let newer = h('span');
  if (query.get('cursor')) {
    newer = cameFromPrevious
      ? h('button', { type: 'button', class: 'button quiet', text: 'Previous page', onclick: () => history.back() })
      : h('button', {
        type: 'button', class: 'button quiet', text: 'First page',
        onclick: () => {
          const first = new URLSearchParams(location.search);
          first.delete('cursor');
          navigate(listUrl(first));
        },
      });
  }
  const older = next
    ? h('button', {
      type: 'button', class: 'button quiet', text: 'Next page',
      onclick: () => {
        const forward = new URLSearchParams(location.search);
        forward.set('cursor', next);
        navigate(`/console?${forward}`, { state: { paged: true } });
      },
    })
    : h('span');
  return [newer, older];
}

function showKeys(view, data, filtered) {
  const { results, status } = view;
  results.removeAttribute('aria-busy');
  if (!data.length) {
    results.replaceChildren(h('div', { class: 'empty' },
      filtered ? 'No keys match these filters.' : 'No keys yet. ',
      filtered ? null : h('a', { href: '/console/keys/new', text: 'Create the first one.' })));
  } else {
    results.replaceChildren(keysTable(data.map(keyRow)));
  }
  status.textContent = `${data.length} ${data.length === 1 ? 'key' : 'keys'} shown.`;
}

export async function keysPage() {
  const query = new URLSearchParams(location.search);
  const filters = {
    name: query.get('name') || '',
    environment: query.get('environment') || '',
    is_revoked: query.get('is_revoked') || '',
    owner_id: query.get('owner_id') || '',
  };
  const filtered = Object.values(filters).some(Boolean);
  const alert = h('div', { class: 'alert', tabindex: '-1' });
  const results = h('div', { class: 'results', 'aria-busy': 'true' }, keysTable(skeletonRows(5)));
  // Made when the rows arrive, inside the results: nothing on the page sits
  // below them to be pushed down as they fill in.
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const status = h('p', { class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  page('Keys',
    h('div', { class: 'page-head' },
      h('h1', { text: 'API keys' }),
      h('a', { href: '/console/keys/new', class: 'button', text: 'Create key' })),
    // Folded on a phone unless a filter is on, so the keys come first there.
    h('details', {
      class: 'filter-box card',
      open: window.matchMedia('(min-width: 721px)').matches || filtered,
    }, h('summary', { text: 'Filters' }), filterForm(filters)),
    alert, status, results);

  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  if (query.get('cursor')) params.set('cursor', query.get('cursor'));
  const token = renderToken();
  try {
    const { data, headers } = await call(`${API}?${params}`);
    if (!isCurrentRender(token)) return;
    showKeys({ results, status }, data, filtered);
    const next = nextCursor(headers);
    pager.replaceChildren(...pagerButtons(query, next));
    if (next || query.get('cursor')) results.append(pager);
  } catch (error) {
    if (!isCurrentRender(token)) return;
    results.removeAttribute('aria-busy');
    results.replaceChildren(h('div', { class: 'empty', text: 'The keys could not be loaded.' }));
    showError(alert, error, 'Could not list the keys');
  }
}
