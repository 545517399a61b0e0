// Building the page: every element through the DOM API, never from HTML
// strings, so text from the API is always text.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') el.textContent = value;
    else if (name === 'class') el.className = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function time(iso) {
  if (!iso) return h('span', { text: 'never' });
  const at = new Date(iso);
  return h('time', { datetime: iso, title: at.toISOString() }, at.toLocaleString(undefined, {
    dateStyle: 'medium', timeStyle: 'short',
  }));
}

let toastTimer = 0;
export function toast(message) {
  const el = document.getElementById('toast');
  el.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.textContent = ''; }, 6000);
}

export function page(title, ...children) {
  document.title = `${title} · Keymint console`;
  const main = document.getElementById('main');
  main.replaceChildren(h('div', { class: 'page' }, ...children));
  return main;
}

// An empty alert box, filled by showError or showRefusal.
export function alertBox() {
  return h('div', { class: 'alert', tabindex: '-1' });
}

export function field({ id, label, hint, input, error = true }) {
  const describedBy = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  if (describedBy) input.setAttribute('aria-describedby', describedBy);
  input.id = id;
  return h('div', { class: 'field' },
    h('label', { for: id, text: label }),
    hint ? h('p', { class: 'hint', id: `${id}-hint`, text: hint }) : null,
    input,
    error ? h('p', { class: 'field-error', id: `${id}-error` }) : null);
}

// A select of [value, label] pairs.
export function options(attrs, pairs) {
  return h('select', attrs, pairs.map(([value, label]) => h('option', { value, text: label })));
}

// [label, value] pairs as a description list's dt and dd elements.
export function definitions(rows) {
  return rows.flatMap(([label, value]) => [h('dt', { text: label }), h('dd', {}, value)]);
}

// The rows of a details list before its data arrives: the same labels and as
// many rows, values held by placeholders, so the card does not grow (and push
// what is below it on a phone) when the values fill in.
export function skeleton(rows) {
  for (let i = 1; i < rows.length; i += 2) rows[i].replaceChildren(h('span', { class: 'skeleton-bar' }));
  return rows;
}

// A "Show older …" button that loads the next page, or nothing on the last.
export function olderButton(next, text, load) {
  return next ? h('button', { type: 'button', class: 'button quiet', text, onclick: () => load(next) }) : '';
}

// What a page shows in place of a thing that could not be loaded: why, and
// the way back (the alert above carries the error and its request id).
export function missing(error, noun, back, backText) {
  const why = error.status === 404
    ? `No ${noun} has this id in your organisation: it may have been deleted, or the link may be wrong.`
    : `The ${noun} could not be loaded. Try again in a moment.`;
  return h('div', { class: 'card missing' },
    h('p', { text: why }),
    h('p', {}, h('a', { href: back, text: `← ${backText}` })));
}
