// What the person typed on this page, kept across a sign-in (never secrets:
// inputs marked data-secret are left out), in this tab's sessionStorage.

const DRAFTS = 'keymint.console.drafts';

export function saveDrafts() {
  const values = {};
  for (const el of document.querySelectorAll('main [data-draft]')) {
    if (el.dataset.secret !== undefined) continue;
    const name = el.dataset.draft;
    values[name] = el.type === 'radio' ? (el.checked ? el.value : values[name]) : el.value;
  }
  sessionStorage.setItem(DRAFTS, JSON.stringify({ path: location.pathname, values }));
}

export function restoreDrafts() {
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(DRAFTS) || 'null'); } catch { saved = null; }
  if (!saved || saved.path !== location.pathname) return;
  sessionStorage.removeItem(DRAFTS);
  for (const el of document.querySelectorAll('main [data-draft]')) {
    const value = saved.values[el.dataset.draft];
    if (value === undefined) continue;
    if (el.type === 'radio') el.checked = el.value === value;
    else el.value = value;
  }
}

// Forgets the drafts: what they were for is done (or the person signed out).
export function clearDrafts() {
  sessionStorage.removeItem(DRAFTS);
}
