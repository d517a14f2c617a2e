// GPUs & locks: a card per GPU (figures, its lock's holder, TTL counting down, fencing
// token, unlocked-use / idle-lock warnings), heartbeats with progress and orphans, lock
// history, and force-release behind a confirmation. Without GPU figures (no NVML driver,
// sampler off) it says why, in the GPU component's own words.
import { html, useEffect, useState } from '../html.js';
import { get, post } from '../api.js';
import { Card, Empty, Pill, confirm, notify, usePoll } from '../ui.js';
import { useKeelEvents } from '../live.js';
import { ago, bytes, pct, secs } from '../fmt.js';

const MON = '/api/v1/monitoring';

/** Lock key of a GPU, as the ledger names them. */
const lockOf = (gpu) => `gpu_lock:${gpu}`;

function asList(data, key) {
  if (Array.isArray(data)) return data;
  return data?.[key] ?? [];
}

async function loadLocks(keys) {
  let list = keys;
  try {
    const l = asList(await get('/api/v1/locks'), 'locks');
    if (l.length) list = [...new Set([...l.map((x) => x.lock_key ?? x.key ?? x.name), ...keys])];
  } catch { /* the ledger's list endpoint is optional: the reference status works per key */ }
  const detail = await Promise.all(list.filter(Boolean).map((k) => get(`${MON}/gpu-lock/status?lock_key=${encodeURIComponent(k)}`).then((d) => ({ ...d, fetched: Date.now() }), () => null)));
  return detail.filter(Boolean);
}

async function loadHeartbeats() {
  const all = await get(`${MON}/heartbeat/all`);
  const active = Object.entries(all.active_tasks || {}).slice(0, 50);
  const detail = await Promise.all(active.map(([id]) => get(`${MON}/heartbeat/task/${encodeURIComponent(id)}`).catch(() => null)));
  return { ...all, detail: Object.fromEntries(active.map(([id], i) => [id, detail[i]])) };
}

/** Why there are no GPU cards: the `gpu` component's reason, as the Overview lists it. */
function NoGpus({ health, reason }) {
  const why = health?.reason ?? reason;
  return html`<${Card} title="GPUs"><div class="not-enabled" data-testid="no-gpus">
    <${Pill} status=${health?.status ?? 'unknown'}>no GPU figures<//>
    <p>${why ? html`<span data-testid="no-gpus-reason">${why}</span>.` : 'keel has no GPU figures yet.'} GPU locks and heartbeats work without them.</p>
  </div><//>`;
}

function Countdown({ seconds, fetched }) {
  const [, tick] = useState(0);
  useEffect(() => { const t = setInterval(() => tick((n) => n + 1), 1000); return () => clearInterval(t); }, []);
  if (seconds == null) return html`<span class="muted">–</span>`;
  const left = Math.max(0, seconds - (Date.now() - fetched) / 1000);
  return html`<span class=${left < 30 ? 'tone-bad' : ''} data-testid="ttl">${secs(left)}</span>`;
}

export function Gpus({ live }) {
  const snap = live.snapshot || {};
  const ledgerOff = live.health.ledger?.status === 'disabled';
  const lockKeys = Object.keys(snap.locks || {});
  const [gpuData, gpuErr] = usePoll(() => get('/api/v1/gpus'), 3000);
  const [locks, lockErr, reloadLocks] = usePoll(() => (ledgerOff ? Promise.resolve([]) : loadLocks(lockKeys)), 2000, [ledgerOff, lockKeys.join()]);
  const [beats, beatErr, reloadBeats] = usePoll(() => (ledgerOff ? Promise.resolve(null) : loadHeartbeats()), 3000, [ledgerOff]);
  useKeelEvents((e) => { if (e.component === 'ledger') { reloadLocks(); reloadBeats(); } });

  const gpus = gpuErr ? [] : asList(gpuData, 'gpus');
  const gpuIds = [...new Set([...gpus.map((g) => String(g.index ?? g.id ?? g.gpu)), ...Object.keys(snap.gpus || {})])];
  const lockByKey = Object.fromEntries((locks || []).map((l) => [l.lock_key, l]));

  const release = async (l) => {
    const ok = await confirm({
      title: `Force-release ${l.lock_key}?`,
      body: html`<p>Held by <code>${l.lock_holder ?? 'nobody'}</code>${l.lock_age != null ? ` for ${secs(l.lock_age)}` : ''}.</p><p>The holder's fencing token becomes stale: a worker still running will be refused on its next write. Use this for a stuck or dead holder.</p>`,
      action: 'Force-release', danger: true,
    });
    if (!ok) return;
    try {
      const r = await post(`${MON}/lock/release`, { lock_key: l.lock_key, task_name: 'dashboard' });
      notify(r?.success === false ? 'error' : 'ok', r?.message ?? `released ${l.lock_key}`);
    } catch (e) {
      notify('error', `Force-release failed: ${e.message}`);
    }
    reloadLocks();
  };

  // Said only once the GPU list has answered (or the component is off): no flash of "no GPU"
  // on a box that has some.
  const gpusKnown = gpuData !== undefined || gpuErr || live.health.gpu?.status === 'disabled';
  const noGpus = gpusKnown ? html`<${NoGpus} health=${live.health.gpu} reason=${gpuData?.reason} />` : null;
  if (ledgerOff && !gpuIds.length) {
    return html`<div class="view">${noGpus}<${Card} title="GPUs & locks"><div class="not-enabled"><${Pill} status="disabled">not enabled<//><p>The GPU ledger is not enabled in this keel${live.health.ledger?.reason ? ` (${live.health.ledger.reason})` : ''}.</p></div><//></div>`;
  }

  const lockCard = (l) => {
    const gpu = l.lock_key.startsWith('gpu_lock:') ? l.lock_key.slice(9) : null;
    const util = gpu != null ? snap.gpus?.[gpu]?.utilization : null;
    const token = snap.locks?.[l.lock_key]?.fencing_token ?? l.fencing_token;
    const warnings = [];
    if (!l.is_locked && util > 0.1) warnings.push(`GPU busy (${pct(util)}) without holding its lock: unlocked use`);
    if (l.is_locked && util != null && util < 0.05) warnings.push(`lock held while the GPU is idle (${pct(util)})`);
    for (const issue of l.health?.issues || []) warnings.push(issue);
    return html`<div class="lock" data-lock=${l.lock_key}>
      <div class="lock-head"><code>${l.lock_key}</code> <${Pill} status=${l.is_locked ? 'degraded' : 'healthy'}><span data-testid="lock-state">${l.is_locked ? 'held' : 'free'}</span><//></div>
      <dl class="kv">
        <dt>Holder</dt><dd data-testid="holder">${l.lock_holder ?? '–'}</dd>
        <dt>TTL</dt><dd>${l.is_locked ? html`<${Countdown} seconds=${l.ttl_seconds} fetched=${l.fetched} />` : '–'}</dd>
        <dt>Held for</dt><dd>${l.lock_age != null ? secs(l.lock_age) : '–'}</dd>
        <dt>Fencing token</dt><dd class="mono">${token ?? '–'}</dd>
      </dl>
      ${warnings.map((w) => html`<p class="warn-line">⚠ ${w}</p>`)}
      ${l.is_locked ? html`<button class="btn btn-danger btn-small" onClick=${() => release(l)} data-testid="force-release">Force-release</button>` : null}
      ${(l.recent_history || []).length ? html`<details><summary>History</summary><ol class="history">${l.recent_history.slice(-10).reverse().map((h) => html`<li><span class="mono">${new Date(h.timestamp * 1000).toLocaleTimeString()}</span> ${h.action} <code>${h.task_name}</code> ${h.success === false ? html`<${Pill} status="down">failed<//>` : null}</li>`)}</ol></details>` : null}
    </div>`;
  };

  const gpuCards = gpuIds.map((id) => {
    const g = gpus.find((x) => String(x.index ?? x.id ?? x.gpu) === id) || {};
    const f = snap.gpus?.[id] || {};
    const util = f.utilization ?? g.utilization ?? g.utilization_ratio;
    const used = f.memory_used_bytes ?? g.memory_used_bytes;
    const total = g.memory_total_bytes ?? g.memory_total;
    const l = lockByKey[lockOf(id)];
    return html`<${Card} key=${id} title=${`GPU ${id}${g.name ? ` · ${g.name}` : ''}`} className="gpu">
      <div class="gpu-figures">
        <div><div class="stat-label">Utilization</div><div class="meter"><span style=${`width:${Math.round((util || 0) * 100)}%`}></span></div>${pct(util)}</div>
        <div><div class="stat-label">Memory</div><div class="meter"><span style=${`width:${total ? Math.round(100 * (used || 0) / total) : 0}%`}></span></div>${bytes(used)}${total ? ` / ${bytes(total)}` : ''}</div>
        <div><div class="stat-label">Temperature</div>${g.temperature_celsius ?? g.temperature ?? '–'}${(g.temperature_celsius ?? g.temperature) != null ? ' °C' : ''}</div>
        <div><div class="stat-label">Power</div>${g.power_watts ?? g.power ?? '–'}${(g.power_watts ?? g.power) != null ? ' W' : ''}</div>
      </div>
      ${l ? lockCard(l) : null}
    <//>`;
  });
  const gpuLockKeys = new Set(gpuIds.map(lockOf));
  const otherLocks = (locks || []).filter((l) => !gpuLockKeys.has(l.lock_key));

  const orphaned = beats?.orphaned_tasks || [];
  const active = Object.entries(beats?.active_tasks || {});
  const ages = snap.heartbeats || {};
  return html`<div class="view">
    ${gpuIds.length ? html`<div class="gpu-grid">${gpuCards}</div>` : noGpus}
    ${lockErr ? html`<p class="error-line">Cannot load locks: ${lockErr.message}</p>` : null}
    ${otherLocks.length ? html`<${Card} title="Locks"><div class="gpu-grid" data-testid="locks">${otherLocks.map(lockCard)}</div><//>`
      : !gpuIds.length && locks !== undefined ? html`<${Card} title="Locks">${locks?.length ? null : html`<${Empty}>No locks known yet.<//>`}<//>` : null}
    <${Card} title=${`Heartbeats (${active.length} active, ${orphaned.length} orphaned)`}>
      ${beatErr ? html`<p class="error-line">Cannot load heartbeats: ${beatErr.message}</p>`
        : !active.length && !orphaned.length ? html`<${Empty}>No tasks are sending heartbeats.<//>`
        : html`<table class="table" data-testid="heartbeats"><thead><tr><th scope="col">Task</th><th scope="col">Name</th><th scope="col">Progress</th><th scope="col">Last beat</th><th scope="col">Status</th></tr></thead><tbody>
          ${orphaned.map((t) => html`<tr key=${t.task_id} class="row-orphan"><th scope="row" class="mono">${t.task_id}</th><td>–</td><td>–</td><td>${ago(t.last_update)}</td><td><${Pill} status="down">orphaned<//></td></tr>`)}
          ${active.map(([id, t]) => {
            const p = beats.detail?.[id]?.heartbeat_data?.progress;
            const age = ages[id];
            return html`<tr key=${id}><th scope="row" class="mono">${id}</th><td>${t.task_name}</td>
              <td>${p != null ? html`<div class="meter" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${Math.round(p * 100)}><span style=${`width:${Math.round(p * 100)}%`}></span></div>${pct(p)}` : '–'}</td>
              <td>${age != null ? `${secs(age)} ago` : ago(t.last_update)}</td><td><${Pill} status=${age > 120 ? 'degraded' : 'healthy'}>${t.status}<//></td></tr>`;
          })}
        </tbody></table>`}
    <//>
  </div>`;
}
