// Webhook endpoints in the console: the event types to choose from, and an
// endpoint's state and health, shared by the list and the endpoint's page.

import { definitions, h, time } from '../dom.js';

export const EVENT_TYPES = [
  ['key.created', 'A key is created'],
  ['key.updated', 'A key is changed'],
  ['key.rotated', 'A key is rotated'],
  ['key.revoked', 'A key is revoked'],
  ['key.deleted', 'A key is deleted'],
  ['key.leaked', 'A key is reported leaked'],
  ['key.expiring', 'A key expires soon'],
  ['key.credits_low', 'A key runs low on credits'],
];

// One checkbox per event type, in a fieldset that errors can name.
export function eventChoices(prefix, chosen) {
  const boxes = EVENT_TYPES.map(([value, label]) => {
    const id = `${prefix}-event-${value.replace(/[._]/g, '-')}`;
    return h('label', { for: id, class: 'choice' },
      h('input', { type: 'checkbox', id, name: 'event_types', value, checked: !chosen || chosen.includes(value) }),
      h('span', {}, label, ' ', h('code', { text: value })));
  });
  return h('fieldset', {
    id: `${prefix}-event_types`,
    'aria-describedby': `${prefix}-event_types-hint ${prefix}-event_types-error`,
    class: 'choices',
  },
  h('legend', { text: 'Events' }),
  h('p', { class: 'hint', id: `${prefix}-event_types-hint`, text: 'Which events are sent to this endpoint.' }),
  ...boxes,
  h('p', { class: 'field-error', id: `${prefix}-event_types-error` }));
}

export function chosenEvents(fieldset) {
  return [...fieldset.querySelectorAll('input[type=checkbox]:checked')].map((box) => box.value);
}

// An enabled endpoint's state is its circuit breaker's: paused endpoints get
// nothing until the time shown, then one delivery probes them.
export function hookState(hook) {
  if (!hook.enabled) return h('span', { class: 'badge', text: 'Disabled' });
  const health = hook.health || { state: 'healthy', consecutive_failures: 0 };
  const failures = health.consecutive_failures;
  const [kind, text] = {
    healthy: ['ok', 'Enabled'],
    failing: ['warn', `Failing: ${failures} in a row`],
    paused: ['bad', 'Paused: keeps failing'],
    probing: ['warn', 'Probing after a pause'],
  }[health.state] || ['', health.state];
  return h('span', { class: `badge ${kind}`, text });
}

function hookHealth(hook) {
  const health = hook.health;
  if (!health) return '';
  if (health.state === 'paused') {
    return h('span', {}, 'Nothing is sent until ', time(health.paused_until),
      `, after ${health.consecutive_failures} failed attempts in a row; then one delivery tries again.`
      + ' Send a delivery again to try now.');
  }
  if (health.state === 'probing') {
    return 'The pause is over: one delivery at a time tries the endpoint until one succeeds.';
  }
  if (health.state === 'failing') return `The last ${health.consecutive_failures} attempts failed.`;
  return 'Its last attempt succeeded (or none was made yet).';
}

export function hookRows(hook) {
  return definitions([
    ['State', hookState(hook)],
    ['Delivery health', hookHealth(hook)],
    ['Events', hook.event_types.join(', ')],
    ['Endpoint id', h('code', { text: hook.id })],
    ['Created', time(hook.created_at)],
    ['Changed', time(hook.updated_at)],
  ]);
}
