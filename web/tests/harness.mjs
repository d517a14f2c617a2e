// Starts the real keel binary (DASHBOARD_KEEL_BIN, default target/debug/keel; not KEEL_*, which keel reads as config) on free ports with a
// generated config, plus fake OpenAI-compatible upstreams that can be switched to failing.
// Stops and restarts keel on the same data dir, as an operator's `systemctl restart` would.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const TOKEN = 'browser-test-token';
/** Access token of `POST /flow/codeblock` in the generated config. */
export const EXEC_TOKEN = 'browser-test-exec-token';
/** Client keys of the proxy: `ops` has no limits, `team-a` two requests a minute. */
export const OPS_KEY = 'sk-browser-ops-key';
export const TEAM_KEY = 'sk-browser-team-a-key';

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
    s.on('error', fail);
  });
}

/** A fake LLM upstream: answers chat completions with token usage, or 500 when failing. */
export async function fakeUpstream() {
  const state = { failing: false, requests: 0 };
  const server = createServer((req, res) => {
    state.requests++;
    req.resume();
    req.on('end', () => {
      if (state.failing) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"upstream failing on purpose"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'cmpl-1', object: 'chat.completion', model: 'fake',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
      }));
    });
  });
  const port = await freePort();
  await new Promise((ok) => server.listen(port, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${port}`, state, close: () => new Promise((ok) => server.close(ok)) };
}

export class Keel {
  constructor({ upstreams = [] } = {}) {
    this.bin = process.env.DASHBOARD_KEEL_BIN || join(ROOT, 'target/debug/keel');
    this.dir = mkdtempSync(join(tmpdir(), 'keel-browser-'));
    this.upstreams = upstreams;
    this.child = null;
  }

  async prepare() {
    this.controlPort = await freePort();
    this.proxyPort = await freePort();
    const base = `data_dir = ${JSON.stringify(join(this.dir, 'data'))}
shutdown_grace = "5s"
[control]
listen = "127.0.0.1:${this.controlPort}"
admin_token = "${TOKEN}"
[proxy]
listen = "127.0.0.1:${this.proxyPort}"
[log]
format = "json"
level = "info"
[alerts]
interval = "1s"
rate_window = "10s"
`;
    // The code executor, small, with a token the tests use for /flow/codeblock.
    const executor = `[executor]
pool_size = 2
access_tokens = ["${EXEC_TOKEN}"]
`;
    // Two named client keys: `ops` without limits (the gateway scenario's traffic), `team-a`
    // with a small request budget (the client-key table's refusals).
    const keys = `[[proxy.client_keys]]
name = "ops"
key = "${OPS_KEY}"
[[proxy.client_keys]]
name = "team-a"
key = "${TEAM_KEY}"
requests_per_minute = 2
`;
    const nodes = this.upstreams.map((u, i) => `[[proxy.nodes]]
name = "node-${String.fromCharCode(97 + i)}"
base_url = "${u.url}"
weight = 50
`).join('\n') + (this.upstreams.length ? `\n${keys}` : '');
    // A keel built without the gateway has no `proxy.nodes`; fall back to no nodes there.
    this.config = join(this.dir, 'keel.toml');
    // ...and one built without the executor has no `[executor]`: drop it likewise.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEEL_')));
    const valid = (text) => {
      writeFileSync(this.config, text);
      return spawnSync(this.bin, ['validate', '--config', this.config], { encoding: 'utf8', env }).status === 0;
    };
    this.nodesConfigured = false;
    if (valid(`${base}\n${executor}\n${nodes}`)) {
      this.nodesConfigured = this.upstreams.length > 0;
    } else if (!valid(`${base}\n${executor}`)) {
      writeFileSync(this.config, base);
    }
  }

  get url() { return `http://127.0.0.1:${this.controlPort}`; }
  get proxyUrl() { return `http://127.0.0.1:${this.proxyPort}`; }

  async start() {
    if (!this.config) await this.prepare();
    const log = openSync(join(this.dir, 'keel.log'), 'a');
    // KEEL_* variables are config overrides: keep the test's own environment out of keel.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEEL_')));
    this.child = spawn(this.bin, ['run', '--config', this.config], { stdio: ['ignore', log, log], env });
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      try {
        const r = await fetch(`${this.url}/health/ready`);
        if (r.status === 200) return;
      } catch { /* not listening yet */ }
      if (this.child.exitCode !== null) throw new Error(`keel exited with ${this.child.exitCode}; see ${this.dir}/keel.log`);
      await new Promise((ok) => setTimeout(ok, 100));
    }
    throw new Error('keel not ready in 30 s');
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((ok) => this.child.once('exit', ok));
    this.child.kill('SIGTERM');
    this.cleanExit = (await exited) === 0;
  }

  /** Stops keel for good: after a clean exit its directory (config, store, log) goes too;
   * after anything else it stays, for its log. */
  async close() {
    await this.stop();
    if (this.cleanExit) rmSync(this.dir, { recursive: true, force: true });
  }

  /** An admin API call with the bearer token (what scripts do). */
  async admin(method, path, body) {
    const r = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  }

  /** Runs a code block through `/flow/codeblock`; `timeout` in ms lowers the default. */
  async codeblock(code, timeout) {
    const r = await fetch(`${this.url}/flow/codeblock`, {
      method: 'POST',
      headers: { accesstoken: EXEC_TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify({ input: { n: 2 }, codebase64: Buffer.from(code).toString('base64'), ...(timeout ? { timeout } : {}) }),
    });
    return r.json();
  }

  async components() {
    const d = await (await fetch(`${this.url}/health/detailed`)).json();
    return Object.fromEntries(Object.entries(d.components).map(([k, v]) => [k, v.status]));
  }
}
