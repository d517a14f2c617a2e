// Overview: component health, firing alerts, headline figures and 15-minute charts.
import { html, useMemo } from '../html.js';
import { Chart } from '../chart.js';
import { Card, Empty, Pill, Stat } from '../ui.js';
import { alertValue, bytes, num, pct, secs, ago } from '../fmt.js';

export function AlertList({ alerts }) {
  if (!alerts.length) return html`<p class="ok-line" data-testid="no-alerts">No alerts firing.</p>`;
  return html`<ul class="alerts" data-testid="alerts">
    ${alerts.map((a) => html`<li key=${a.alert + (a.subject || '')} class=${`alert alert-${a.severity}`} data-alert=${a.alert}>
      <${Pill} status=${a.severity === 'critical' ? 'down' : 'degraded'}>${a.severity}<//>
      <strong>${a.summary}</strong>${a.subject ? html` <code>${a.subject}</code>` : null}
      <span class="muted"> — ${alertValue(a.alert, a.value)} (threshold ${alertValue(a.alert, a.threshold)}), since ${ago(a.since)}</span>
    </li>`)}
  </ul>`;
}

const ORDER = ['store', 'proxy', 'ledger', 'gpu', 'executor'];
const order = (name) => { const i = ORDER.indexOf(name); return i < 0 ? ORDER.length : i; };

export function series(history, pick) {
  const xs = history.map((s) => s.t);
  return [xs, history.map((s) => { const v = pick(s); return v == null ? null : v; })];
}

export function Overview({ live }) {
  const { snapshot: s, health, alerts, history } = live;
  const gpuNames = useMemo(() => [...new Set(history.flatMap((h) => Object.keys(h.gpus || {})))].sort(), [history.length && Object.keys(history[history.length - 1].gpus || {}).join()]);
  const rps = useMemo(() => series(history, (h) => h.rps), [history.length, history[history.length - 1]?.t]);
  const err = useMemo(() => series(history, (h) => h.error_rate), [history.length, history[history.length - 1]?.t]);
  const p99 = useMemo(() => series(history, (h) => h.p99_seconds), [history.length, history[history.length - 1]?.t]);
  const tok = useMemo(() => series(history, (h) => h.tokens_per_second), [history.length, history[history.length - 1]?.t]);
  const gpu = useMemo(() => [history.map((h) => h.t), ...gpuNames.map((g) => history.map((h) => h.gpus?.[g]?.utilization ?? null))], [history.length, history[history.length - 1]?.t, gpuNames.join()]);

  return html`<div class="view">
    <div class="grid-2">
      <${Card} title="Components">
        <ul class="components" data-testid="components">
          ${Object.entries(health).sort(([a], [b]) => order(a) - order(b)).map(([name, c]) => html`<li key=${name}><span class="comp-name">${name}</span><${Pill} status=${c.status} /><span class="muted comp-reason">${c.reason}</span></li>`)}
        </ul>
      <//>
      <${Card} title=${`Alerts (${alerts.length})`}><${AlertList} alerts=${alerts} /><//>
    </div>
    <div class="stats" data-testid="stats">
      <${Stat} label="Requests/s" value=${num(s?.rps)} />
      <${Stat} label="Error rate" value=${pct(s?.error_rate)} tone=${s?.error_rate > 0.1 ? 'bad' : null} />
      <${Stat} label="p99 latency" value=${secs(s?.p99_seconds)} tone=${s?.p99_seconds > 5 ? 'bad' : null} />
      <${Stat} label="Tokens/s" value=${num(s?.tokens_per_second)} />
      <${Stat} label="Queue" value=${s?.queue_depth == null ? '–' : num(s.queue_depth, 0)} />
      <${Stat} label="Memory (RSS)" value=${bytes(s?.rss_bytes)} />
      <${Stat} label="CPU" value=${s ? `${num(s.cpu_percent)}%` : '–'} />
      <${Stat} label="Locks held" value=${s ? `${Object.values(s.locks || {}).filter((l) => l.held).length} / ${Object.keys(s.locks || {}).length}` : '–'} />
    </div>
    <div class="charts">
      <${Chart} title="Requests per second" series=${[{ label: 'req/s' }]} data=${rps} format=${(v) => num(v)} />
      <${Chart} title="Error rate" series=${[{ label: 'errors', color: '#f31260' }]} data=${err} format=${pct} />
      <${Chart} title="p99 latency" series=${[{ label: 'p99', color: '#f5a524' }]} data=${p99} format=${secs} />
      <${Chart} title="Tokens per second" series=${[{ label: 'tokens/s', color: '#17c964' }]} data=${tok} format=${(v) => num(v)} />
      ${gpuNames.length
        ? html`<${Chart} title="GPU utilization" series=${gpuNames.map((g) => ({ label: `GPU ${g}` }))} data=${gpu} format=${pct} />`
        : html`<figure class="chart"><figcaption>GPU utilization</figcaption><${Empty}>No GPU figures (no NVML driver, or the GPU sampler is off).<//></figure>`}
    </div>
  </div>`;
}
