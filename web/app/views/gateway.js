// Gateway: every upstream node with breaker, shift stage, weights, traffic share and
// latency/error charts; add / re-weight / disable-enable / remove through the admin API,
// each behind a confirmation, each result shown as a notice; then the named client keys
// (requests, refusals and tokens per second, from the live snapshot's `keys`).
import { html, useMemo } from '../html.js';
import { del, get, patch, post } from '../api.js';
import { Chart } from '../chart.js';
import { Card, Empty, Pill, confirm, notify, usePoll } from '../ui.js';
import { useKeelEvents } from '../live.js';
import { num, pct, secs } from '../fmt.js';

const NODES = '/admin/api/nodes';

/** The node list, whichever envelope the admin API uses (`[...]` or `{nodes: [...]}`). */
function nodesOf(data) {
  if (Array.isArray(data)) return data;
  return data?.nodes ?? [];
}
const nameOf = (n) => n.name ?? n.id;
const urlOf = (n) => n.base_url ?? n.url ?? '';
const breakerOf = (n, live) => n.breaker?.state ?? n.breaker_state ?? (typeof n.breaker === 'string' ? n.breaker : null) ?? live?.breaker ?? 'unknown';
const enabledOf = (n) => (n.enabled ?? !n.disabled) !== false;
const stageOf = (n) => n.shift?.stage ?? n.shift_stage ?? n.stage ?? null;
const effectiveOf = (n) => n.effective_weight ?? n.weight;

async function act(label, fn) {
  try {
    await fn();
    notify('ok', `${label}: done`);
    return true;
  } catch (e) {
    notify('error', `${label} failed: ${e.message}`);
    return false;
  }
}

export function Gateway({ live }) {
  const [data, error, reload] = usePoll(() => get(NODES), 3000);
  useKeelEvents((e) => { if (e.component === 'proxy') reload(); });
  const snapshotNodes = live.snapshot?.nodes || {};
  const nodes = nodesOf(data);
  const totalRps = Object.values(snapshotNodes).reduce((a, n) => a + (n.rps || 0), 0);
  const names = useMemo(() => [...new Set([...nodes.map(nameOf), ...Object.keys(snapshotNodes)])].sort(), [nodes.map(nameOf).join(), Object.keys(snapshotNodes).join()]);
  const hist = live.history;
  const last = hist[hist.length - 1]?.t;
  const xs = useMemo(() => hist.map((h) => h.t), [hist.length, last]);
  const p99 = useMemo(() => [xs, ...names.map((n) => hist.map((h) => h.nodes?.[n]?.p99_seconds ?? null))], [xs, names.join()]);
  const errs = useMemo(() => [xs, ...names.map((n) => hist.map((h) => h.nodes?.[n]?.error_rate ?? null))], [xs, names.join()]);
  const keys = live.snapshot?.keys || {};
  const keyNames = useMemo(() => [...new Set(hist.flatMap((h) => Object.keys(h.keys || {})))].sort(), [xs]);
  const keyRps = useMemo(() => [xs, ...keyNames.map((k) => hist.map((h) => h.keys?.[k]?.rps ?? null))], [xs, keyNames.join()]);

  const unavailable = error && (error.status === 404 || error.status === 503);
  const disabled = live.health.proxy?.status === 'disabled';

  const addNode = async () => {
    const name = await confirm({ title: 'Add node', body: 'A name for the new upstream node.', action: 'Next', input: { label: 'Name', value: '' } });
    if (!name) return;
    const url = await confirm({ title: `Add node ${name}`, body: 'Its base URL (OpenAI-compatible server).', action: 'Next', input: { label: 'Base URL', type: 'url', value: 'http://127.0.0.1:8000' } });
    if (!url) return;
    const weight = await confirm({ title: `Add node ${name}`, body: html`Weight for <code>${url}</code>.`, action: 'Add node', input: { label: 'Weight', type: 'number', min: 0, step: 1, value: '1' } });
    if (weight === false) return;
    if (await act(`Add ${name}`, () => post(NODES, { name, base_url: url, weight: Number(weight) }))) reload();
  };
  const setWeight = async (n) => {
    const w = await confirm({ title: `Change weight of ${nameOf(n)}`, body: html`Current weight ${n.weight ?? '–'}. A weight change is applied gradually (weight shift).`, action: 'Apply weight', input: { label: 'New weight', type: 'number', min: 0, step: 1, value: String(n.weight ?? 1) } });
    if (w === false) return;
    if (await act(`Weight of ${nameOf(n)} → ${w}`, () => patch(`${NODES}/${encodeURIComponent(nameOf(n))}`, { weight: Number(w) }))) reload();
  };
  const toggle = async (n) => {
    const enable = !enabledOf(n);
    const ok = await confirm({ title: `${enable ? 'Enable' : 'Disable'} ${nameOf(n)}?`, body: enable ? 'The node takes traffic again.' : 'The node stops receiving new requests; in-flight requests finish.', action: enable ? 'Enable' : 'Disable', danger: !enable });
    if (ok && await act(`${enable ? 'Enable' : 'Disable'} ${nameOf(n)}`, () => patch(`${NODES}/${encodeURIComponent(nameOf(n))}`, { enabled: enable }))) reload();
  };
  const remove = async (n) => {
    const ok = await confirm({ title: `Remove ${nameOf(n)}?`, body: html`The node <code>${urlOf(n)}</code> is removed from the pool.`, action: 'Remove node', danger: true });
    if (ok && await act(`Remove ${nameOf(n)}`, () => del(`${NODES}/${encodeURIComponent(nameOf(n))}`))) reload();
  };

  return html`<div class="view">
    <${Card} title="Upstream nodes" actions=${!unavailable && !disabled ? html`<button class="btn btn-primary" onClick=${addNode} data-testid="add-node">Add node</button>` : null}>
      ${disabled || unavailable ? html`<div class="not-enabled"><${Pill} status="disabled">not enabled<//><p>The gateway is not enabled in this keel${live.health.proxy?.reason ? ` (${live.health.proxy.reason})` : ''}.</p></div>`
        : error ? html`<p class="error-line">Cannot load nodes: ${error.message}</p>`
        : data === undefined ? html`<${Empty}>Loading…<//>`
        : !nodes.length ? html`<${Empty}>No upstream nodes configured.<//>`
        : html`<div class="table-wrap"><table class="table" data-testid="nodes">
          <thead><tr><th scope="col">Node</th><th scope="col">Breaker</th><th scope="col">Shift stage</th><th scope="col" class="num">Weight</th><th scope="col" class="num">Effective</th><th scope="col" class="num">Traffic</th><th scope="col" class="num">Req/s</th><th scope="col" class="num">Errors</th><th scope="col" class="num">p99</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>${nodes.map((n) => {
            const f = snapshotNodes[nameOf(n)] || {};
            const breaker = breakerOf(n, f);
            return html`<tr key=${nameOf(n)} data-node=${nameOf(n)} class=${enabledOf(n) ? '' : 'row-disabled'}>
              <th scope="row"><div>${nameOf(n)}${enabledOf(n) ? null : html` <${Pill} status="disabled">disabled<//>`}</div><div class="muted mono small">${urlOf(n)}</div></th>
              <td><${Pill} status=${breaker === 'closed' ? 'healthy' : breaker === 'open' ? 'down' : 'degraded'}><span data-testid="breaker">${breaker}</span><//></td>
              <td>${stageOf(n) ?? html`<span class="muted">–</span>`}</td>
              <td class="num" data-testid="weight">${n.weight ?? '–'}</td>
              <td class="num">${effectiveOf(n) ?? '–'}</td>
              <td class="num"><div class="bar" title=${pct(totalRps ? (f.rps || 0) / totalRps : 0)}><span style=${`width:${totalRps ? Math.round(100 * (f.rps || 0) / totalRps) : 0}%`}></span></div>${pct(totalRps ? (f.rps || 0) / totalRps : 0)}</td>
              <td class="num">${num(f.rps)}</td><td class="num">${pct(f.error_rate)}</td><td class="num">${secs(f.p99_seconds)}</td>
              <td class="actions">
                <button class="btn btn-small" onClick=${() => setWeight(n)} aria-label=${`Change weight of ${nameOf(n)}`}>Weight</button>
                <button class="btn btn-small" onClick=${() => toggle(n)}>${enabledOf(n) ? 'Disable' : 'Enable'}</button>
                <button class="btn btn-small btn-danger" onClick=${() => remove(n)} aria-label=${`Remove ${nameOf(n)}`}>Remove</button>
              </td></tr>`;
          })}</tbody></table></div>`}
    <//>
    ${keyNames.length ? html`<${Card} title="Client keys">
      <div class="table-wrap"><table class="table" data-testid="client-keys">
        <thead><tr><th scope="col">Key</th><th scope="col" class="num">Req/s</th><th scope="col" class="num">Refused/s</th><th scope="col" class="num">Tokens/s</th></tr></thead>
        <tbody>${keyNames.map((k) => {
          const f = keys[k] || {};
          return html`<tr key=${k} data-key=${k}><th scope="row">${k}</th><td class="num" data-testid="key-rps">${num(f.rps)}</td><td class="num" data-testid="key-refused">${num(f.refused_per_second)}</td><td class="num">${num(f.tokens_per_second)}</td></tr>`;
        })}</tbody></table></div>
      <div class="charts"><${Chart} title="Requests per second by client key" series=${keyNames.map((k) => ({ label: k }))} data=${keyRps} format=${num} /></div>
    <//>` : null}
    ${names.length ? html`<div class="charts">
      <${Chart} title="p99 latency by node" series=${names.map((n) => ({ label: n }))} data=${p99} format=${secs} />
      <${Chart} title="Error rate by node" series=${names.map((n) => ({ label: n }))} data=${errs} format=${pct} />
    </div>` : null}
  </div>`;
}
