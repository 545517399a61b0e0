// A key's status as a badge. The API decides a key's status; the console only
// names and colours it.

import { h } from '../dom.js';

const STATUS = {
  active: ['ok', 'Active'],
  leaked: ['warn', 'Leaked'],
  expired: ['bad', 'Expired'],
  revoked: ['bad', 'Revoked'],
};

export function statusBadge(key) {
  const [kind, label] = STATUS[key.status] || ['', key.status];
  return h('span', { class: `badge ${kind}`, text: label });
}
