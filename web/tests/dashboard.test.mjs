// Browser tests of the dashboard against a real keel: Debian's chromium (CHROMIUM, default
// /usr/bin/chromium) driven by playwright-core. Screenshots of each view go to
// tests/artifacts/ (ARTIFACTS overrides). Scenarios that need the gateway or the ledger
// skip themselves while keel reports that component `disabled`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Keel, OPS_KEY, ROOT, TEAM_KEY, TOKEN, fakeUpstream } from './harness.mjs';

const ARTIFACTS = process.env.ARTIFACTS || join(ROOT, 'tests/artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

let keel; let browser; let page; let up; let components;

/** One chat completion through keel's proxy with a client key. */
const chat = (key) => fetch(`${keel.proxyUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: '{"model":"fake","messages":[{"role":"user","content":"hi"}]}' });
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const view = async (id) => { await page.goto(`${keel.url}/#/${id}`); await page.waitForSelector(`main[data-view="${id}"] .view`); };
const until = async (fn, ms = 20000, what = 'condition') => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => false);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 200));
  }
};

before(async () => {
  up = [await fakeUpstream(), await fakeUpstream()];
  keel = new Keel({ upstreams: up });
  await keel.start();
  components = await keel.components();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    headless: true,
  });
  page = await browser.newPage({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' });
  page.on('pageerror', (e) => console.error('page error:', e));
});

after(async () => {
  await browser?.close();
  await keel?.close();
  for (const u of up || []) await u.close();
});

test('login: a wrong token is refused, the right one opens the overview', async () => {
  await page.goto(keel.url);
  await page.fill('[data-testid=token]', 'wrong');
  await page.click('[data-testid=login]');
  await page.waitForSelector('text=That is not the admin token.');
  await page.fill('[data-testid=token]', TOKEN);
  const started = Date.now();
  await page.click('[data-testid=login]');
  await page.waitForSelector('[data-testid=components] li');
  assert.ok(Date.now() - started < 5000, 'overview paints quickly');
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'keel_session');
  assert.ok(session?.httpOnly, 'session cookie is HttpOnly');
  assert.equal(session.sameSite, 'Strict');
  assert.ok(!page.url().includes(TOKEN), 'token never in the URL');
  await page.waitForSelector('.conn-live');
  await shot('overview');
});

test('a cookie-authenticated write without the CSRF header is refused', async () => {
  const status = await page.evaluate(async () => (await fetch('/api/v1/session', { method: 'GET' })).status);
  assert.equal(status, 200);
  // Any admin POST with only the cookie: 403 csrf (the route need not exist behind auth).
  const r = await page.evaluate(async () => {
    const resp = await fetch('/admin/api/nodes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    return { status: resp.status, body: await resp.text() };
  });
  if (components.proxy !== 'disabled') {
    assert.equal(r.status, 403, r.body);
    assert.match(r.body, /csrf/);
  }
});

test('every view renders; executor says "not enabled" when it is', async () => {
  for (const id of ['gateway', 'gpus', 'executor', 'events']) {
    await view(id);
    await shot(id);
  }
  await view('executor');
  if (components.executor === 'disabled') await page.waitForSelector('[data-testid=executor-disabled]');
  await view('events');
  await page.fill('[data-testid=event-filter]', 'no-such-event-kind-xyz');
  await page.waitForSelector('text=No events match the filter.');
});

test('executor view shows the pool and real execution figures', async (t) => {
  if (components.executor === 'disabled') return t.skip('executor disabled in this keel');
  for (let i = 0; i < 3; i++) {
    const r = await keel.codeblock("const _ = require('lodash'); return _.sum([input.n, 1])");
    assert.equal(r.result, 3, JSON.stringify(r));
  }
  const slow = await keel.codeblock('while (true) {}', 200);
  assert.equal(slow.error?.type, 'TimeoutError', JSON.stringify(slow));
  await view('executor');
  await page.waitForSelector('[data-testid=executor-stats]');
  // Figures arrive with the next once-a-second snapshot.
  const figures = await until(async () => {
    const f = await page.evaluate(() => ({
      total: Number(document.querySelector('[data-testid=executor-total]')?.textContent),
      success: Number(document.querySelector('[data-outcome=success] strong')?.textContent),
      timeout: Number(document.querySelector('[data-outcome=timeout] strong')?.textContent),
      idle: Number(document.querySelector('[data-testid=executor-isolates] [data-state=idle]')?.textContent),
    }));
    return f.success >= 3 && f.timeout >= 1 && f.idle >= 1 ? f : false;
  }, 20000, 'executor figures');
  assert.ok(figures.total >= 4, JSON.stringify(figures));
  const charts = await page.locator('main[data-view="executor"] figure.chart').count();
  assert.equal(charts, 4);
  // p50/p99 are per second: after the executions the tile keeps the last busy second's
  // figures instead of a dash.
  const latency = await until(async () => {
    const text = await page.textContent('[data-testid=executor-latency]');
    return /^[\d.]+ m?s \/ [\d.]+ m?s$/.test(text) ? text : false;
  }, 20000, 'numeric p50 / p99');
  await new Promise((ok) => setTimeout(ok, 2500));
  assert.equal(await page.textContent('[data-testid=executor-latency]'), latency, 'still shown seconds later');
  // The heap limit covers every isolate of the pool (heap_limit_mb each), not only those
  // that have run a block.
  const limits = await (await fetch(`${keel.url}/flow/limits`)).json();
  const pool = (await (await fetch(`${keel.url}/flow/status`)).json()).executor.poolSize;
  assert.ok(pool >= 2 && limits.heapLimitMb > 0, JSON.stringify({ pool, limits }));
  await until(async () => (await page.textContent('[data-testid=executor-heap-limit]'))
    .includes(`limit ${pool * limits.heapLimitMb} MiB (${pool} × ${limits.heapLimitMb} MiB)`), 10000, 'pool heap limit');
  // Every chart's y-axis labels differ (counts once read "1, 1, 0").
  const ticks = await until(async () => {
    const all = await page.$$eval('main[data-view="executor"] .chart-box', (els) => els.map((e) => e.dataset.yTicks));
    return all.length === 4 && all.every((t) => t) ? all : false;
  }, 10000, 'chart axes drawn');
  for (const t of ticks) {
    const labels = t.split(' | ');
    assert.ok(labels.length >= 2, t);
    assert.equal(new Set(labels).size, labels.length, `repeated tick labels: ${t}`);
  }
  await shot('executor-figures');
});

test('keyboard: number keys switch views, dialogs close with Escape', async () => {
  await view('overview');
  await page.keyboard.press('5');
  await page.waitForSelector('main[data-view="events"]');
  await page.keyboard.press('1');
  await page.waitForSelector('main[data-view="overview"]');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.textContent || '');
  assert.ok(focused.length > 0, 'something is focusable');
});

test('light theme renders', async () => {
  await page.emulateMedia({ colorScheme: 'light' });
  await view('overview');
  await shot('overview-light');
  await page.emulateMedia({ colorScheme: 'dark' });
});

test('gateway: nodes, breaker opens in the UI, weight change through the UI', async (t) => {
  if (components.proxy === 'disabled' || !keel.nodesConfigured) return t.skip('the gateway is not built into this keel yet');
  await view('gateway');
  await page.waitForSelector('[data-node="node-a"]');
  await page.waitForSelector('[data-node="node-b"]');
  // Traffic through the proxy while node-a fails: its breaker opens.
  up[0].state.failing = true;
  const send = () => chat(OPS_KEY).then((r) => r.text(), () => '');
  await until(async () => {
    await Promise.all(Array.from({ length: 10 }, send));
    return (await page.textContent('[data-node="node-a"] [data-testid=breaker]')) === 'open';
  }, 30000, 'node-a breaker open in the UI');
  await shot('gateway-breaker-open');
  // The breaker alert fires and is shown; healing the upstream resolves it.
  await view('overview');
  await page.waitForSelector('[data-alert="breaker_open"]', { timeout: 20000 });
  await shot('overview-alert');
  up[0].state.failing = false;
  await until(async () => {
    await Promise.all(Array.from({ length: 5 }, send));
    return page.isVisible('[data-testid=no-alerts]');
  }, 120000, 'breaker alert resolved');

  await view('gateway');
  await page.click('[data-node="node-b"] button:has-text("Weight")');
  await page.fill('dialog input[name=confirm-input]', '7');
  await page.click('dialog button[type=submit]');
  await page.waitForSelector('.notice-ok');
  const nodes = await keel.admin('GET', '/admin/api/nodes');
  const list = Array.isArray(nodes.body) ? nodes.body : nodes.body.nodes;
  assert.equal(list.find((n) => n.name === 'node-b').weight, 7);
});

test('gateway: client keys show their requests and refusals per second', async (t) => {
  if (components.proxy === 'disabled' || !keel.nodesConfigured) return t.skip('the gateway is not built into this keel yet');
  await view('gateway');
  // team-a may send two requests a minute: the third and fourth are refused (429).
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await chat(TEAM_KEY)).status);
  assert.deepEqual(statuses.slice(2), [429, 429], String(statuses));
  await page.waitForSelector('[data-testid=client-keys] [data-key="team-a"]', { timeout: 20000 });
  // The row shows the refusals while the second they fell in is the newest reading.
  assert.ok(await page.isVisible('[data-testid=client-keys] [data-key="team-a"] th'));
  const history = await until(async () => {
    const o = await keel.admin('GET', '/api/v1/overview');
    const h = o.body?.history || [];
    return h.some((f) => f.keys?.['team-a']?.refused_per_second > 0) ? h : false;
  }, 20000, 'team-a refusals in the feed');
  assert.ok(history.some((f) => f.keys?.['team-a']?.rps > 0));
  await shot('gateway-client-keys');
});

test('GPUs & locks: a held lock shows its holder and is force-released from the UI', async (t) => {
  if (components.ledger === 'disabled') return t.skip('the ledger is not built into this keel yet');
  const acq = await keel.admin('POST', '/api/v1/locks/gpu_lock:0/acquire', { holder: 'browser-test', ttl_seconds: 300 });
  assert.equal(acq.status, 200, JSON.stringify(acq.body));
  await view('gpus');
  await page.waitForSelector('[data-lock="gpu_lock:0"] [data-testid=holder]:has-text("browser-test")');
  await shot('gpus-held');
  await page.click('[data-lock="gpu_lock:0"] [data-testid=force-release]');
  await page.click('dialog button[type=submit]');
  await page.waitForSelector('[data-lock="gpu_lock:0"] [data-testid=lock-state]:has-text("free")');
  const status = await keel.admin('GET', '/api/v1/monitoring/gpu-lock/status?lock_key=gpu_lock:0');
  assert.equal(status.body.is_locked, false);
});

test('GPUs view says why there are no GPU figures, as the Overview does', async (t) => {
  const health = await (await fetch(`${keel.url}/health/detailed`)).json();
  const gpu = health.components.gpu;
  if (gpu?.status !== 'disabled') return t.skip('this machine has GPU figures (NVML present)');
  await view('gpus');
  const shown = await page.textContent('[data-testid=no-gpus-reason]');
  assert.equal(shown, gpu.reason);
  await view('overview');
  await page.waitForSelector(`[data-testid=components] li:has-text(${JSON.stringify(gpu.reason)})`);
  await view('gpus');
  await page.waitForSelector('[data-testid=no-gpus-reason]');
  await shot('gpus-no-nvml');
});

test('a lost connection shows a banner and the page reconnects after keel restarts', async () => {
  await view('overview');
  await page.waitForSelector('.conn-live');
  await keel.stop();
  await page.waitForSelector('[data-testid=conn-lost]', { timeout: 15000 });
  await shot('connection-lost');
  await keel.start();
  await page.waitForSelector('[data-testid=conn-lost]', { state: 'detached', timeout: 30000 });
  await page.waitForSelector('.conn-live');
  assert.equal(await page.isVisible('[data-testid=token]'), false, 'still logged in after the restart');
});

test('logout ends the session', async () => {
  await page.click('text=Sign out');
  await page.waitForSelector('[data-testid=token]');
  const status = await page.evaluate(async () => (await fetch('/api/v1/overview')).status);
  assert.equal(status, 401);
});
