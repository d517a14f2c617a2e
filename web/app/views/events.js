// Events: the live log of operator events, filterable by text, component and level.
import { html, useMemo, useState } from '../html.js';
import { Card, Empty, Pill } from '../ui.js';
import { clock } from '../fmt.js';

const SHOWN = 500;

export function Events({ live }) {
  const [text, setText] = useState('');
  const [component, setComponent] = useState('');
  const [level, setLevel] = useState('');
  const [paused, setPaused] = useState(null);
  const source = paused ?? live.events;
  const components = useMemo(() => [...new Set(live.events.map((e) => e.component))].sort(), [live.events.length]);
  const needle = text.trim().toLowerCase();
  const rows = [];
  for (let i = source.length - 1; i >= 0 && rows.length < SHOWN; i--) {
    const e = source[i];
    if (component && e.component !== component) continue;
    if (level && e.level !== level) continue;
    if (needle && !`${e.kind} ${e.message} ${JSON.stringify(e.data)}`.toLowerCase().includes(needle)) continue;
    rows.push(e);
  }
  return html`<div class="view">
    <${Card} title="Events" actions=${html`
      <button class="btn" aria-pressed=${paused ? 'true' : 'false'} onClick=${() => setPaused(paused ? null : [...live.events])}>${paused ? 'Resume' : 'Pause'}</button>`}>
      <div class="filters" role="search">
        <label class="field inline">Filter<input type="search" placeholder="kind, message, data…" value=${text} onInput=${(e) => setText(e.currentTarget.value)} data-testid="event-filter" /></label>
        <label class="field inline">Component<select value=${component} onChange=${(e) => setComponent(e.currentTarget.value)}>
          <option value="">all</option>${components.map((c) => html`<option value=${c}>${c}</option>`)}</select></label>
        <label class="field inline">Level<select value=${level} onChange=${(e) => setLevel(e.currentTarget.value)}>
          <option value="">all</option><option value="info">info</option><option value="warn">warn</option><option value="error">error</option></select></label>
        <span class="muted">${rows.length} shown${paused ? ' (paused)' : ''}</span>
      </div>
      ${rows.length ? html`<table class="table events" data-testid="events">
        <thead><tr><th scope="col">Time</th><th scope="col">Level</th><th scope="col">Kind</th><th scope="col">Message</th></tr></thead>
        <tbody>${rows.map((e) => html`<tr key=${e.id} class=${`lvl-${e.level}`}>
          <td class="mono">${clock(e.time)}</td><td><${Pill} status=${e.level === 'error' ? 'down' : e.level === 'warn' ? 'degraded' : 'healthy'}>${e.level}<//></td>
          <td class="mono">${e.kind}</td><td>${e.message}</td></tr>`)}</tbody></table>`
        : html`<${Empty}>No events${needle || component || level ? ' match the filter' : ' yet'}.<//>`}
    <//>
  </div>`;
}
