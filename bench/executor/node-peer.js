// The Node.js peer: what a team would otherwise build — the same libraries preloaded
// with require(), every call in vm.runInNewContext with a timeout, same HTTP shape as keel.
//   node node-peer.js PORT
const http = require('http');
const vm = require('vm');
const path = require('path');
const nm = path.join(__dirname, '../../src/executor/js/node_modules');
const t0 = process.hrtime.bigint();
const libs = {};
for (const n of ['crypto-js', 'axios', 'date-fns', 'lodash', 'qs', 'pinyin', 'uuid', 'dayjs', 'fast-xml-parser', 'xlsx', 'sm-crypto-v2']) libs[n] = require(require.resolve(n, { paths: [path.dirname(nm)] }));
const warmMs = Number(process.hrtime.bigint() - t0) / 1e6;
let ctxNs = 0n, ctxN = 0n;
const req = (n) => { if (!(n in libs)) throw new Error(`Cannot find module '${n}'`); return libs[n]; };
http.createServer((q, s) => {
  if (q.method === 'GET') { s.end(JSON.stringify({ warmMs, contextMs: ctxN ? Number(ctxNs / ctxN) / 1e6 : 0, rss: process.memoryUsage().rss })); return; }
  let body = '';
  q.on('data', (c) => (body += c));
  q.on('end', async () => {
    const start = Date.now();
    try {
      const { input, codebase64 } = JSON.parse(body);
      const code = Buffer.from(codebase64, 'base64').toString('utf8');
      const c0 = process.hrtime.bigint();
      const sandbox = { input, require: req, console: { log() {} } };
      const ctx = vm.createContext(sandbox);
      ctxNs += process.hrtime.bigint() - c0; ctxN++;
      let result = vm.runInContext(`(function(){${code}\n})()`, ctx, { timeout: 5000 });
      if (result && typeof result.then === 'function') result = await result;
      s.end(JSON.stringify({ success: true, result, timing: { executionTime: Date.now() - start } }));
    } catch (e) {
      s.statusCode = 400;
      s.end(JSON.stringify({ success: false, error: { type: e && e.name, message: String(e && e.message) } }));
    }
  });
}).listen(Number(process.argv[2]), '127.0.0.1');
