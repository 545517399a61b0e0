// What can be done to a key from its page, each in a dialog: edit, change the
// credits, rotate, revoke, delete. Each takes the page's context: `id`, `key`
// (as last loaded), `view` (its parts) and `refresh()`.

import { API, call } from '../api.js';
import { field, h, options, toast } from '../dom.js';
import { navigate } from '../nav.js';
import { confirmDialog } from '../widgets/confirm.js';
import { revealPanel } from '../widgets/reveal.js';

function editKey(ctx) {
  const { id, key, view } = ctx;
  const name = h('input', { type: 'text', name: 'name', maxlength: '100', autocomplete: 'off', value: key.name });
  const description = h('textarea', { name: 'description', maxlength: '255', rows: '3' });
  description.value = key.description || '';
  const owner = h('input', {
    type: 'text', name: 'owner_id', maxlength: '255', autocomplete: 'off', value: key.owner_id || '',
  });
  confirmDialog({
    title: `Edit “${key.name}”`,
    body: [
      field({ id: 'edit-name', label: 'Name', input: name }),
      field({ id: 'edit-description', label: 'Description', hint: 'Empty: no description.', input: description }),
      field({ id: 'edit-owner_id', label: 'Owner', hint: 'Empty: no owner.', input: owner }),
    ],
    confirm: 'Save changes',
    failure: 'The key was not changed',
    fields: 'edit',
    onConfirm: async () => {
      const patch = {};
      if (name.value !== key.name) patch.name = name.value;
      if (description.value !== (key.description || '')) patch.description = description.value || null;
      if (owner.value !== (key.owner_id || '')) patch.owner_id = owner.value || null;
      if (!Object.keys(patch).length) return;
      const { data } = await call(`${API}/${id}`, { method: 'PATCH', body: patch });
      toast(`Saved “${data.name}”.`);
      await ctx.refresh();
      view.heading.focus();
    },
  });
}

function changeCredits(ctx) {
  const { id, key, view } = ctx;
  const op = options({ name: 'op' }, [['increment', 'Add'], ['decrement', 'Take away'], ['set', 'Set to']]);
  const value = h('input', { type: 'number', name: 'value', min: '0', step: '1', inputmode: 'numeric' });
  // One change per dialog, however often it is submitted: a retry after a
  // lost answer replays the first instead of applying twice.
  const idempotency = crypto.randomUUID();
  confirmDialog({
    title: `Change the credits of “${key.name}”`,
    body: [
      h('p', {
        text: `${key.credits.remaining} remaining now. `
          + 'The change is applied at once, in step with the verifications spending them.',
      }),
      h('div', { class: 'inline-fields' },
        field({ id: 'credits-op', label: 'Change', input: op }),
        field({ id: 'credits-value', label: 'Credits', input: value })),
    ],
    confirm: 'Apply',
    failure: 'The credits were not changed',
    fields: 'credits',
    onConfirm: async () => {
      const { data } = await call(`${API}/${id}/credits`, {
        method: 'POST',
        headers: { 'Idempotency-Key': idempotency },
        body: { op: op.value, value: value.value === '' ? null : Number(value.value) },
      });
      toast(`${data.remaining} credits remaining.`);
      await ctx.refresh();
      view.heading.focus();
    },
  });
}

// An hour by default: rotating is how a running integration moves to a new
// key, and cutting the old one off at once is the exception.
const GRACE = [
  ['0', 'None: the current private key stops working at once'],
  ['3600', '1 hour'], ['86400', '24 hours'], ['604800', '7 days'],
];

function rotateKey(ctx) {
  const { id, key, view } = ctx;
  const grace = h('select', { id: 'rotate-grace', name: 'grace' },
    GRACE.map(([value, label]) => h('option', { value, text: label, selected: value === '3600' })));
  confirmDialog({
    title: `Rotate “${key.name}”?`,
    body: [
      h('p', {
        text: 'A new private key replaces the current one. During the grace period the current private key '
          + 'keeps working, so the integration can switch without downtime.',
      }),
      h('div', { class: 'field' }, h('label', { for: 'rotate-grace', text: 'Grace period' }), grace),
    ],
    confirm: 'Rotate key',
    failure: 'The key was not rotated',
    onConfirm: async () => {
      const seconds = Number(grace.value);
      const { data } = await call(`${API}/${id}/rotate`, {
        method: 'POST', body: seconds ? { grace_period_seconds: seconds } : undefined,
      });
      const panel = revealPanel({ id, privateKey: data.private_key, why: 'rotated' }, () => view.heading.focus());
      view.revealSlot.replaceChildren(panel);
      toast(`Rotated “${data.name}”.`);
      await ctx.refresh();
      setTimeout(() => panel.focus(), 0);
    },
  });
}

function revokeKey(ctx) {
  const { id, key, view } = ctx;
  confirmDialog({
    title: `Revoke “${key.name}”?`,
    body: [h('p', {
      text: `“${key.name}” (${key.private_key_display}) stops verifying at once, everywhere. `
        + 'Revoking cannot be undone.',
    })],
    confirm: 'Revoke key',
    failure: 'The key was not revoked',
    danger: true,
    onConfirm: async () => {
      await call(`${API}/${id}/revoke`, { method: 'PUT' });
      toast(`Revoked “${key.name}”.`);
      await ctx.refresh();
      view.heading.focus();
    },
  });
}

function deleteKey(ctx) {
  const { id, key } = ctx;
  confirmDialog({
    title: `Delete “${key.name}”?`,
    body: [
      h('p', { text: `“${key.name}” is removed and stops verifying. Its audit trail is kept. This cannot be undone.` }),
      h('div', { class: 'field' },
        h('label', { for: 'delete-confirm' },
          'Type the key\'s name, ', h('strong', { text: key.name }), ', to confirm'),
        h('input', {
          type: 'text', id: 'delete-confirm', autocomplete: 'off', spellcheck: 'false', 'data-confirm': true,
        })),
    ],
    confirm: 'Delete key',
    failure: 'The key was not deleted',
    danger: true,
    typed: key.name,
    onConfirm: async () => {
      await call(`${API}/${id}`, { method: 'DELETE' });
      navigate('/console');
      toast(`Deleted “${key.name}”.`);
    },
  });
}

// The buttons beside the key's name, for the key as it is now.
export function keyActions(ctx) {
  const { key } = ctx;
  const button = (cls, text, act, disabled) => h('button', {
    type: 'button', class: `button ${cls}`, text, disabled, onclick: () => act(ctx),
  });
  return [
    button('quiet', 'Edit', editKey),
    key.credits ? button('quiet', 'Credits', changeCredits) : null,
    button('secondary', 'Rotate', rotateKey, key.is_revoked),
    button('danger secondary', 'Revoke', revokeKey, key.is_revoked),
    button('danger', 'Delete', deleteKey),
  ].filter(Boolean);
}
