// Executor: the V8 isolate pool — isolates by state, executions by outcome, queue depth,
// heap used and p50/p99 execution time, with 15-minute charts from the per-second history
// (`snapshot.executor`) and the pool's shape from `sections.executor`. A keel whose
// executor is off shows a calm "not enabled": a configuration fact, not an error.
import { html, useMemo } from '../html.js';
import { get } from '../api.js';
import { Chart } from '../chart.js';
import { Card, Empty, Pill, Stat, usePoll } from '../ui.js';
import { ago, bytes, num, secs } from '../fmt.js';

const MIB = 1024 * 1024;

const STATES = ['idle', 'busy', 'starting'];
// Outcomes worth a tone when they are not zero.
const BAD = new Set(['timeout', 'oom', 'error', 'rejected']);

/** Execution times are often under a millisecond: keep two decimals there. */
function dur(v) {
  if (v == null || Number.isNaN(v)) return '–';
  if (v === 0) return '0 ms';
  return v < 0.01 ? `${(v * 1000).toFixed(2)} ms` : secs(v);
}

/**
 * The newest second with executions in it. Percentiles are per second, so a quiet second
 * has none: the tile shows the last busy one instead of a dash.
 */
function lastBusy(history) {
  for (let i = history.length - 1; i >= 0; i--) {
    if (history[i].executor?.p50_seconds != null) return history[i];
  }
  return null;
}

/**
 * The pool's heap limit: `heap_limit_mb` (from `/flow/limits`) for each isolate. The
 * executor's own sum only counts isolates that have run a block since they started, so
 * it reads low (or 0) on a fresh pool.
 */
function heapLimitHint(pool, limits) {
  const per = limits?.heapLimitMb;
  const n = pool.pool_size;
  const parts = [];
  if (per != null && n != null) parts.push(`limit ${bytes(n * per * MIB)} (${n} × ${per} MiB)`);
  else if (pool.heap_limit_bytes) parts.push(`limit ${bytes(pool.heap_limit_bytes)}`);
  if (pool.array_buffer_bytes != null) parts.push(`${bytes(pool.array_buffer_bytes)} array buffers`);
  return parts.join(' · ') || null;
}

export function Executor({ live }) {
  const h = live.health.executor;
  const history = live.history;
  const last = history[history.length - 1]?.t;
  const xs = useMemo(() => history.map((s) => s.t), [history.length, last]);
  const rps = useMemo(() => [xs, history.map((s) => s.executor?.rps ?? null)], [xs]);
  const lat = useMemo(() => [xs, history.map((s) => s.executor?.p50_seconds ?? null), history.map((s) => s.executor?.p99_seconds ?? null)], [xs]);
  const queue = useMemo(() => [xs, history.map((s) => s.executor?.queue_depth ?? null), history.map((s) => s.executor?.isolates?.busy ?? null)], [xs]);
  const heap = useMemo(() => [xs, history.map((s) => s.executor?.heap_used_bytes ?? null)], [xs]);
  const off = !h || h.status === 'disabled';
  // The limits are configuration: fetched when the view opens, not polled.
  const [limits] = usePoll(() => (off ? Promise.resolve(null) : get('/flow/limits')), 3600000, [off]);

  if (off) {
    return html`<div class="view"><${Card} title="Executor">
      <div class="not-enabled" data-testid="executor-disabled"><${Pill} status="disabled">not enabled<//>
      <p>The code executor is not enabled in this keel${h?.reason ? html` (${h.reason})` : ''}. Enable it with <code>[executor]</code> in the config; its pool and execution figures will show here.</p></div>
    <//></div>`;
  }
  const ex = live.snapshot?.executor;
  const pool = live.sections.executor || {};
  const outcomes = Object.entries(ex?.outcomes || {}).sort(([a], [b]) => a.localeCompare(b));
  const total = outcomes.filter(([k]) => k !== 'rejected').reduce((a, [, v]) => a + v, 0);
  const busy = lastBusy(history);

  return html`<div class="view">
    <${Card} title="Executor" actions=${html`<${Pill} status=${h.status} />`}>
      <p class="muted">${h.reason}</p>
      ${ex ? html`<div class="stats" data-testid="executor-stats">
        <${Stat} label="Isolates" value=${pool.pool_size ?? '–'} hint=${STATES.map((s) => `${num(ex.isolates?.[s] ?? 0, 0)} ${s}`).join(' · ')} />
        <${Stat} label="Executions" value=${html`<span data-testid="executor-total">${num(total, 0)}</span>`} hint=${`${num(ex.rps)}/s now`} />
        <${Stat} label="Queue" value=${num(ex.queue_depth, 0)} hint=${`${num(pool.running ?? 0, 0)} running · max ${pool.max_concurrent ?? '–'}`} />
        <${Stat} label="p50 / p99" value=${html`<span data-testid="executor-latency">${busy ? `${dur(busy.executor.p50_seconds)} / ${dur(busy.executor.p99_seconds)}` : '–'}</span>`}
          hint=${!busy ? 'no execution in 15 min' : busy.t === last ? 'last second' : `last busy second, ${ago(busy.t)}`} />
        <${Stat} label="Heap used" value=${bytes(ex.heap_used_bytes)} hint=${html`<span data-testid="executor-heap-limit">${heapLimitHint(pool, limits)}</span>`} />
        <${Stat} label="Recycled" value=${num(pool.isolates_recycled ?? 0, 0)} hint="isolates replaced" />
        <${Stat} label="Process restarts" value=${num(pool.process_restarts ?? 0, 0)} tone=${pool.process_restarts > 0 ? 'bad' : null}
          hint=${pool.memory_limit_bytes ? `memory ceiling ${bytes(pool.memory_limit_bytes)}` : null} />
        <${Stat} label="Fresh context" value=${pool.context_ms == null ? '–' : `${num(pool.context_ms, 2)} ms`} hint=${pool.context_with_libraries_ms == null ? null : `${num(pool.context_with_libraries_ms, 2)} ms with ${pool.modules ?? '–'} libraries`} />
      </div>` : html`<${Empty}>No executor figures reported yet.<//>`}
    <//>
    <div class="grid-2">
      <${Card} title="Pool isolates by state">
        <ul class="components" data-testid="executor-isolates">
          ${STATES.map((s) => html`<li key=${s}><span class="comp-name">${s}</span><strong data-state=${s}>${num(ex?.isolates?.[s] ?? 0, 0)}</strong></li>`)}
        </ul>
      <//>
      <${Card} title="Executions by outcome">
        ${outcomes.length
          ? html`<ul class="components" data-testid="executor-outcomes">
              ${outcomes.map(([k, v]) => html`<li key=${k} data-outcome=${k}><span class="comp-name">${k}</span><strong class=${BAD.has(k) && v > 0 ? 'tone-bad' : ''}>${num(v, 0)}</strong></li>`)}
            </ul>`
          : html`<${Empty}>No code block has run yet.<//>`}
      <//>
    </div>
    <div class="charts">
      <${Chart} title="Executions per second" series=${[{ label: 'exec/s' }]} data=${rps} format=${(v) => num(v)} />
      <${Chart} title="Execution time" series=${[{ label: 'p50', color: '#17c964' }, { label: 'p99', color: '#f5a524' }]} data=${lat} format=${dur} />
      <${Chart} title="Queue and busy isolates" series=${[{ label: 'queued', color: '#f31260' }, { label: 'busy', color: '#4f8cff' }]} data=${queue} format=${(v) => num(v, 0)} />
      <${Chart} title="Heap used" series=${[{ label: 'heap', color: '#9353d3' }]} data=${heap} format=${bytes} />
    </div>
  </div>`;
}
