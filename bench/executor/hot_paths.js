// Buffer and crypto hot paths, as one code-block body: hot_paths.sh runs it in keel (through
// /flow/codeblock) and in Node 20 (node -e, same code), and prints the two side by side.
// `input.path` picks one path (each gets a fresh context or process, so garbage from one
// path's loop never lands on the next one's GC); it repeats for ~250 ms of wall time and
// reports MiB/s (1 MiB inputs) or ops/s.
const c = require('crypto');
const MiB = 1 << 20;
const data = Buffer.alloc(MiB);
for (let i = 0; i < MiB; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
const b64 = data.toString('base64');
const hex = data.toString('hex');
const key = Buffer.alloc(32, 7);
const iv = Buffer.alloc(12, 9);
const small = Buffer.from('{"sub":"1234567890","name":"John Doe","iat":1516239022}');
const text = small.toString();
function rate(fn, bytes) {
  fn(); // warm
  let n = 0;
  const t0 = Date.now();
  let t = t0;
  while (t - t0 < 250) {
    fn();
    n++;
    if ((n & 3) === 0 || bytes === 0) t = Date.now();
  }
  t = Date.now();
  const per = (n * 1000) / Math.max(1, t - t0);
  return Math.round(bytes ? (per * bytes) / MiB : per);
}
const paths = {
  'base64 encode 1 MiB (MiB/s)': () => rate(() => data.toString('base64'), MiB),
  'base64 decode 1 MiB (MiB/s)': () => rate(() => Buffer.from(b64, 'base64'), MiB),
  'hex encode 1 MiB (MiB/s)': () => rate(() => data.toString('hex'), MiB),
  'hex decode 1 MiB (MiB/s)': () => rate(() => Buffer.from(hex, 'hex'), MiB),
  'sha256 1 MiB (MiB/s)': () => rate(() => c.createHash('sha256').update(data).digest(), MiB),
  'HMAC-SHA256 1 MiB (MiB/s)': () => rate(() => c.createHmac('sha256', key).update(data).digest(), MiB),
  'HMAC-SHA256 56 B (ops/s)': () => rate(() => c.createHmac('sha256', key).update(small).digest('base64url'), 0),
  'HMAC-SHA256 56-char text, text key (ops/s)': () => rate(() => c.createHmac('sha256', 'secret').update(text).digest('hex'), 0),
  'md5 56-char text (ops/s)': () => rate(() => c.createHash('md5').update(text).digest('hex'), 0),
  'AES-256-GCM encrypt 1 MiB (MiB/s)': () => rate(() => { const ci = c.createCipheriv('aes-256-gcm', key, iv); ci.update(data); ci.final(); ci.getAuthTag(); }, MiB),
  'RSA-2048 sign sha256 (ops/s)': () => {
    const rsa = c.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    return rate(() => c.sign('sha256', small, rsa), 0);
  },
};
if (input.path === undefined) return Object.keys(paths);
return paths[input.path]();
