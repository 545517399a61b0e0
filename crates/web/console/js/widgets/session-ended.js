// When the API says the session has ended: a modal dialog to sign in again,
// keeping what was typed on the page.

import { updateChrome } from '../chrome.js';
import { h, toast } from '../dom.js';
import { saveDrafts } from '../drafts.js';
import { endSession } from '../session.js';
import { signInForm } from './sign-in-form.js';

// The dialog while it is open, so a second refusal does not stack another.
let endedDialog = null;

export function sessionEnded() {
  endSession();
  saveDrafts();
  if (endedDialog && endedDialog.open) return;
  endedDialog = h('dialog', { 'aria-labelledby': 'ended-title', class: 'session-ended' });
  const body = h('div');
  endedDialog.append(
    h('h2', { id: 'ended-title', text: 'Your session has ended' }),
    h('p', { text: 'Sign in again to carry on. What you typed on this page is kept.' }),
    body,
  );
  const done = () => {
    endedDialog.close();
    endedDialog.remove();
    updateChrome();
    toast('Signed in again. Repeat the last action to complete it.');
  };
  body.append(signInForm(done, true));
  document.body.append(endedDialog);
  endedDialog.addEventListener('cancel', (event) => event.preventDefault());
  endedDialog.showModal();
}
