// Executor: pool and execution figures once that capability is built in; until then a
// calm "not enabled" — it is a configuration fact, not an error.
import { html } from '../html.js';
import { Card, Empty, Pill, Stat } from '../ui.js';

function flat(obj, prefix = '') {
  return Object.entries(obj || {}).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v)
    ? flat(v, `${prefix}${k}.`) : [[`${prefix}${k}`, Array.isArray(v) ? v.join(', ') : String(v)]]));
}

export function Executor({ live }) {
  const h = live.health.executor;
  if (!h || h.status === 'disabled') {
    return html`<div class="view"><${Card} title="Executor">
      <div class="not-enabled" data-testid="executor-disabled"><${Pill} status="disabled">not enabled<//>
      <p>The code executor is not enabled in this keel${h?.reason ? html` (${h.reason})` : ''}. Enable it with <code>[executor]</code> in the config; its pool and execution figures will show here.</p></div>
    <//></div>`;
  }
  const figures = flat(live.sections.executor);
  return html`<div class="view"><${Card} title="Executor" actions=${html`<${Pill} status=${h.status} />`}>
    <p class="muted">${h.reason}</p>
    ${figures.length ? html`<div class="stats">${figures.map(([k, v]) => html`<${Stat} key=${k} label=${k} value=${v} />`)}</div>` : html`<${Empty}>No executor figures reported yet.<//>`}
  <//></div>`;
}
