// A secret shown once: a private key (the default) or a webhook's signing
// secret (`noun: 'secret'`), masked until asked, with a copy button.

import { h } from '../dom.js';

// Copies `text`, through the Clipboard API where the page has it.
async function copyText(text) {
  if (navigator.clipboard) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-http pages other than localhost get no Clipboard API.
  const area = h('textarea', { class: 'visually-hidden', 'aria-hidden': 'true', readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  const done = document.execCommand('copy');
  area.remove();
  if (!done) throw new Error('refused');
}

function revealTitle(reveal) {
  if (reveal.title) return reveal.title;
  return reveal.why === 'rotated' ? 'Copy the new private key now' : 'Copy your new private key now';
}

const WARNING = 'This is the only time Keymint shows this key: it is not stored and can never be shown again. '
  + 'If it is lost, rotate the key.';

export function revealPanel(reveal, onDone) {
  let secret = reveal.privateKey;
  const noun = reveal.noun || 'key';
  // The kind stays readable (acme_sk_live_…, whsec_…); the secret does not.
  const prefix = /^(?:(?:[a-z0-9]+_)?[a-z]+_(?:live|test)_|whsec_)/.exec(secret);
  const masked = `${prefix ? prefix[0] : ''}${'•'.repeat(24)}`;
  const shown = h('code', { class: 'secret', id: 'reveal-secret', text: masked, 'aria-live': 'polite' });
  const toggle = h('button', {
    type: 'button', class: 'button secondary', 'aria-pressed': 'false', 'aria-controls': 'reveal-secret',
    text: `Show ${noun}`,
  });
  const copy = h('button', { type: 'button', class: 'button', text: `Copy ${noun}` });
  const copied = h('p', { role: 'status', class: 'hint' });
  const done = h('button', { type: 'button', class: 'button quiet', text: 'I have saved it' });
  toggle.addEventListener('click', () => {
    const show = toggle.getAttribute('aria-pressed') !== 'true';
    toggle.setAttribute('aria-pressed', String(show));
    toggle.textContent = show ? `Hide ${noun}` : `Show ${noun}`;
    shown.textContent = show ? secret : masked;
  });
  copy.addEventListener('click', async () => {
    try {
      await copyText(secret);
      copied.textContent = 'Copied to the clipboard.';
    } catch {
      copied.textContent = `The browser refused the clipboard: choose Show ${noun} and copy it by hand.`;
    }
  });
  const panel = h('section', { class: 'card reveal', 'aria-labelledby': 'reveal-title', tabindex: '-1', id: 'reveal' },
    h('h2', { id: 'reveal-title', text: revealTitle(reveal) }),
    h('p', { class: 'warning', text: reveal.warning || WARNING }),
    shown,
    h('div', { class: 'actions' }, toggle, copy, done),
    copied);
  done.addEventListener('click', () => {
    secret = '';
    panel.remove();
    onDone();
  });
  return panel;
}

