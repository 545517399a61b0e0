// Errors on the page: an API error in an alert, and a refused form's messages
// beside the fields they name.

import { ApiError, SessionEnded } from './api.js';
import { h } from './dom.js';

// An error as the API gave it: its message and the request id to quote.
function errorView(error, doing) {
  const box = h('div', { class: 'alert', role: 'alert', tabindex: '-1' });
  box.append(h('p', {}, h('strong', { text: doing ? `${doing}: ` : '' }), error.message));
  if (error.fields && error.fields.length) {
    box.append(h('ul', {}, error.fields.map((f) => h('li', {}, f.field ? `${f.field}: ` : '', f.msg))));
  }
  if (error.requestId) {
    box.append(h('p', { class: 'request-id' }, 'Request id: ', h('code', { text: error.requestId })));
  }
  return box;
}

export function showError(slot, error, doing) {
  if (error instanceof SessionEnded) return;
  const view = errorView(error, doing);
  slot.replaceChildren(...view.childNodes);
  slot.setAttribute('role', 'alert');
  slot.focus();
}

// Marks the fields a 422 names; returns the messages it could not place.
export function markFields(form, error, prefix) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
  const unplaced = [];
  for (const f of error.fields || []) {
    // The most specific field the form has: credits.refill.amount is shown at
    // #…-credits_refill_amount if there is one, else at #…-credits.
    const parts = f.field.split('.');
    let input = null;
    let slot = null;
    for (let n = parts.length; n > 0 && !(input && slot); n -= 1) {
      const name = CSS.escape(parts.slice(0, n).join('_'));
      input = form.querySelector(`#${prefix}-${name}`);
      slot = form.querySelector(`#${prefix}-${name}-error`);
    }
    if (input && slot) {
      input.setAttribute('aria-invalid', 'true');
      slot.textContent = slot.textContent ? `${slot.textContent} ${f.msg}` : f.msg;
    } else {
      unplaced.push(f);
    }
  }
  return unplaced;
}

// Focus on the first field to mend (in a folded section, opened).
function focusFirstInvalid(form) {
  const first = form.querySelector('[aria-invalid="true"]');
  if (!first) return;
  const folded = first.closest('details');
  if (folded) folded.open = true;
  const control = first.matches('input, select, textarea') ? first : first.querySelector('input, select, textarea');
  (control || first).focus();
}

// A refused form: the API's message beside each field it names, the rest and
// the request id in the form's alert, focus on the first field to mend.
export function showRefusal(form, alert, error, prefix, failure) {
  if (error instanceof SessionEnded) return;
  if (!error.fields) {
    showError(alert, error, failure);
    return;
  }
  const unplaced = markFields(form, error, prefix);
  const count = error.fields.length;
  const summary = `${failure}: ${count} ${count === 1 ? 'field needs' : 'fields need'} attention.`;
  showError(alert, new ApiError(summary, { fields: unplaced, requestId: error.requestId }), '');
  focusFirstInvalid(form);
}
