// axios (the bundled browser build on keel's fetch adapter; Node's http adapter under Node)
// against the fake server of tests/e2e/web_compat.rs: bytes for responseType 'arraybuffer'
// (a Buffer under Node, an ArrayBuffer in keel until Buffer exists: compared as bytes),
// decompression, body encodings, errors, timeouts and cancellation.
const base = input.base;
const sum = (u8) => u8.reduce((a, b) => (a * 31 + b) >>> 0, 7);
const expectBytes = (n) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255);

async function main() {
  const out = {};
  const axios = require('axios');
  const ab = await axios.get(`${base}/bytes/1024`, { responseType: 'arraybuffer' });
  const abBytes = new Uint8Array(ab.data);
  out.axios_arraybuffer = [ab.status, abBytes.length, sum(abBytes) === sum(expectBytes(1024))];
  const gz = await axios.get(`${base}/compressed/gzip`);
  out.axios_gzip = gz.data;
  out.axios_text = (await axios.get(`${base}/text`, { responseType: 'text' })).data;
  const posted = await axios.post(`${base}/echo`, new URLSearchParams({ q: 'a b' }));
  out.axios_urlencoded = [posted.data.type, posted.data.hex];
  const json = await axios.post(`${base}/echo`, { k: [1, 2] });
  out.axios_json = [json.data.type, json.data.hex];
  const bin = await axios.put(`${base}/echo`, new Uint8Array([5, 6, 7]), { headers: { 'Content-Type': 'application/octet-stream' } });
  out.axios_binary = [bin.data.method, bin.data.type, bin.data.hex];
  out.axios_headers = (await axios.get(`${base}/headers`)).headers['x-multi'];
  out.axios_404 = await axios.get(`${base}/status/404`).then(() => 'resolved', (e) => [e.name, e.code, e.response && e.response.status, e.message]);
  out.axios_timeout = await axios.get(`${base}/delay/3000`, { timeout: 50 }).then(() => 'resolved', (e) => [e.name, e.code, e.message]);
  const cancel = new AbortController();
  const pending = axios.get(`${base}/delay/3000`, { signal: cancel.signal });
  setTimeout(() => cancel.abort(), 20);
  out.axios_cancel = await pending.then(() => 'resolved', (e) => [e.name, e.code, axios.isCancel(e)]);
  return out;
}
return main();
