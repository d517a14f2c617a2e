// The live state of keel in the browser: the overview document for the first paint, then
// the SSE stream (/api/v1/events) keeps it current. Reconnects by itself: EventSource
// retries on a dropped connection (sending Last-Event-ID so nothing is missed); when the
// stream cannot continue (keel restarted, events lost, we fell behind) the overview is
// fetched again and a fresh stream opened. A stream silent for 5 s counts as lost.

import { get, session } from './api.js';
import { useEffect, useState } from './html.js';

const HISTORY = 900; // 15 minutes of 1 s samples
const MAX_EVENTS = 2000;

const state = {
  conn: 'connecting', // connecting | live | lost
  lostSince: null,
  instance: null,
  version: '',
  snapshot: null,
  health: {},
  sections: {},
  alerts: [],
  history: [],
  events: [],
  needLogin: false,
};
const listeners = new Set();
const eventListeners = new Set();
let es = null;
let watchdog = null;
let retryTimer = null;
let retryDelay = 1000;
let lastMessage = 0;

function publish() {
  for (const l of listeners) l({ ...state });
}

/** Re-renders the calling component on every change of the live state. */
export function useLive() {
  const [s, set] = useState({ ...state });
  useEffect(() => {
    listeners.add(set);
    return () => listeners.delete(set);
  }, []);
  return s;
}

/** Calls `fn(record)` for each new keel event while the component is mounted. */
export function useKeelEvents(fn, deps = []) {
  useEffect(() => {
    eventListeners.add(fn);
    return () => eventListeners.delete(fn);
  }, deps);
}

function applyLive(live) {
  if (live.snapshot) state.snapshot = live.snapshot;
  state.health = live.health || {};
  state.sections = live.sections || {};
  if (Array.isArray(state.sections.alerts)) state.alerts = state.sections.alerts;
}

async function loadOverview() {
  const o = await get('/api/v1/overview');
  applyLive(o);
  state.alerts = o.alerts || [];
  state.instance = o.instance;
  state.version = o.version;
  state.history = (o.history || []).slice(-HISTORY);
  state.events = (o.events || []).slice(-MAX_EVENTS);
  return o.newest_event_id || 0;
}

function setConn(conn) {
  if (state.conn === conn) return;
  state.conn = conn;
  state.lostSince = conn === 'lost' ? Date.now() : null;
  publish();
}

function closeStream() {
  if (es) { es.close(); es = null; }
}

function scheduleRestart() {
  closeStream();
  setConn('lost');
  clearTimeout(retryTimer);
  retryTimer = setTimeout(restart, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 10000);
}

/** Fetches the overview and opens a new stream; on failure tries again with backoff. */
export async function restart() {
  clearTimeout(retryTimer);
  closeStream();
  try {
    const s = await session();
    if (!s) {
      state.needLogin = true;
      setConn('connecting');
      publish();
      return;
    }
    state.needLogin = false;
    const after = await loadOverview();
    publish();
    open(after);
  } catch (e) {
    if (e.status === 401) {
      state.needLogin = true;
      publish();
      return;
    }
    scheduleRestart();
  }
}

function open(after) {
  es = new EventSource(`/api/v1/events?after=${after}`);
  lastMessage = Date.now();
  es.onopen = () => { retryDelay = 1000; lastMessage = Date.now(); setConn('live'); };
  es.onerror = () => {
    // CONNECTING: the browser retries by itself (with Last-Event-ID). CLOSED: it gave up
    // (keel answered an error, e.g. 401) — we take over.
    if (!es || es.readyState === EventSource.CLOSED) scheduleRestart();
    else setConn('lost');
  };
  es.addEventListener('hello', (m) => {
    lastMessage = Date.now();
    const hello = JSON.parse(m.data);
    if (state.instance && hello.instance !== state.instance) {
      // keel restarted: the overview we hold belongs to the old process.
      state.instance = hello.instance;
      loadOverview().then(publish, () => {});
    }
  });
  es.addEventListener('snapshot', (m) => {
    lastMessage = Date.now();
    const live = JSON.parse(m.data);
    applyLive(live);
    if (live.snapshot) {
      const h = state.history;
      if (!h.length || h[h.length - 1].t < live.snapshot.t) {
        h.push(live.snapshot);
        if (h.length > HISTORY) h.splice(0, h.length - HISTORY);
      }
    }
    if (state.conn !== 'live') state.conn = 'live';
    publish();
  });
  es.onmessage = (m) => {
    lastMessage = Date.now();
    const record = JSON.parse(m.data);
    state.events.push(record);
    if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
    for (const l of eventListeners) l(record);
    publish();
  };
  es.addEventListener('reset', () => { lastMessage = Date.now(); restart(); });
  es.addEventListener('lagged', () => restart());
}

/** Starts the connection and the silence watchdog (once). */
export function start() {
  if (!watchdog) {
    watchdog = setInterval(() => {
      if (es && Date.now() - lastMessage > 5000) scheduleRestart();
    }, 1000);
  }
  return restart();
}

export function stop() {
  clearTimeout(retryTimer);
  closeStream();
  state.needLogin = true;
  publish();
}
