// The keel dashboard: login, navigation, connection banner, theme; each view in views/.
import { html, render, useEffect, useState } from './html.js';
import { login, logout } from './api.js';
import { restart, start, stop, useLive } from './live.js';
import { ConfirmHost, Notices, Pill } from './ui.js';
import { secs } from './fmt.js';
import { Overview } from './views/overview.js';
import { Gateway } from './views/gateway.js';
import { Gpus } from './views/gpus.js';
import { Executor } from './views/executor.js';
import { Events } from './views/events.js';

const VIEWS = [
  { id: 'overview', label: 'Overview', view: Overview },
  { id: 'gateway', label: 'Gateway', view: Gateway },
  { id: 'gpus', label: 'GPUs & locks', view: Gpus },
  { id: 'executor', label: 'Executor', view: Executor },
  { id: 'events', label: 'Events', view: Events },
];

function currentRoute() {
  const id = location.hash.replace(/^#\/?/, '');
  return VIEWS.find((v) => v.id === id) ? id : 'overview';
}

// ---- theme: the system's by default, a choice remembered per browser ----
function applyTheme(t) {
  if (t === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}
const savedTheme = localStorage.getItem('keel-theme') || 'system';
applyTheme(savedTheme);

function Login({ onDone }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(token);
      setToken('');
      onDone();
    } catch (err) {
      setError(err.status === 401 ? 'That is not the admin token.' : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login">
    <form class="card login-card" onSubmit=${submit} aria-labelledby="login-title">
      <h1 id="login-title"><span class="brand-mark" aria-hidden="true">⚓</span> keel</h1>
      <p class="muted">Sign in with the admin token (<code>control.admin_token</code>). It is exchanged for a browser session; it is never stored in the page.</p>
      <label class="field">Admin token
        <input type="password" name="token" autocomplete="current-password" required autofocus value=${token} onInput=${(e) => setToken(e.currentTarget.value)} data-testid="token" />
      </label>
      ${error ? html`<p class="error-line" role="alert">${error}</p>` : null}
      <button class="btn btn-primary" type="submit" disabled=${busy} data-testid="login">${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </main>`;
}

function Banner({ live }) {
  const [, tick] = useState(0);
  useEffect(() => { const t = setInterval(() => tick((n) => n + 1), 1000); return () => clearInterval(t); }, []);
  if (live.conn !== 'lost') return null;
  const gone = live.lostSince ? (Date.now() - live.lostSince) / 1000 : 0;
  return html`<div class="banner" role="alert" data-testid="conn-lost">
    Connection to keel lost${gone >= 1 ? ` ${secs(Math.round(gone))} ago` : ''} — reconnecting by itself. Figures shown are from before the loss.
    <button class="btn btn-small" onClick=${() => restart()}>Retry now</button>
  </div>`;
}

function App() {
  const live = useLive();
  const [route, setRoute] = useState(currentRoute());
  const [theme, setTheme] = useState(savedTheme);
  useEffect(() => { start(); }, []);
  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    addEventListener('hashchange', onHash);
    // Keys 1–5 switch views (not while typing, not with modifiers).
    const onKey = (e) => {
      if (e.altKey || e.ctrlKey || e.metaKey || /INPUT|SELECT|TEXTAREA/.test(document.activeElement?.tagName || '')) return;
      if (document.querySelector('dialog[open]')) return;
      const i = Number(e.key) - 1;
      if (i >= 0 && i < VIEWS.length) location.hash = `#/${VIEWS[i].id}`;
    };
    addEventListener('keydown', onKey);
    return () => { removeEventListener('hashchange', onHash); removeEventListener('keydown', onKey); };
  }, []);
  useEffect(() => { document.title = `keel · ${VIEWS.find((v) => v.id === route).label}${live.alerts.length ? ` (${live.alerts.length} alerts)` : ''}`; }, [route, live.alerts.length]);

  if (live.needLogin) return html`<${Login} onDone=${() => restart()} />`;

  const cycleTheme = () => {
    const next = { system: 'dark', dark: 'light', light: 'system' }[theme];
    setTheme(next);
    localStorage.setItem('keel-theme', next);
    applyTheme(next);
  };
  const signOut = async () => { stop(); await logout(); };
  const View = VIEWS.find((v) => v.id === route).view;
  const overall = Object.values(live.health).reduce((w, c) => (c.status === 'down' ? 'down' : c.status === 'degraded' && w !== 'down' ? 'degraded' : w), 'healthy');
  const critical = live.alerts.some((a) => a.severity === 'critical');

  return html`<div class="app">
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <div class="brand"><span class="brand-mark" aria-hidden="true">⚓</span> keel <span class="muted small">${live.version}</span></div>
      <nav aria-label="Views"><ul>
        ${VIEWS.map((v, i) => html`<li><a href=${`#/${v.id}`} aria-current=${route === v.id ? 'page' : undefined} title=${`${v.label} (${i + 1})`}>${v.label}
          ${v.id === 'overview' && live.alerts.length ? html` <span class=${`count ${critical ? 'count-critical' : ''}`} aria-label=${`${live.alerts.length} alerts firing`}>${live.alerts.length}</span>` : null}</a></li>`)}
      </ul></nav>
      <div class="top-right">
        <span class=${`conn conn-${live.conn}`} title="Event stream">${live.conn === 'live' ? 'live' : live.conn === 'lost' ? 'offline' : 'connecting'}</span>
        <${Pill} status=${overall} />
        <button class="btn btn-small" onClick=${cycleTheme} aria-label=${`Theme: ${theme}. Change theme`}>${{ system: '◐ Auto', dark: '☾ Dark', light: '☀ Light' }[theme]}</button>
        <button class="btn btn-small" onClick=${signOut}>Sign out</button>
      </div>
    </header>
    <${Banner} live=${live} />
    <main id="main" tabindex="-1" data-view=${route}>
      ${live.snapshot ? html`<${View} live=${live} />` : html`<p class="boot">Connecting to keel…</p>`}
    </main>
    <${ConfirmHost} />
    <${Notices} />
  </div>`;
}

const root = document.getElementById('root');
root.textContent = '';
render(html`<${App} />`, root);
