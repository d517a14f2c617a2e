// Fixed-concurrency load against one /flow/codeblock endpoint; prints JSON figures.
//   node load.js URL TOKEN SECONDS CONCURRENCY BLOCK
const http = require('http');
const [url, token, seconds, conc, block] = process.argv.slice(2);
const BLOCKS = {
  trivial: 'return input.a + 1',
  // One library (keel: the snapshot context holding just that module).
  lodash: "const _ = require('lodash'); return _.sum(_.map(input.xs, x => x * 2));",
  dayjs: "const dayjs = require('dayjs'); return dayjs(1700000000000 + input.a).toISOString();",
  // The heavy one: SheetJS (keel: its own context, ~0.9 ms to deserialize; ~6 ms before its
  // codepage tables became lazy).
  xlsx: "const XLSX = require('xlsx'); return XLSX.utils.encode_cell({ r: input.a, c: 2 });",
  // Two of the reference's seven (keel: the context holding that pair).
  lodash_crypto: "const _ = require('lodash'); const C = require('crypto-js'); return { s: _.sum(_.map(input.xs, x => x * 2)), h: C.SHA256(JSON.stringify(input)).toString() };",
  // The reference's seven by computed name (keel: no literal names, so the context with
  // every module but xlsx; Node: require returns the host's already-loaded modules).
  all_libs: "for (const n of ['crypto-js', 'axios', 'date-fns', 'lodash', 'qs', 'pinyin', 'uuid']) require(n); return 1;",
  cpu: 'let h = 0; for (let i = 0; i < 3e6; i++) { h = (h * 31 + i) | 0; } return h;',
};
const body = JSON.stringify({ input: { a: 1, xs: [1, 2, 3, 4, 5] }, codebase64: Buffer.from(BLOCKS[block]).toString('base64') });
const u = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(conc) });
const lat = [];
let errors = 0;
const until = Date.now() + Number(seconds) * 1000;
function one() {
  return new Promise((resolve) => {
    const t = process.hrtime.bigint();
    const r = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', accesstoken: token, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let d = ''; res.on('data', (c) => (d += c)); res.on('end', () => {
        if (res.statusCode !== 200) errors++;
        lat.push(Number(process.hrtime.bigint() - t) / 1e6); resolve();
      });
    });
    r.on('error', () => { errors++; resolve(); });
    r.end(body);
  });
}
async function worker() { while (Date.now() < until) await one(); }
(async () => {
  for (let i = 0; i < 20; i++) await one(); // warm-up, not counted
  lat.length = 0; errors = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: Number(conc) }, worker));
  const secs = (Date.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  console.log(JSON.stringify({ n: lat.length, errors, rps: lat.length / secs, p50: q(0.5), p99: q(0.99) }));
  agent.destroy();
})();
