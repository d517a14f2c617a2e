// fetch against the local fake server of tests/e2e/web_compat.rs (input.base): bytes stay
// bytes (arrayBuffer, blob, body reader), gzip/deflate/br answers are decompressed, every
// body type is sent with its content type, Request objects, response headers, redirects,
// AbortController/AbortSignal.timeout. Results must equal Node 20's.
const base = input.base;
const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');
const sum = (u8) => u8.reduce((a, b) => (a * 31 + b) >>> 0, 7);
const expectBytes = (n) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255);

async function main() {
  const out = {};

  // ---- bytes ----
  for (const n of [0, 16, 1024, 100000]) {
    const r = await fetch(`${base}/bytes/${n}`);
    const ab = await r.arrayBuffer();
    out[`bytes_${n}`] = [ab instanceof ArrayBuffer, ab.byteLength, sum(new Uint8Array(ab)) === sum(expectBytes(n)), r.headers.get('content-type')];
  }
  const blob = await (await fetch(`${base}/bytes/300`)).blob();
  out.blob = [blob.size, blob.type, sum(new Uint8Array(await blob.arrayBuffer())) === sum(expectBytes(300))];
  const streamed = await fetch(`${base}/bytes/70000`);
  const reader = streamed.body.getReader();
  let total = 0;
  let check = 7;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
    for (const b of value) check = (check * 31 + b) >>> 0;
  }
  out.body_reader = [total, check === sum(expectBytes(70000)), streamed.bodyUsed];
  const cancelled = await fetch(`${base}/bytes/10`);
  await cancelled.body.cancel();
  out.body_cancel = cancelled.bodyUsed;
  let iterated = 0;
  for await (const chunk of (await fetch(`${base}/bytes/5000`)).body) iterated += chunk.length;
  out.body_async_iterator = iterated;
  out.text_utf8 = await (await fetch(`${base}/text`)).text();

  // ---- compression ----
  for (const enc of ['gzip', 'deflate', 'br']) {
    const r = await fetch(`${base}/compressed/${enc}`);
    out[`compressed_${enc}`] = [r.status, await r.json()];
  }

  // ---- request bodies and their content types ----
  const echo = async (body, init = {}) => {
    const r = await fetch(`${base}/echo`, { method: 'POST', body, ...init });
    return r.json();
  };
  const e1 = await echo('héllo');
  const e2 = await echo(new URLSearchParams({ a: '1', b: 'x y' }));
  const e3 = await echo(new Blob(['blob body'], { type: 'Application/X-Test' }));
  const e4 = await echo(new Uint8Array([0, 1, 254, 255]));
  const e5 = await echo(new Uint16Array([0x0102, 0x0304]).buffer);
  const e6 = await echo(new DataView(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2));
  const e7 = await echo(new Uint8Array([1, 2, 3, 4, 5]).subarray(1, 3));
  const e8 = await echo('{"j":1}', { headers: { 'Content-Type': 'application/json' } });
  out.bodies = [e1, e2, e3, e4, e5, e6, e7, e8].map((e) => [e.method, e.type, e.hex]);
  const form = new FormData();
  form.append('field', 'value');
  form.append('upload', new Blob([new Uint8Array([0x41, 0x42])], { type: 'text/plain' }), 'ab.txt');
  const e9 = await echo(form);
  const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(e9.type);
  out.multipart = [
    !!boundary,
    boundary !== null && e9.text.startsWith(`--${boundary[1]}\r\n`),
    boundary !== null && e9.text.endsWith(`--${boundary[1]}--\r\n`),
    e9.text.includes('Content-Disposition: form-data; name="field"\r\n\r\nvalue\r\n'),
    e9.text.includes('Content-Disposition: form-data; name="upload"; filename="ab.txt"\r\nContent-Type: text/plain\r\n\r\nAB\r\n'),
  ];
  const viaRequest = await (await fetch(new Request(`${base}/echo`, { method: 'PUT', body: 'from request', headers: { 'X-Probe': 'p' } }))).json();
  out.request_object = [viaRequest.method, viaRequest.type, viaRequest.hex, viaRequest.probe];
  const overridden = await (await fetch(new Request(`${base}/echo`, { method: 'PUT', body: 'a' }), { method: 'PATCH', body: 'b' })).json();
  out.request_override = [overridden.method, overridden.hex];
  const viaUrl = await fetch(new URL(`${base}/bytes/3`));
  out.url_object = viaUrl.status;

  // ---- responses ----
  const r = await fetch(`${base}/headers`);
  out.response = [r.status, r.ok, r.statusText, r.url === `${base}/headers`, r.redirected, r.type, r.bodyUsed];
  out.response_headers = [r.headers.get('x-multi'), r.headers.getSetCookie(), r.headers.get('content-type'), r.headers.has('x-multi')];
  try {
    r.headers.set('x', 'y');
    out.immutable = 'mutable';
  } catch (e) {
    out.immutable = [e.name, e.message];
  }
  const red = await fetch(`${base}/redirect`);
  out.redirect = [red.status, red.redirected, red.url === `${base}/echo`, (await red.json()).method];
  out.redirect_error = await fetch(`${base}/redirect`, { redirect: 'error' }).then(() => 'resolved', (e) => e.name);
  const nf = await fetch(`${base}/status/404`);
  out.not_found = [nf.status, nf.ok, nf.statusText, await nf.text()];
  const head = await fetch(`${base}/bytes/10`, { method: 'HEAD' });
  out.head = [head.status, head.body, await head.text()];
  out.network_error = await fetch('http://127.0.0.1:1/').then(() => 'resolved', (e) => e.name);
  out.bad_url = await fetch('not a url').then(() => 'resolved', (e) => [e.name, e.message]);
  const cloned = await fetch(`${base}/text`);
  const copy = cloned.clone();
  out.clone = [await cloned.text(), await copy.text()];

  // ---- abort ----
  const pre = new AbortController();
  pre.abort();
  out.abort_before = await fetch(`${base}/bytes/1`, { signal: pre.signal }).then(() => 'resolved', (e) => [e.name, e.message]);
  const mid = new AbortController();
  setTimeout(() => mid.abort(), 50);
  out.abort_during = await fetch(`${base}/delay/3000`, { signal: mid.signal }).then(() => 'resolved', (e) => [e.name, e.message]);
  out.abort_reason = await fetch(`${base}/delay/3000`, { signal: AbortSignal.abort('custom reason') }).then(() => 'resolved', (e) => e);
  out.abort_timeout = await fetch(`${base}/delay/3000`, { signal: AbortSignal.timeout(50) }).then(() => 'resolved', (e) => [e.name, e.message]);
  // An unused timeout signal does not hold the block open (unref'd, as in Node).
  const idle = AbortSignal.timeout(600000);
  out.timeout_unused = [(await fetch(`${base}/bytes/1`, { signal: idle })).status, idle.aborted];

  return out;
}
return main();
