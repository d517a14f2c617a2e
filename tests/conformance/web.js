// Web platform globals, as Node 20 has them: URL, URLSearchParams, TextEncoder/TextDecoder,
// atob/btoa, AbortController/AbortSignal, Event/EventTarget, Blob/File, FormData, Headers,
// Request/Response (bodies without the network), structuredClone, queueMicrotask,
// DOMException. Error paths record name, code and message. Run by tests/e2e/web_compat.rs
// under Node and under keel; the two results must be equal.
const out = {};
const err = (f) => {
  try {
    const v = f();
    return { ok: v === undefined ? null : v };
  } catch (e) {
    return { name: e.name, code: e.code === undefined ? null : e.code, message: e.message };
  }
};
const bytes = (u8) => Array.from(u8);

// ---- URL ----
const u = new URL('https://user:pa%20ss@EXAMPLE.com:443/a/./b/../c?q=1&r=%20x#frag');
out.url_parts = [u.href, u.origin, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash];
out.url_relative = [new URL('../x?y#z', 'http://h.test/a/b/c').href, new URL('//other.test/p', 'https://h.test').href, new URL('?q', 'http://h.test/p').href];
out.url_idna = [new URL('http://münchen.de/').hostname, new URL('http://[::1]:8080/').host, new URL('http://0x7f.1/').hostname];
out.url_special = [new URL('file:///tmp/a b').href, new URL('data:text/plain,hi').pathname, new URL('mailto:a@b.c').origin, new URL('blob:https://a.test/x').origin];
out.url_invalid = err(() => new URL('not a url'));
out.url_invalid_base = err(() => new URL('/x', 'nope'));
out.url_missing = err(() => new URL());
out.url_canParse = [URL.canParse('http://a'), URL.canParse('x'), URL.canParse('/p', 'http://a')];
const s = new URL('http://h.test/p?a=1');
s.protocol = 'https:';
s.host = 'x.test:81';
s.port = '8443';
s.pathname = '/a b/ü';
s.search = 'k=v w';
s.hash = 'h h';
s.username = 'me';
s.password = 'p@ss';
out.url_setters = s.href;
const s2 = new URL('http://h.test/');
s2.port = 'abc';
s2.protocol = 'ftp';
s2.hostname = '';
out.url_setters_ignored = s2.href;
out.url_href_setter = err(() => { const x = new URL('http://a/'); x.href = 'nope'; });
out.url_json = JSON.stringify({ u: new URL('http://a/b') });
out.url_tostring = [String(new URL('http://a/b')), Object.prototype.toString.call(new URL('http://a/'))];
const linked = new URL('http://h.test/?a=1&b=2');
linked.searchParams.append('c', '3 4');
linked.searchParams.delete('a');
out.url_params_linked = [linked.href, linked.search];
linked.search = '?z=9';
out.url_params_follow = [...linked.searchParams];
linked.searchParams.delete('z');
out.url_params_emptied = linked.href;

// ---- URLSearchParams ----
const p = new URLSearchParams('?a=1&b=x+y&a=%E2%82%AC&c&=e&d=%zz');
out.usp_parse = [...p];
out.usp_get = [p.get('a'), p.get('nope'), p.getAll('a'), p.has('c'), p.has('a', '1'), p.has('a', '2'), p.size];
p.set('a', 'only');
p.append('sp ace', 'ü&=+');
p.delete('b');
out.usp_mutate = p.toString();
p.sort();
out.usp_sort = p.toString();
out.usp_from_record = new URLSearchParams({ x: 1, y: 'two', z: null }).toString();
out.usp_from_pairs = new URLSearchParams([['a', 'b'], ['c', 'd']]).toString();
out.usp_from_map = new URLSearchParams(new Map([['m', 'n']])).toString();
out.usp_bad_tuple = err(() => new URLSearchParams([['a']]));
out.usp_missing = err(() => new URLSearchParams().append('a'));
out.usp_encode = new URLSearchParams({ s: "!'()*~-._ é\u{1F600}" }).toString();
const it = new URLSearchParams('a=1&b=2').entries();
out.usp_iter = [Object.prototype.toString.call(it), it.next(), [...it], it.next()];
out.usp_keys_values = [[...new URLSearchParams('a=1&b=2').keys()], [...new URLSearchParams('a=1&b=2').values()]];
const fe = [];
new URLSearchParams('a=1&b=2').forEach(function (v, k, self) { fe.push([k, v, self instanceof URLSearchParams]); });
out.usp_foreach = fe;
const live = new URLSearchParams('a=1');
const liveIt = live.keys();
live.append('b', '2');
out.usp_live_iterator = [...liveIt];
out.usp_lone_surrogate = new URLSearchParams({ a: '\uD800' }).toString();

// ---- TextEncoder / TextDecoder ----
const te = new TextEncoder();
out.te = [te.encoding, bytes(te.encode('aé€😀')), bytes(te.encode()), bytes(te.encode('\uD800x'))];
const into = new Uint8Array(5);
out.te_into = [te.encodeInto('a€😀', into), bytes(into)];
out.te_into_bad = err(() => te.encodeInto('x', []));
const td = new TextDecoder();
out.td = [td.encoding, td.fatal, td.ignoreBOM, td.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69])), td.decode(new Uint8Array([0x61, 0xff, 0x62])), td.decode()];
out.td_ignore_bom = new TextDecoder('utf-8', { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x68])).length;
out.td_views = [td.decode(new Uint16Array([0x6968]).buffer), td.decode(new DataView(new Uint8Array([0x6f, 0x6b]).buffer)), td.decode(new Uint8Array([0x78, 0x61, 0x62, 0x79]).subarray(1, 3))];
out.td_fatal = err(() => new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0xc3])));
out.td_labels = ['UTF8', ' utf-8 ', 'unicode-1-1-utf-8', 'utf-16le', 'latin1'].map((l) => new TextDecoder(l).encoding);
out.td_unsupported = err(() => new TextDecoder('klingon'));
out.td_bad_input = err(() => td.decode('str'));
const stream = new TextDecoder();
const euro = te.encode('€€');
out.td_stream = [stream.decode(euro.subarray(0, 2), { stream: true }), stream.decode(euro.subarray(2, 4), { stream: true }), stream.decode(euro.subarray(4))];
out.td_utf16 = new TextDecoder('utf-16le').decode(new Uint8Array([0x68, 0, 0x69, 0, 0x3d, 0xd8, 0x00, 0xde]));
out.td_latin1 = new TextDecoder('latin1').decode(new Uint8Array([0x41, 0x80, 0xe9, 0x9f]));

// ---- atob / btoa ----
out.b64 = [btoa('hello'), btoa(''), btoa('\xff\xfe'), atob('aGVsbG8='), atob(' aGVs bG8 '), atob('aGVsbG8'), atob('YQ')];
out.btoa_bad = err(() => btoa('€'));
out.atob_bad = [err(() => atob('a')), err(() => atob('a*b=')), err(() => atob('ab=c'))];
out.atob_missing = err(() => atob());

// ---- DOMException ----
const de = new DOMException('msg', 'AbortError');
out.domexception = [de.name, de.message, de.code, de instanceof Error, new DOMException().name, new DOMException('x', { name: 'DataCloneError' }).code, DOMException.ABORT_ERR, Object.prototype.toString.call(de)];

// ---- Event / EventTarget ----
const et = new EventTarget();
const log = [];
const l1 = (e) => log.push(['l1', e.type, e.target === et, e.currentTarget === et, e.eventPhase]);
et.addEventListener('ping', l1);
et.addEventListener('ping', l1);
et.addEventListener('ping', { handleEvent(e) { log.push(['obj', e.type]); } });
et.addEventListener('ping', () => log.push(['once']), { once: true });
et.dispatchEvent(new Event('ping'));
et.dispatchEvent(new Event('ping'));
et.removeEventListener('ping', l1);
et.dispatchEvent(new Event('ping'));
out.events = log;
const ev = new Event('x', { cancelable: true, bubbles: true });
const cancelLog = [];
const t2 = new EventTarget();
t2.addEventListener('x', (e) => { e.preventDefault(); cancelLog.push(e.defaultPrevented); });
t2.addEventListener('x', (e) => { e.stopImmediatePropagation(); cancelLog.push('second'); });
t2.addEventListener('x', () => cancelLog.push('third'));
out.event_cancel = [t2.dispatchEvent(ev), ev.defaultPrevented, ev.bubbles, ev.eventPhase, ev.currentTarget, ev.target === t2, cancelLog];
const passive = new Event('p', { cancelable: true });
const t3 = new EventTarget();
t3.addEventListener('p', (e) => e.preventDefault(), { passive: true });
out.event_passive = [t3.dispatchEvent(passive), passive.defaultPrevented];
out.event_missing = err(() => new Event());
out.event_bad_dispatch = err(() => new EventTarget().dispatchEvent({ type: 'x' }));
const ce = new CustomEvent('c', { detail: { n: 1 } });
out.custom_event = [ce.type, ce.detail, new CustomEvent('d').detail, ce instanceof Event];
const ac0 = new AbortController();
const t4 = new EventTarget();
const sigLog = [];
t4.addEventListener('s', () => sigLog.push('s'), { signal: ac0.signal });
t4.dispatchEvent(new Event('s'));
ac0.abort();
t4.dispatchEvent(new Event('s'));
out.event_signal_removal = sigLog;

// ---- AbortController / AbortSignal ----
const ac = new AbortController();
const aLog = [];
ac.signal.addEventListener('abort', (e) => aLog.push(['listener', e.type]));
ac.signal.onabort = (e) => aLog.push(['onabort', e.type]);
out.abort_before = [ac.signal.aborted, ac.signal.reason];
ac.abort();
ac.abort('again');
out.abort_after = [ac.signal.aborted, ac.signal.reason.name, ac.signal.reason.message, ac.signal.reason.code, aLog];
out.abort_throw = err(() => ac.signal.throwIfAborted());
const ac2 = new AbortController();
ac2.abort({ custom: true });
out.abort_reason = ac2.signal.reason;
out.abort_static = [AbortSignal.abort().aborted, AbortSignal.abort('r').reason, AbortSignal.abort().reason.name];
out.abort_ctor = err(() => new AbortSignal());
out.abort_timeout_bad = [err(() => AbortSignal.timeout(-1)), err(() => AbortSignal.timeout('1')), err(() => AbortSignal.timeout(1.5))];
const anyA = new AbortController();
const anyS = AbortSignal.any([anyA.signal, new AbortController().signal]);
anyA.abort('first');
out.abort_any = [anyS.aborted, anyS.reason, AbortSignal.any([AbortSignal.abort('pre')]).reason];
out.abort_tags = [Object.prototype.toString.call(ac), Object.prototype.toString.call(ac.signal), ac.signal instanceof EventTarget];

// ---- Blob / File ----
const blob = new Blob(['ab', new Uint8Array([99, 100]), new Blob(['ef']), new Uint16Array([0x6867]).buffer], { type: 'Text/Plain' });
out.blob = [blob.size, blob.type, new Blob([], { type: 'a\u0001b' }).type, new Blob().size, Object.prototype.toString.call(blob)];
out.blob_slice = [blob.slice(1, 3).size, blob.slice(-2).size, blob.slice(5, 2).size, blob.slice(0, 2, 'x/y').type];
out.blob_bad = [err(() => new Blob('abc')), err(() => new Blob([], { endings: 'bogus' }))];
const file = new File(['x'], 'a.txt', { type: 'text/plain', lastModified: 1234 });
out.file = [file.name, file.size, file.type, file.lastModified, file instanceof Blob, Object.prototype.toString.call(file)];
out.file_missing = err(() => new File(['x']));

// ---- FormData (Web API) ----
const fd = new FormData();
fd.append('a', '1');
fd.append('a', 2);
fd.append('f', new Blob(['data'], { type: 'text/csv' }), 'd.csv');
fd.append('g', new Blob(['g']));
fd.set('h', 'x');
out.formdata = [fd.get('a'), fd.getAll('a'), fd.has('f'), fd.get('nope'), [...fd.keys()], fd.get('f').name, fd.get('f').type, fd.get('g').name, fd.get('f') instanceof File];
fd.set('a', 'one');
fd.delete('h');
out.formdata_after = [...fd.entries()].map(([k, v]) => [k, typeof v === 'string' ? v : 'file:' + v.name]);
out.formdata_bad_filename = err(() => new FormData().append('a', 'b', 'c'));
out.formdata_tag = [Object.prototype.toString.call(fd), Object.prototype.toString.call(fd.entries())];

// ---- Headers ----
const h = new Headers({ 'Content-Type': 'text/plain', 'X-A': ' 1 ' });
h.append('x-a', '2');
h.append('Set-Cookie', 'a=1');
h.append('set-cookie', 'b=2');
out.headers = [h.get('x-a'), h.get('content-type'), h.has('X-A'), h.get('missing'), [...h], h.getSetCookie(), [...h.keys()]];
h.delete('x-a');
h.set('Content-Type', 'x/y');
out.headers_after = [...h.entries()];
out.headers_bad = [err(() => new Headers({ 'a b': '1' })), err(() => new Headers([['a']])), err(() => h.append('x', 'a\nb')), err(() => h.get('bad name'))];
out.headers_json = [JSON.stringify(new Headers({ a: '1' })), Object.prototype.toString.call(h), Object.prototype.toString.call(h.entries())];
out.headers_from_headers = [...new Headers(new Headers([['k', 'v']]))];
const fh = [];
new Headers([['b', '2'], ['a', '1']]).forEach((v, k) => fh.push(k + '=' + v));
out.headers_foreach = fh;

// ---- Request / Response without the network ----
const rq = new Request('http://h.test/p?q', { method: 'post', headers: { 'X-K': 'v' }, body: 'hello' });
out.request = [rq.method, rq.url, rq.headers.get('x-k'), rq.headers.get('content-type'), rq.bodyUsed, rq.redirect, rq.cache, rq.credentials, rq.mode, rq.referrer, rq.signal instanceof AbortSignal, rq.signal.aborted, Object.prototype.toString.call(rq)];
out.request_methods = ['get', 'delete', 'patch', 'Options', 'custom'].map((m) => new Request('http://h.test/', { method: m }).method);
out.request_bad = [
  err(() => new Request('/relative')),
  err(() => new Request('http://h.test/', { method: 'GET', body: 'x' })),
  err(() => new Request('http://h.test/', { method: 'CONNECT' })),
  err(() => new Request('http://u:p@h.test/')),
  err(() => new Request('http://h.test/', { redirect: 'sometimes' })),
];
const rqc = rq.clone();
const rqFrom = new Request(rq, { method: 'PUT' });
out.request_clone = [rqc.method, rqc.headers.get('x-k'), rqFrom.method, rqFrom.url];
const resp = new Response('body', { status: 201, statusText: 'Made', headers: { 'X-R': '1' } });
out.response = [resp.status, resp.statusText, resp.ok, resp.headers.get('x-r'), resp.headers.get('content-type'), resp.type, resp.url, resp.redirected, resp.bodyUsed, resp.body instanceof ReadableStream, Object.prototype.toString.call(resp)];
out.response_defaults = [new Response().status, new Response().body, new Response(null).ok, new Response().statusText];
out.response_bad = [err(() => new Response('x', { status: 99 })), err(() => new Response('x', { status: 204 })), err(() => new Response('x', { status: 600 }))];
const rerr = Response.error();
out.response_error = [rerr.type, rerr.status, rerr.ok, rerr.statusText];
const rjson = Response.json({ a: [1] }, { status: 202 });
out.response_json = [rjson.status, rjson.headers.get('content-type')];
const rred = Response.redirect('http://h.test/x', 301);
out.response_redirect = [rred.status, rred.headers.get('location'), err(() => Response.redirect('http://h.test/', 200))];
out.response_content_types = [
  new Response('s').headers.get('content-type'),
  new Response(new URLSearchParams('a=1')).headers.get('content-type'),
  new Response(new Blob(['b'], { type: 'Image/PNG' })).headers.get('content-type'),
  new Response(new Blob(['b'])).headers.get('content-type'),
  new Response(new Uint8Array([1])).headers.get('content-type'),
  /^multipart\/form-data; boundary=/.test(new Response(new FormData()).headers.get('content-type')),
];

// ---- structuredClone ----
const cyc = { n: 1, d: new Date(5), r: /a+/gi, m: new Map([[{ k: 1 }, new Set([1, 2])]]), u8: new Uint8Array([1, 2, 3]).subarray(1), big: 10n };
cyc.self = cyc;
const cl = structuredClone(cyc);
out.clone = [cl !== cyc, cl.self === cl, cl.d.getTime(), cl.r.source, cl.r.flags, cl.m.size, [...[...cl.m.values()][0]], bytes(cl.u8), cl.u8.byteOffset, typeof cl.big, cl.big === 10n];
const shared = { x: 1 };
const arrClone = structuredClone([shared, shared]);
out.clone_shared = arrClone[0] === arrClone[1];
const errClone = structuredClone(new RangeError('bad'));
out.clone_error = [errClone instanceof RangeError, errClone.name, errClone.message];
class K { constructor() { this.v = 1; } get g() { return 2; } }
out.clone_class = [structuredClone(new K()), Object.getPrototypeOf(structuredClone(new K())) === Object.prototype];
out.clone_bad = [err(() => structuredClone(() => 1)).name, err(() => structuredClone({ s: Symbol('x') })).name, err(() => structuredClone(new WeakMap())).name, err(() => structuredClone(Promise.resolve())).name, err(() => structuredClone()).code];
out.clone_prims = [structuredClone(null), structuredClone('s'), structuredClone(NaN), structuredClone([1, , 3]).length, 1 in structuredClone([1, , 3])];

// ---- microtasks, then the body mixin (async) ----
const order = [];
queueMicrotask(() => order.push('micro'));
Promise.resolve().then(() => order.push('promise'));
order.push('sync');
out.queue_microtask_bad = err(() => queueMicrotask('x'));

async function bodies() {
  const r = {};
  r.text = await new Response('héllo').text();
  r.json = await new Response('{"a":[1,2]}').json();
  r.array_buffer = bytes(new Uint8Array(await new Response(new Uint8Array([0, 255, 128])).arrayBuffer()));
  const b = await new Response('xyz', { headers: { 'content-type': 'text/x' } }).blob();
  r.blob = [b.size, b.type, await b.text()];
  const used = new Response('once');
  await used.text();
  r.used = [used.bodyUsed, await used.text().then(() => 'read twice', (e) => e.name)];
  const reader = new Response('streamed').body.getReader();
  const chunks = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(...value);
  }
  r.stream = new TextDecoder().decode(new Uint8Array(chunks));
  const locked = new Response('x');
  locked.body.getReader();
  r.locked = [locked.body.locked, locked.bodyUsed, await locked.text().then(() => 'read', (e) => e.name)];
  const cancelled = new Response('y');
  await cancelled.body.cancel();
  r.cancelled = cancelled.bodyUsed;
  const clone1 = new Response('twice');
  const clone2 = clone1.clone();
  r.clone = [await clone1.text(), await clone2.text()];
  const form = new FormData();
  form.append('k', 'v');
  form.append('f', new File(['file body'], 'f.txt', { type: 'text/plain' }));
  const parsed = await new Response(form).formData();
  r.formdata_roundtrip = [parsed.get('k'), parsed.get('f').name, parsed.get('f').type, await parsed.get('f').text()];
  const urlencoded = await new Response(new URLSearchParams('a=1&b=%20')).formData();
  r.formdata_urlencoded = [...urlencoded];
  r.formdata_bad = await new Response('x').formData().then(() => 'parsed', (e) => e.name);
  r.request_body = [await new Request('http://h.test/', { method: 'POST', body: new URLSearchParams('z=1') }).text(), await new Request('http://h.test/', { method: 'POST', body: new Blob(['bb']) }).text()];
  const multipart = await new Request('http://h.test/', { method: 'POST', body: form }).text();
  r.request_multipart = [/Content-Disposition: form-data; name="k"\r\n\r\nv\r\n/.test(multipart), /filename="f.txt"\r\nContent-Type: text\/plain\r\n\r\nfile body\r\n/.test(multipart)];
  const blobStream = new Blob(['abc']).stream().getReader();
  r.blob_stream = bytes((await blobStream.read()).value);
  r.blob_reads = [await blob.text(), bytes(new Uint8Array(await blob.slice(0, 2).arrayBuffer()))];
  const rs = new ReadableStream({
    start(c) { c.enqueue('a'); },
    pull(c) { c.enqueue('b'); c.close(); },
  });
  const got = [];
  for await (const v of rs) got.push(v);
  r.readable_stream = got;
  r.microtask_order = order;
  return r;
}
return bodies().then((r) => {
  out.bodies = r;
  return out;
});
