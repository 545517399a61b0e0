// Any console path that is no page.

import { h, page } from '../dom.js';

export function notFoundPage() {
  page('Not found',
    h('h1', { text: 'Page not found' }),
    h('p', {}, 'There is no console page here. ', h('a', { href: '/console', text: 'Go to the keys.' })));
}
