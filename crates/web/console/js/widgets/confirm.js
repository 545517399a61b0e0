// A modal dialog that asks before acting: its form's fields, the action's
// button, and the API's refusal shown inside it (beside the fields it names
// when `fields` is their id prefix).

import { SessionEnded } from '../api.js';
import { h } from '../dom.js';
import { showError, showRefusal } from '../forms.js';

export function confirmDialog({ title, body, confirm, danger, typed, failure, fields, onConfirm }) {
  const alert = h('div', { class: 'alert', tabindex: '-1' });
  const ok = h('button', { type: 'submit', class: `button${danger ? ' danger' : ''}`, text: confirm });
  const cancel = h('button', { type: 'button', class: 'button quiet', text: 'Cancel' });
  const dialog = h('dialog', { 'aria-labelledby': 'confirm-title' });
  const form = h('form', { method: 'dialog', novalidate: true },
    h('h2', { id: 'confirm-title', text: title }), ...body, alert,
    h('div', { class: 'actions' }, cancel, ok));
  if (typed) {
    // The action waits until the input marked data-confirm holds `typed`.
    const input = form.querySelector('input[data-confirm]');
    ok.disabled = true;
    input.addEventListener('input', () => { ok.disabled = input.value !== typed; });
  }
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    ok.disabled = true;
    try {
      await onConfirm(form);
      dialog.close();
    } catch (error) {
      ok.disabled = false;
      if (error instanceof SessionEnded) return;
      if (fields) showRefusal(form, alert, error, fields, failure);
      else showError(alert, error, failure);
    }
  });
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
