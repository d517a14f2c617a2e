// Small shared pieces: status pills, stat tiles, the confirmation dialog and notices.
import { html, useEffect, useRef, useState } from './html.js';

export function Pill({ status, children }) {
  return html`<span class=${`pill pill-${String(status || 'unknown').toLowerCase().replace(/[^a-z_]/g, '')}`}>${children ?? status ?? 'unknown'}</span>`;
}

export function Stat({ label, value, hint, tone }) {
  return html`<div class=${`stat ${tone ? `tone-${tone}` : ''}`}><div class="stat-label">${label}</div><div class="stat-value">${value}</div>${hint ? html`<div class="stat-hint">${hint}</div>` : null}</div>`;
}

export function Card({ title, actions, children, className = '' }) {
  return html`<section class=${`card ${className}`} aria-label=${title}>
    ${title || actions ? html`<header class="card-head"><h2>${title}</h2><div class="card-actions">${actions}</div></header>` : null}
    ${children}
  </section>`;
}

export function Empty({ children }) {
  return html`<p class="empty">${children}</p>`;
}

// ---- confirmation dialog (one host, a promise per question) ----
let askHost = null;

/** Asks for confirmation: resolves true when the operator confirms. */
export function confirm({ title, body, action = 'Confirm', danger = false, input = null }) {
  if (!askHost) return Promise.resolve(false);
  return new Promise((resolve) => askHost({ title, body, action, danger, input, resolve }));
}

export function ConfirmHost() {
  const [q, setQ] = useState(null);
  const [value, setValue] = useState('');
  const dlg = useRef(null);
  useEffect(() => { askHost = (question) => { setValue(question.input?.value ?? ''); setQ(question); }; return () => { askHost = null; }; }, []);
  useEffect(() => { if (q && dlg.current && !dlg.current.open) dlg.current.showModal(); }, [q]);
  const close = (ok) => {
    const question = q;
    dlg.current?.close();
    setQ(null);
    question?.resolve(ok ? (question.input ? value : true) : false);
  };
  return html`<dialog ref=${dlg} class="dialog" aria-labelledby="dlg-title" onCancel=${(e) => { e.preventDefault(); close(false); }}>
    ${q ? html`<form method="dialog" onSubmit=${(e) => { e.preventDefault(); close(true); }}>
      <h2 id="dlg-title">${q.title}</h2>
      <div class="dialog-body">${q.body}</div>
      ${q.input ? html`<label class="field">${q.input.label}
        <input name="confirm-input" type=${q.input.type || 'text'} value=${value} min=${q.input.min} max=${q.input.max} step=${q.input.step}
          required autofocus onInput=${(e) => setValue(e.currentTarget.value)} /></label>` : null}
      <div class="dialog-actions">
        <button type="button" class="btn" onClick=${() => close(false)}>Cancel</button>
        <button type="submit" class=${`btn ${q.danger ? 'btn-danger' : 'btn-primary'}`} autofocus=${!q.input}>${q.action}</button>
      </div>
    </form>` : null}
  </dialog>`;
}

// ---- notices (results of actions), announced to screen readers ----
let noticeHost = null;
let noticeId = 0;

export function notify(kind, text) {
  noticeHost?.({ id: ++noticeId, kind, text });
}

export function Notices() {
  const [list, setList] = useState([]);
  useEffect(() => {
    noticeHost = (n) => {
      setList((l) => [...l.slice(-4), n]);
      setTimeout(() => setList((l) => l.filter((x) => x.id !== n.id)), n.kind === 'error' ? 10000 : 5000);
    };
    return () => { noticeHost = null; };
  }, []);
  return html`<div class="notices" role="status" aria-live="polite">
    ${list.map((n) => html`<div key=${n.id} class=${`notice notice-${n.kind}`}>${n.text}
      <button class="notice-close" aria-label="Dismiss" onClick=${() => setList((l) => l.filter((x) => x.id !== n.id))}>×</button></div>`)}
  </div>`;
}

/** Polls `load` every `ms` while mounted (and on `deps` change); returns [data, error, reload]. */
export function usePoll(load, ms, deps = []) {
  const [data, setData] = useState(undefined);
  const [error, setError] = useState(null);
  const tick = useRef(0);
  const reload = async () => {
    const n = ++tick.current;
    try {
      const d = await load();
      if (n === tick.current) { setData(d); setError(null); }
    } catch (e) {
      if (n === tick.current) setError(e);
    }
  };
  useEffect(() => {
    reload();
    const t = setInterval(reload, ms);
    return () => clearInterval(t);
  }, deps);
  return [data, error, reload];
}
