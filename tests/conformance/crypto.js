// Conformance: require('crypto') and globalThis.crypto, from Node 20's documentation.
// A code-block body: run as is by keel and wrapped in an async function by Node; both must
// return the same JSON (tests/e2e/node_compat.rs). Fixed keys keep deterministic outputs
// (hashes, HMAC, KDFs, AES, RSA PKCS#1 v1.5 and Ed25519 signatures) comparable byte for byte;
// randomized ones (ECDSA, PSS, OAEP, key generation) are checked by verifying them.
const c = require('node:crypto');
const out = {};
const norm = (v) => {
  if (v instanceof Uint8Array) return { hex: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex'), isBuffer: Buffer.isBuffer(v) };
  if (v instanceof ArrayBuffer) return { arrayBuffer: Buffer.from(v).toString('hex') };
  if (typeof v === 'bigint') return `${v}n`;
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = {};
    for (const k of Object.keys(v)) o[k] = norm(v[k]);
    return o;
  }
  if (Array.isArray(v)) return v.map(norm);
  return v === undefined ? '(undefined)' : v;
};
const err = (e) => ({ threw: e.name, code: e.code, message: e.message });
function t(name, fn) {
  try {
    out[name] = norm(fn());
  } catch (e) {
    out[name] = err(e);
  }
}
async function ta(name, fn) {
  try {
    out[name] = norm(await fn());
  } catch (e) {
    out[name] = err(e);
  }
}
const cb = (f) => new Promise((resolve, reject) => f((e, ...r) => (e ? reject(e) : resolve(r.length > 1 ? r : r[0]))));
const KEYS = {
  "rsaPriv": "-----BEGIN PRIVATE KEY-----\nMIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAM8zJ4Q8dz/6HUCJ\nERcfn/0+B0kIkh7i/CBVa0q27lHiUFGKdILO5AznqFhBDTY1TiAQlTbkUBTCK3UC\nZMcqcr+062Q3lET6EwKWN/pJ7mKVZS/dUZ5rNmdai6tNvj7CB16UPZJYxR3SXZn1\nb/LoYY9vhYlpZAbXkQjhjyHPv4QnAgMBAAECgYEAkBd6+7MxGwTNIvwvLm2HzY09\nc8TKGUCxJatBmgvtYHSKdqparD1EytSvdfCHR5N6aUIfArV0G3uMzSqE+xzB/t9l\nztWn3aoFn8zFdE7a4YAbSw429/a4qsXUnQzsAQTQG632qbgAU+OKxi0ozLM5YbV+\n3WK2ySvxVsYqBwECzsECQQDq1ntmLq+zrgEdmBOGe2D7GmQK/EnmizmU47Jhior3\nt8x2qYJL1hPppsKdbnfVV1xpHPagEMz6Lez+vb5QhHsjAkEA4d8WDIov7xDJG6rn\nl9IttoeqpoJpPyY0edpIz2RhJgTLa3BuJ2O3KQZpvtMvsbgp3Un0sWVQOkFvyMAm\nL/QVLQJAAVyVApaqtiQAJafIFTOJ8GrKwbWMyCVuhAp98krXW3BZYybAdqgbHXO2\nFSuazkXfZ0yfsXXnelvhz+hRvi3GeQJAV47AIFpNHJJYM0Z8AmlyWQicSXHSVK19\nuCK7CNIzqqY/KMXrnY9VCC05PsTk/zKR3/t0RHQutnZ5W8vIwdwPfQJBAN4KGQK3\nLnTwR2bwgtPy+jXxwi4orEIi/Fi5NIH3ohI89idM26DLQY4+mqoMndRQhWOFZYWQ\ntb7bUnFHBGWJoPA=\n-----END PRIVATE KEY-----\n",
  "rsaPub": "-----BEGIN PUBLIC KEY-----\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDPMyeEPHc/+h1AiREXH5/9PgdJ\nCJIe4vwgVWtKtu5R4lBRinSCzuQM56hYQQ02NU4gEJU25FAUwit1AmTHKnK/tOtk\nN5RE+hMCljf6Se5ilWUv3VGeazZnWourTb4+wgdelD2SWMUd0l2Z9W/y6GGPb4WJ\naWQG15EI4Y8hz7+EJwIDAQAB\n-----END PUBLIC KEY-----\n",
  "ecPriv": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFIVAi9NgX1x78BSaFA0bYDd7c4uYMxCJsbtdaWCIln6oAoGCCqGSM49\nAwEHoUQDQgAEC/vwHGJmc6+QSP0clEmiIopHjeqPAWf6j1M8Xz0jN/dye1WhEM9B\naUMUvsvlFmpcOydQLy6pOFhaj3Xem6kTcA==\n-----END EC PRIVATE KEY-----\n",
  "edPriv": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEICSQ6yAyayMAUEK1OOiwEXJz3ehyWza7RzxOVBPkFw/L\n-----END PRIVATE KEY-----\n",
  "x1": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIEgabC8TUTfnd4KSkpy2f6rvPsumwaT3YJvCy85Iwhpl\n-----END PRIVATE KEY-----\n",
  "x2": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIEDmvdpAmqU7Er4VAnm2Oqxv/O1Fygr/+BrG+JjHWDBP\n-----END PRIVATE KEY-----\n"
};

// ---- module shape ----
t('module.same', () => require('crypto') === c && typeof c.createHash === 'function');
t('lists', () => [c.getHashes().includes('sha256'), c.getHashes().includes('RSA-SHA256'), c.getCiphers().includes('aes-256-gcm'), c.getCiphers().includes('chacha20-poly1305'), c.getCurves().includes('prime256v1'), c.getCurves().includes('secp256k1')]);
t('constants', () => [c.constants.RSA_PKCS1_PADDING, c.constants.RSA_PKCS1_OAEP_PADDING, c.constants.RSA_PKCS1_PSS_PADDING, c.constants.RSA_PSS_SALTLEN_DIGEST, c.constants.RSA_PSS_SALTLEN_MAX_SIGN, c.constants.RSA_NO_PADDING]);

// ---- hashes ----
for (const alg of ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'sha512-256', 'sha3-256', 'sha3-512', 'ripemd160', 'sm3', 'blake2b512', 'blake2s256', 'SHA256', 'RSA-SHA256', 'sha256WithRSAEncryption']) {
  t(`hash.${alg}`, () => [c.createHash(alg).update('').digest('hex'), c.createHash(alg).update('The quick brown fox').update(Buffer.from([0, 1, 2, 255])).digest('hex')]);
}
t('hash.shake256', () => [c.createHash('shake256').update('abc').digest('hex'), c.createHash('shake256', { outputLength: 8 }).update('abc').digest('hex'), c.createHash('shake128', { outputLength: 0 }).update('abc').digest('hex')]);
t('hash.notXofLength', () => c.createHash('sha256', { outputLength: 8 }).digest('hex'));
t('hash.encodings', () => { const h = () => c.createHash('sha256').update('héllo'); return [h().digest('base64'), h().digest('base64url'), h().digest('latin1'), h().digest('binary'), h().digest('buffer'), h().digest(), h().digest('nope'), h().digest('ucs2').length]; });
t('hash.inputEncodings', () => [c.createHash('sha1').update('6869', 'hex').digest('hex'), c.createHash('sha1').update('aGk=', 'base64').digest('hex'), c.createHash('sha1').update('hé', 'latin1').digest('hex'), c.createHash('sha1').update('hé', 'utf8').digest('hex'), c.createHash('sha1').update(new Uint16Array([0x6968])).digest('hex'), c.createHash('sha1').update(new DataView(new Uint8Array([104, 105]).buffer)).digest('hex')]);
t('hash.copy', () => { const h = c.createHash('sha256').update('a'); const h2 = h.copy(); h2.update('b'); return [h.digest('hex'), h2.digest('hex')]; });
t('hash.chain', () => c.createHash('md5').update('a').update('b').digest('hex') === c.createHash('md5').update('ab').digest('hex'));
t('hash.finalized', () => { const h = c.createHash('sha256'); h.digest(); return h.update('x'); });
t('hash.digestTwice', () => { const h = c.createHash('sha256'); h.digest(); return h.digest(); });
t('hash.copyFinalized', () => { const h = c.createHash('sha256'); h.digest(); return h.copy(); });
t('hash.unknown', () => c.createHash('sha257'));
t('hash.notString', () => c.createHash(256));
t('hash.badData', () => c.createHash('sha256').update(5));
t('hash.badDataNull', () => c.createHash('sha256').update(null));
t('hash.oddHex', () => c.createHash('sha256').update('abc', 'hex'));
t('hash.outputLengthBad', () => c.createHash('shake256', { outputLength: -1 }));
// A hash or HMAC of a string waits for digest() (one native call): the bytes hashed are
// still the ones at update() time, a copy or a second update takes the streaming path.
t('hash.waiting', () => {
  const s = 'pending \ud800 lone';
  const h = c.createHash('sha256').update('x');
  const k = h.copy();
  const buf = Buffer.from('abc');
  const m = c.createHash('sha256').update(buf);
  buf.fill(0);
  return [c.createHash('sha256').update(s).digest('hex') === c.createHash('sha256').update(Buffer.from(s)).digest('hex'), h.update('y').digest('hex'), k.digest('base64'), m.digest('hex'), c.createHash('sha256').digest('hex'), c.createHash('sha256').update('a', 'ucs2').digest('hex'), c.createHash('sha256').update('Zm9v', 'base64').update('bar').digest('hex'), c.createHash('sha256').update('x').digest('nope'), c.createHash('md5').update('x').digest({ toString: () => 'hex' })];
});
t('hmac.waiting', () => {
  const s = 'pending \ud800 lone';
  const key = Buffer.from('k3y');
  const h = c.createHmac('sha256', key);
  key.fill(0);
  return [c.createHmac('sha256', s).update(s).digest('hex') === c.createHmac('sha256', Buffer.from(s)).update(Buffer.from(s)).digest('hex'), h.update('x').digest('hex'), c.createHmac('sha256', 'k', { encoding: 'utf8' }).update('x').digest('hex'), c.createHmac('sha256', 'aGk=', { encoding: 'base64' }).update('x').digest('base64url'), c.createHmac('sha256', 'k').update('x').update(new Uint8Array([1])).digest('latin1'), c.createHmac('sha256', 'k').digest('hex'), c.createHmac('sha256', 'k').update('x').digest()];
});
t('hash.unknownAfterKnown', () => { c.createHash('sha1').update('a').digest(); return c.createHash('sha257'); });
t('hmac.unknownAfterKnown', () => { c.createHmac('sha1', 'k').update('a').digest(); return c.createHmac('sha257', 'k'); });
t('hash.noNew', () => c.Hash('sha1').update('a').digest('hex'));
t('hash.oneShot', () => [c.hash('sha1', 'abc'), c.hash('md5', 'abc', 'base64'), c.hash('sha256', Buffer.from('abc'), 'buffer'), c.hash('sha256', 'abc', 'BUFFER')]);
t('hash.oneShotBadEncoding', () => c.hash('sha1', 'abc', 'nope'));
t('hash.oneShotBadInput', () => c.hash('sha1', 5));

// ---- HMAC ----
t('hmac.vectors', () => [c.createHmac('sha256', 'key').update('The quick brown fox jumps over the lazy dog').digest('hex'), c.createHmac('md5', '').update('').digest('hex'), c.createHmac('sha1', Buffer.alloc(100, 7)).update('long key').digest('hex'), c.createHmac('sha512', 'k').update('a').update('b').digest('base64'), c.createHmac('sha3-256', 'k').update('x').digest('hex')]);
t('hmac.keyTypes', () => [c.createHmac('sha256', c.createSecretKey(Buffer.from('key'))).update('x').digest('hex'), c.createHmac('sha256', new Uint8Array([107, 101, 121])).update('x').digest('hex'), c.createHmac('sha256', new Uint8Array([107, 101, 121]).buffer).update('x').digest('hex'), c.createHmac('sha256', '6b6579', { encoding: 'hex' }).update('x').digest('hex')]);
t('hmac.digestTwice', () => { const h = c.createHmac('sha256', 'k'); h.digest(); return [h.digest('hex'), h.digest()]; });
t('hmac.updateAfterDigest', () => { const h = c.createHmac('sha256', 'k'); h.digest(); return h.update('x'); });
t('hmac.badDigest', () => c.createHmac('nope', 'k'));
t('hmac.noKey', () => c.createHmac('sha256'));
t('hmac.numberKey', () => c.createHmac('sha256', 5));
t('hmac.publicKeyObject', () => c.createHmac('sha256', c.createPublicKey(KEYS.rsaPub)));

// ---- random ----
t('randomBytes', () => { const b = c.randomBytes(16); return [b.length, Buffer.isBuffer(b), c.randomBytes(0).length]; });
t('randomBytes.negative', () => c.randomBytes(-1));
t('randomBytes.string', () => c.randomBytes('8'));
t('randomBytes.huge', () => c.randomBytes(2 ** 31));
t('randomFillSync', () => { const b = Buffer.alloc(8); c.randomFillSync(b, 2, 4); return [b[0], b[1], b[6], b[7], c.randomFillSync(new Uint32Array(4)).length, c.randomFillSync(new ArrayBuffer(4)).byteLength]; });
t('randomFillSync.offsetBad', () => c.randomFillSync(Buffer.alloc(4), 5));
t('randomFillSync.sizeBad', () => c.randomFillSync(Buffer.alloc(4), 1, 4));
t('randomFillSync.typed', () => c.randomFillSync(new Uint32Array(4), 1, 4));
t('randomFillSync.notBuffer', () => c.randomFillSync([1, 2]));
t('randomInt', () => { const xs = Array.from({ length: 200 }, () => c.randomInt(3, 7)); return [xs.every((x) => x >= 3 && x < 7 && Number.isInteger(x)), c.randomInt(1), c.randomInt(-5, -4)]; });
t('randomInt.maxLeMin', () => c.randomInt(5, 3));
t('randomInt.notSafe', () => c.randomInt(0, 2 ** 53));
t('randomInt.rangeTooBig', () => c.randomInt(0, 2 ** 48 + 1));
t('randomInt.float', () => c.randomInt(1.5));
t('randomUUID', () => [/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(c.randomUUID()), c.randomUUID() !== c.randomUUID(), /^[0-9a-f-]{36}$/.test(c.randomUUID({ disableEntropyCache: true }))]);
t('randomUUID.badOptions', () => c.randomUUID(5));
t('getRandomValues', () => { const a = new Uint16Array(4); return [c.getRandomValues(a) === a, crypto.getRandomValues(new Uint8Array(65536)).length, typeof crypto.randomUUID(), c.webcrypto === crypto || typeof c.webcrypto.getRandomValues === 'function']; });
t('getRandomValues.tooBig', () => { try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { return [e.name, e.code]; } });
t('getRandomValues.float', () => { try { crypto.getRandomValues(new Float32Array(2)); } catch (e) { return [e.name, e.code]; } });
// `globalThis.crypto`, read as such: `node -e` (the Node side of the test) binds a bare
// `crypto` to the module.
const wc = globalThis.crypto;
t('webcrypto.shape', () => [wc instanceof Crypto, String(wc), Object.keys(wc), Object.getOwnPropertyNames(Crypto.prototype), c.webcrypto === wc, c.subtle === wc.subtle, wc.subtle instanceof SubtleCrypto, Object.prototype.toString.call(wc.subtle), c.getRandomValues === wc.getRandomValues, c.randomUUID === wc.randomUUID]);
t('webcrypto.errors', () => [
  (() => { try { new Crypto(); } catch (e) { return [e.name, e.code, e.message]; } })(),
  (() => { try { new SubtleCrypto(); } catch (e) { return [e.name, e.code, e.message]; } })(),
  (() => { const { getRandomValues } = wc; try { getRandomValues(new Uint8Array(2)); } catch (e) { return [e.name, e.code, e.message]; } })(),
  (() => { try { wc.randomUUID.call({}); } catch (e) { return [e.name, e.code, e.message]; } })(),
  (() => { try { wc.getRandomValues(); } catch (e) { return [e.name, e.code, e.message]; } })(),
  (() => { try { wc.getRandomValues(new Float64Array(1)); } catch (e) { return [e.name, e.code, e.message, e instanceof DOMException]; } })(),
  (() => { try { wc.getRandomValues(new DataView(new ArrayBuffer(2))); } catch (e) { return [e.name, e.code, e instanceof DOMException]; } })(),
  (() => { try { wc.getRandomValues([1, 2]); } catch (e) { return [e.name, e.code]; } })(),
  (() => { try { wc.getRandomValues(new Uint8Array(65537)); } catch (e) { return [e.name, e.code, e.message, e instanceof DOMException]; } })(),
]);
t('webcrypto.kinds', () => [wc.getRandomValues(new BigInt64Array(2)).length, Buffer.isBuffer(wc.getRandomValues(Buffer.alloc(3))), wc.getRandomValues(new Uint8ClampedArray(4)).length, c.getRandomValues(new Int32Array(2)).length, (0, c.getRandomValues)(new Uint8Array(1)).length, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(wc.randomUUID(5))]);
t('timingSafeEqual', () => [c.timingSafeEqual(Buffer.from('abc'), Buffer.from('abc')), c.timingSafeEqual(Buffer.from('abc'), Buffer.from('abd')), c.timingSafeEqual(new Uint8Array(0), new Uint8Array(0)), c.timingSafeEqual(new Uint16Array([1]), new Uint8Array([1, 0]))]);
t('timingSafeEqual.length', () => c.timingSafeEqual(Buffer.alloc(2), Buffer.alloc(3)));
t('timingSafeEqual.string', () => c.timingSafeEqual('a', 'a'));

// ---- key derivation ----
t('pbkdf2Sync', () => [c.pbkdf2Sync('password', 'salt', 1, 20, 'sha1'), c.pbkdf2Sync('password', 'salt', 4096, 32, 'sha256'), c.pbkdf2Sync(Buffer.from('p'), new Uint8Array([1, 2]), 10, 100, 'sha512'), c.pbkdf2Sync('p', 's', 1, 0, 'sha1')]);
t('pbkdf2.iterations0', () => c.pbkdf2Sync('p', 's', 0, 16, 'sha1'));
t('pbkdf2.badDigest', () => c.pbkdf2Sync('p', 's', 1, 16, 'nope'));
t('pbkdf2.noDigest', () => c.pbkdf2Sync('p', 's', 1, 16));
t('pbkdf2.keylenNeg', () => c.pbkdf2Sync('p', 's', 1, -1, 'sha1'));
t('pbkdf2.passwordBad', () => c.pbkdf2Sync(5, 's', 1, 16, 'sha1'));
t('scryptSync', () => [c.scryptSync('password', 'salt', 16), c.scryptSync('p', 's', 32, { N: 1024, r: 4, p: 2 }), c.scryptSync('p', 's', 16, { cost: 256, blockSize: 2, parallelization: 1 }), c.scryptSync('', '', 8, { N: 16 })]);
t('scrypt.Nbad', () => c.scryptSync('p', 's', 16, { N: 3 }));
t('scrypt.NandCost', () => c.scryptSync('p', 's', 16, { N: 16, cost: 16 }));
t('scrypt.keylenBad', () => c.scryptSync('p', 's', -1));
t('hkdfSync', () => [c.hkdfSync('sha256', 'key', 'salt', 'info', 42), c.hkdfSync('sha512', Buffer.from('k'), '', '', 10), c.hkdfSync('sha1', c.createSecretKey(Buffer.from('k')), 's', 'i', 20), c.hkdfSync('sha256', '', 'salt', 'info', 16)]);
t('hkdf.tooLong', () => c.hkdfSync('sha256', 'k', 's', 'i', 255 * 32 + 1));
t('hkdf.badDigest', () => c.hkdfSync('nope', 'k', 's', 'i', 10));
t('hkdf.infoTooLong', () => c.hkdfSync('sha256', 'k', 's', Buffer.alloc(1025), 10));
t('hkdf.lengthBad', () => c.hkdfSync('sha256', 'k', 's', 'i', -1));

// ---- ciphers ----
const k16 = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const k32 = Buffer.concat([k16, k16]);
const iv16 = Buffer.from('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff', 'hex');
const iv12 = iv16.subarray(0, 12);
const enc = (alg, key, iv, data, opts) => { const ci = c.createCipheriv(alg, key, iv, opts); return Buffer.concat([ci.update(data), ci.final()]); };
const dec = (alg, key, iv, data, opts) => { const d = c.createDecipheriv(alg, key, iv, opts); return Buffer.concat([d.update(data), d.final()]); };
for (const [alg, key, iv] of [['aes-128-cbc', k16, iv16], ['aes-256-cbc', k32, iv16], ['aes-128-ctr', k16, iv16], ['aes-256-ctr', k32, iv16], ['aes-128-ecb', k16, null], ['aes-128-cfb', k16, iv16], ['aes-128-ofb', k16, iv16], ['des-ede3-cbc', Buffer.concat([k16, k16.subarray(0, 8)]), iv16.subarray(0, 8)], ['chacha20', k32, iv16], ['aes128', k16, iv16], ['sm4-cbc', k16, iv16]]) {
  t(`cipher.${alg}`, () => { const ct = enc(alg, key, iv, 'The quick brown fox jumps over the lazy dog'); return [ct.toString('hex'), dec(alg, key, iv, ct).toString()]; });
}
t('cipher.emptyInput', () => [enc('aes-128-cbc', k16, iv16, '').toString('hex'), enc('aes-128-ctr', k16, iv16, '').toString('hex')]);
t('cipher.outputEncodings', () => { const ci = c.createCipheriv('aes-128-cbc', k16, iv16); return [ci.update('hello world, this is longer than one block', 'utf8', 'hex'), ci.final('hex')]; });
t('cipher.base64Chunks', () => { const ci = c.createCipheriv('aes-128-ctr', k16, iv16); return [ci.update('ab', 'utf8', 'base64'), ci.update('cdefg', 'utf8', 'base64'), ci.final('base64')]; });
t('decipher.utf8Split', () => { const ct = enc('aes-128-ctr', k16, iv16, 'héllo wörld ✓'); const d = c.createDecipheriv('aes-128-ctr', k16, iv16); return [d.update(ct.subarray(0, 2), undefined, 'utf8'), d.update(ct.subarray(2, 13), undefined, 'utf8'), d.update(ct.subarray(13), undefined, 'utf8'), d.final('utf8')]; });
t('cipher.inputHex', () => { const ci = c.createCipheriv('aes-128-ecb', k16, null); return [ci.update('00112233445566778899aabbccddeeff', 'hex', 'hex'), ci.final('hex')]; });
t('cipher.noPadding', () => { const ci = c.createCipheriv('aes-128-cbc', k16, iv16).setAutoPadding(false); return Buffer.concat([ci.update(Buffer.alloc(32, 1)), ci.final()]).toString('hex'); });
t('cipher.noPaddingPartial', () => { const ci = c.createCipheriv('aes-128-cbc', k16, iv16); ci.setAutoPadding(false); ci.update(Buffer.alloc(5)); return ci.final(); });
t('decipher.wrongKey', () => dec('aes-128-cbc', Buffer.alloc(16, 9), iv16, enc('aes-128-cbc', k16, iv16, 'secret message!!')));
t('decipher.badLength', () => dec('aes-128-cbc', k16, iv16, Buffer.alloc(15)));
t('decipher.noPadding', () => { const d = c.createDecipheriv('aes-128-cbc', k16, iv16); d.setAutoPadding(false); return Buffer.concat([d.update(enc('aes-128-cbc', k16, iv16, 'abc')), d.final()]).toString('hex'); });
t('cipher.finalTwice', () => { const ci = c.createCipheriv('aes-128-cbc', k16, iv16); ci.final(); return ci.final(); });
t('cipher.updateAfterFinal', () => { const ci = c.createCipheriv('aes-128-cbc', k16, iv16); ci.final(); return ci.update('a'); });
t('cipher.setAutoPaddingAfterFinal', () => { const ci = c.createCipheriv('aes-128-cbc', k16, iv16); ci.final(); return ci.setAutoPadding(false); });
t('cipher.unknown', () => c.createCipheriv('aes-128-nope', k16, iv16));
t('cipher.keyLength', () => c.createCipheriv('aes-128-cbc', Buffer.alloc(15), iv16));
t('cipher.ivLength', () => c.createCipheriv('aes-128-cbc', k16, Buffer.alloc(15)));
t('cipher.ivNull', () => c.createCipheriv('aes-128-cbc', k16, null));
t('cipher.ivMissing', () => c.createCipheriv('aes-128-cbc', k16));
t('cipher.ecbWithIv', () => c.createCipheriv('aes-128-ecb', k16, Buffer.alloc(16)));
t('cipher.ecbEmptyIv', () => enc('aes-128-ecb', k16, Buffer.alloc(0), 'x').toString('hex'));
t('cipher.keyString', () => enc('aes-128-cbc', '0123456789abcdef', iv16, 'x').toString('hex'));
t('cipher.keyObject', () => enc('aes-128-cbc', c.createSecretKey(k16), iv16, 'x').toString('hex'));
t('cipher.badData', () => c.createCipheriv('aes-128-cbc', k16, iv16).update(5));
t('cipher.noNew', () => c.Cipheriv('aes-128-cbc', k16, iv16).final('hex'));
t('gcm', () => { const ci = c.createCipheriv('aes-256-gcm', k32, iv12); ci.setAAD(Buffer.from('header')); const ct = Buffer.concat([ci.update('gcm plaintext'), ci.final()]); const tag = ci.getAuthTag(); const d = c.createDecipheriv('aes-256-gcm', k32, iv12); d.setAAD(Buffer.from('header')); d.setAuthTag(tag); return [ct.toString('hex'), tag.toString('hex'), Buffer.concat([d.update(ct), d.final()]).toString()]; });
t('gcm.longIv', () => { const ci = c.createCipheriv('aes-128-gcm', k16, iv16); return [Buffer.concat([ci.update('x'), ci.final()]).toString('hex'), ci.getAuthTag().toString('hex')]; });
t('gcm.shortTag', () => { const ci = c.createCipheriv('aes-128-gcm', k16, iv12, { authTagLength: 8 }); const ct = Buffer.concat([ci.update('x'), ci.final()]); const tag = ci.getAuthTag(); const d = c.createDecipheriv('aes-128-gcm', k16, iv12, { authTagLength: 8 }); d.setAuthTag(tag); return [tag.length, Buffer.concat([d.update(ct), d.final()]).toString()]; });
t('gcm.tampered', () => { const ci = c.createCipheriv('aes-128-gcm', k16, iv12); const ct = Buffer.concat([ci.update('data'), ci.final()]); const tag = ci.getAuthTag(); ct[0] ^= 1; const d = c.createDecipheriv('aes-128-gcm', k16, iv12); d.setAuthTag(tag); d.update(ct); return d.final(); });
t('gcm.noTag', () => { const d = c.createDecipheriv('aes-128-gcm', k16, iv12); d.update(Buffer.alloc(4)); return d.final(); });
t('gcm.tagEarly', () => c.createCipheriv('aes-128-gcm', k16, iv12).getAuthTag());
t('gcm.badTagLength', () => c.createCipheriv('aes-128-gcm', k16, iv12, { authTagLength: 3 }));
t('gcm.emptyIv', () => c.createCipheriv('aes-128-gcm', k16, Buffer.alloc(0)));
t('gcm.aadAfterFinal', () => { const ci = c.createCipheriv('aes-128-gcm', k16, iv12); ci.final(); return ci.setAAD(Buffer.from('x')); });
t('ccm', () => { const opts = { authTagLength: 16 }; const n = iv12.subarray(0, 12); const ci = c.createCipheriv('aes-128-ccm', k16, n, opts); ci.setAAD(Buffer.from('aad'), { plaintextLength: 5 }); const ct = Buffer.concat([ci.update('hello'), ci.final()]); const tag = ci.getAuthTag(); const d = c.createDecipheriv('aes-128-ccm', k16, n, opts); d.setAuthTag(tag); d.setAAD(Buffer.from('aad'), { plaintextLength: 5 }); return [ct.toString('hex'), tag.toString('hex'), d.update(ct).toString()]; });
t('ccm.noTagLength', () => c.createCipheriv('aes-128-ccm', k16, iv12));
t('chacha20-poly1305', () => { const ci = c.createCipheriv('chacha20-poly1305', k32, iv12, { authTagLength: 16 }); ci.setAAD(Buffer.from('a')); const ct = Buffer.concat([ci.update('chacha'), ci.final()]); const tag = ci.getAuthTag(); const d = c.createDecipheriv('chacha20-poly1305', k32, iv12, { authTagLength: 16 }); d.setAAD(Buffer.from('a')); d.setAuthTag(tag); return [ct.toString('hex'), tag.toString('hex'), Buffer.concat([d.update(ct), d.final()]).toString()]; });
t('getCipherInfo', () => [c.getCipherInfo('aes-256-gcm'), c.getCipherInfo('aes-128-cbc'), c.getCipherInfo('AES-128-CTR'), c.getCipherInfo('aes-128-ecb'), c.getCipherInfo('chacha20-poly1305'), c.getCipherInfo('nope'), c.getCipherInfo('aes-128-cbc', { ivLength: 16 }).name]);
t('getCipherInfo.bad', () => c.getCipherInfo({}));

// ---- keys ----
const rsaPriv = c.createPrivateKey(KEYS.rsaPriv);
const rsaPub = c.createPublicKey(KEYS.rsaPub);
const ecPriv = c.createPrivateKey(KEYS.ecPriv);
const edPriv = c.createPrivateKey(KEYS.edPriv);
t('key.types', () => [rsaPriv.type, rsaPriv.asymmetricKeyType, rsaPub.type, ecPriv.asymmetricKeyType, edPriv.asymmetricKeyType, rsaPriv instanceof c.KeyObject, Object.prototype.toString.call(rsaPriv)]);
t('key.details', () => [rsaPriv.asymmetricKeyDetails, rsaPub.asymmetricKeyDetails, ecPriv.asymmetricKeyDetails, edPriv.asymmetricKeyDetails]);
t('key.rsaExports', () => [rsaPriv.export({ type: 'pkcs8', format: 'pem' }) === KEYS.rsaPriv, rsaPriv.export({ type: 'pkcs1', format: 'pem' }), rsaPriv.export({ type: 'pkcs8', format: 'der' }), rsaPriv.export({ type: 'pkcs1', format: 'der' }), rsaPub.export({ type: 'spki', format: 'pem' }) === KEYS.rsaPub, rsaPub.export({ type: 'pkcs1', format: 'pem' }), rsaPub.export({ type: 'spki', format: 'der' })]);
t('key.ecExports', () => [ecPriv.export({ type: 'sec1', format: 'pem' }) === KEYS.ecPriv, ecPriv.export({ type: 'pkcs8', format: 'pem' }), ecPriv.export({ type: 'sec1', format: 'der' }), c.createPublicKey(ecPriv).export({ type: 'spki', format: 'pem' })]);
t('key.edExports', () => [edPriv.export({ type: 'pkcs8', format: 'der' }), c.createPublicKey(KEYS.edPriv).export({ type: 'spki', format: 'der' })]);
t('key.jwk', () => [rsaPriv.export({ format: 'jwk' }), rsaPub.export({ format: 'jwk' }), ecPriv.export({ format: 'jwk' }), c.createPublicKey(ecPriv).export({ format: 'jwk' }), edPriv.export({ format: 'jwk' }), c.createPublicKey(edPriv).export({ format: 'jwk' })]);
t('key.fromJwk', () => [c.createPrivateKey({ key: rsaPriv.export({ format: 'jwk' }), format: 'jwk' }).equals(rsaPriv), c.createPublicKey({ key: ecPriv.export({ format: 'jwk' }), format: 'jwk' }).export({ type: 'spki', format: 'pem' }), c.createPrivateKey({ key: edPriv.export({ format: 'jwk' }), format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' }) === KEYS.edPriv]);
t('key.fromJwkBad', () => c.createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }, format: 'jwk' }));
t('key.fromJwkBadKty', () => c.createPublicKey({ key: { kty: 'XYZ' }, format: 'jwk' }));
t('key.fromDer', () => { const der = rsaPriv.export({ type: 'pkcs1', format: 'der' }); return [c.createPrivateKey({ key: der, format: 'der', type: 'pkcs1' }).equals(rsaPriv), c.createPublicKey({ key: rsaPub.export({ type: 'spki', format: 'der' }), format: 'der', type: 'spki' }).equals(rsaPub), c.createPrivateKey({ key: ecPriv.export({ type: 'sec1', format: 'der' }), format: 'der', type: 'sec1' }).equals(ecPriv)]; });
t('key.derNoType', () => c.createPrivateKey({ key: Buffer.alloc(4), format: 'der' }));
t('key.publicFromPrivatePem', () => c.createPublicKey(KEYS.rsaPriv).equals(rsaPub));
t('key.publicFromPrivateObject', () => c.createPublicKey(rsaPriv).equals(rsaPub));
t('key.publicFromPublicObject', () => c.createPublicKey(rsaPub));
t('key.privateFromObject', () => c.createPrivateKey(rsaPriv));
t('key.encrypted', () => { const pem = rsaPriv.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'top secret' }); return [pem.split('\n')[0], c.createPrivateKey({ key: pem, passphrase: 'top secret' }).equals(rsaPriv)]; });
t('key.encryptedPkcs1', () => { const pem = rsaPriv.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-128-cbc', passphrase: Buffer.from('pw') }); return [pem.split('\n').slice(0, 2), c.createPrivateKey({ key: pem, passphrase: 'pw' }).equals(rsaPriv)]; });
t('key.encryptedNoPassphrase', () => c.createPrivateKey(rsaPriv.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' })));
t('key.encryptedWrongPassphrase', () => c.createPrivateKey({ key: rsaPriv.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }), passphrase: 'y' }));
t('key.exportCipherNoPassphrase', () => rsaPriv.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc' }));
t('key.exportDerPkcs1Encrypted', () => rsaPriv.export({ type: 'pkcs1', format: 'der', cipher: 'aes-256-cbc', passphrase: 'x' }));
t('key.exportSec1ForRsa', () => rsaPriv.export({ type: 'sec1', format: 'pem' }));
t('key.exportPkcs1ForEc', () => ecPriv.export({ type: 'pkcs1', format: 'pem' }));
t('key.exportNoType', () => rsaPriv.export({ format: 'pem' }));
t('key.exportBadFormat', () => rsaPub.export({ type: 'spki', format: 'xml' }));
t('key.exportNoOptions', () => rsaPub.export());
t('key.garbagePem', () => c.createPrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'));
t('key.notAKey', () => c.createPublicKey('hello'));
t('key.badType', () => c.createPrivateKey(5));
t('key.createPrivateFromKeyObject', () => c.createPrivateKey({ key: rsaPub }));
t('key.secret', () => { const s = c.createSecretKey(Buffer.from('secret')); return [s.type, s.symmetricKeySize, s.export(), s.export({ format: 'jwk' }), s.export({ format: 'buffer' }), c.createSecretKey('736563', 'hex').export().toString(), s.equals(c.createSecretKey(Buffer.from('secret'))), s.equals(c.createSecretKey(Buffer.from('secreT'))), s.asymmetricKeyType]; });
t('key.secretBadFormat', () => c.createSecretKey(Buffer.from('s')).export({ format: 'pem' }));
t('key.secretBadInput', () => c.createSecretKey(5));
t('key.equalsMixed', () => [rsaPriv.equals(rsaPub), rsaPub.equals(c.createPublicKey(rsaPriv)), ecPriv.equals(edPriv)]);
t('key.equalsBad', () => rsaPriv.equals('x'));

// ---- signatures ----
const msg = Buffer.from('message to sign');
t('sign.rsa', () => { const s = c.sign('sha256', msg, rsaPriv); return [s.toString('hex'), c.verify('sha256', msg, rsaPub, s), c.verify('sha256', Buffer.from('other'), rsaPub, s), c.verify('sha256', msg, rsaPriv, s), c.verify('sha256', msg, KEYS.rsaPub, s)]; });
t('sign.rsaPem', () => c.sign('RSA-SHA256', msg, KEYS.rsaPriv).toString('base64'));
t('sign.createSign', () => { const s = c.createSign('SHA256'); s.update('message '); s.update('to sign'); const sig = s.sign(rsaPriv, 'hex'); const v = c.createVerify('SHA256'); v.update('message to sign'); return [sig, v.verify(rsaPub, sig, 'hex')]; });
t('sign.pss', () => { const opts = { key: rsaPriv, padding: c.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }; const s = c.sign('sha256', msg, opts); return [s.length, c.verify('sha256', msg, { key: rsaPub, padding: c.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, s), c.verify('sha256', msg, { key: rsaPub, padding: c.constants.RSA_PKCS1_PSS_PADDING }, s), c.verify('sha256', msg, rsaPub, s)]; });
t('sign.ec', () => { const s = c.sign('sha256', msg, ecPriv); const pub = c.createPublicKey(ecPriv); return [s[0], c.verify('sha256', msg, pub, s), c.verify('sha256', msg, pub, Buffer.alloc(70))]; });
t('sign.ecP1363', () => { const s = c.sign('sha256', msg, { key: ecPriv, dsaEncoding: 'ieee-p1363' }); const pub = c.createPublicKey(ecPriv); return [s.length, c.verify('sha256', msg, { key: pub, dsaEncoding: 'ieee-p1363' }, s), c.verify('sha256', msg, pub, s)]; });
t('sign.ed25519', () => { const s = c.sign(null, msg, edPriv); return [s.toString('hex'), c.verify(null, msg, c.createPublicKey(edPriv), s), c.verify(undefined, Buffer.from('x'), edPriv, s)]; });
t('sign.noKey', () => c.sign('sha256', msg));
t('sign.publicKey', () => c.sign('sha256', msg, rsaPub));
t('sign.badDigest', () => c.sign('sha257', msg, rsaPriv));
t('sign.badDsaEncoding', () => c.sign('sha256', msg, { key: ecPriv, dsaEncoding: 'x' }));
t('sign.badPadding', () => c.sign('sha256', msg, { key: rsaPriv, padding: 'x' }));
t('sign.createSignNoKey', () => c.createSign('sha256').update('x').sign());
t('sign.createSignBadAlgorithm', () => c.createSign('nope'));
t('verify.badSignatureType', () => c.verify('sha256', msg, rsaPub, 'sig'));

// ---- RSA encryption ----
t('rsa.oaep', () => { const ct = c.publicEncrypt(rsaPub, Buffer.from('secret')); return [ct.length, c.privateDecrypt(rsaPriv, ct).toString()]; });
t('rsa.oaepSha256Label', () => { const o = { oaepHash: 'sha256', oaepLabel: Buffer.from('label') }; const ct = c.publicEncrypt({ key: rsaPub, ...o }, Buffer.from('secret')); return [c.privateDecrypt({ key: rsaPriv, ...o }, ct).toString()]; });
t('rsa.oaepWrongLabel', () => { const ct = c.publicEncrypt({ key: rsaPub, oaepLabel: Buffer.from('a') }, Buffer.from('secret')); return c.privateDecrypt({ key: rsaPriv, oaepLabel: Buffer.from('b') }, ct); });
t('rsa.pkcs1Encrypt', () => { const ct = c.publicEncrypt({ key: KEYS.rsaPub, padding: c.constants.RSA_PKCS1_PADDING }, Buffer.from('x')); return ct.length; });
t('rsa.pkcs1DecryptRefused', () => c.privateDecrypt({ key: rsaPriv, padding: c.constants.RSA_PKCS1_PADDING }, Buffer.alloc(128)));
t('rsa.privateEncrypt', () => { const ct = c.privateEncrypt(rsaPriv, Buffer.from('signed blob')); return [ct.toString('hex'), c.publicDecrypt(rsaPub, ct).toString(), c.publicDecrypt(rsaPriv, ct).toString()]; });
t('rsa.tooLarge', () => c.publicEncrypt(rsaPub, Buffer.alloc(200)));
t('rsa.decryptGarbage', () => c.privateDecrypt(rsaPriv, Buffer.alloc(128, 1)));
t('rsa.privateEncryptWithPublic', () => c.privateEncrypt(rsaPub, Buffer.from('x')));

// ---- key generation and agreement ----
t('gen.rsa', () => { const { publicKey, privateKey } = c.generateKeyPairSync('rsa', { modulusLength: 1024, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }); const s = c.sign('sha256', msg, privateKey); return [publicKey.split('\n')[0], privateKey.split('\n')[0], c.verify('sha256', msg, publicKey, s), c.createPrivateKey(privateKey).asymmetricKeyDetails]; });
t('gen.rsaObjects', () => { const { publicKey, privateKey } = c.generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 3 }); return [publicKey.type, privateKey.type, privateKey.asymmetricKeyDetails]; });
t('gen.rsaPss', () => { const { privateKey } = c.generateKeyPairSync('rsa-pss', { modulusLength: 1024 }); return [privateKey.asymmetricKeyType, privateKey.asymmetricKeyDetails.modulusLength]; });
t('gen.ec', () => { const { publicKey, privateKey } = c.generateKeyPairSync('ec', { namedCurve: 'P-384' }); return [publicKey.asymmetricKeyDetails, privateKey.export({ format: 'jwk' }).crv, c.verify('sha384', msg, publicKey, c.sign('sha384', msg, privateKey))]; });
t('gen.ecNamed', () => c.generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.asymmetricKeyDetails);
t('gen.okp', () => ['ed25519', 'ed448', 'x25519', 'x448'].map((type) => { const { publicKey, privateKey } = c.generateKeyPairSync(type); return [publicKey.asymmetricKeyType, publicKey.export({ type: 'spki', format: 'der' }).length, privateKey.export({ type: 'pkcs8', format: 'der' }).length]; }));
t('gen.dsa', () => { const { publicKey, privateKey } = c.generateKeyPairSync('dsa', { modulusLength: 1024 }); return [publicKey.asymmetricKeyDetails, c.verify('sha256', msg, publicKey, c.sign('sha256', msg, privateKey))]; });
t('gen.badType', () => c.generateKeyPairSync('nope', {}));
t('gen.ecNoCurve', () => c.generateKeyPairSync('ec', {}));
t('gen.ecBadCurve', () => c.generateKeyPairSync('ec', { namedCurve: 'nope' }));
t('gen.rsaNoLength', () => c.generateKeyPairSync('rsa', {}));
t('gen.rsaNoOptions', () => c.generateKeyPairSync('rsa'));
t('gen.badEncoding', () => c.generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'pkcs8', format: 'pem' } }));
t('gen.badPrivateEncoding', () => c.generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'spki', format: 'pem' } }));
t('gen.pkcs1ForEc', () => c.generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs1', format: 'pem' } }));
t('gen.secret', () => [c.generateKeySync('hmac', { length: 64 }).symmetricKeySize, c.generateKeySync('aes', { length: 256 }).symmetricKeySize]);
t('gen.secretBad', () => c.generateKeySync('aes', { length: 100 }));
t('dh.x25519', () => { const a = c.createPrivateKey(KEYS.x1); const b = c.createPrivateKey(KEYS.x2); const s1 = c.diffieHellman({ privateKey: a, publicKey: c.createPublicKey(b) }); const s2 = c.diffieHellman({ privateKey: b, publicKey: c.createPublicKey(a) }); return [s1.toString('hex'), s1.equals(s2)]; });
t('dh.ec', () => { const a = c.generateKeyPairSync('ec', { namedCurve: 'P-256' }); const b = c.generateKeyPairSync('ec', { namedCurve: 'P-256' }); return c.diffieHellman({ privateKey: a.privateKey, publicKey: b.publicKey }).equals(c.diffieHellman({ privateKey: b.privateKey, publicKey: a.publicKey })); });
t('dh.mismatch', () => c.diffieHellman({ privateKey: c.createPrivateKey(KEYS.x1), publicKey: c.createPublicKey(ecPriv) }));

// ---- callbacks and Web Crypto (a code block may return a promise) ----
return (async () => {
  await ta('async.randomBytes', async () => (await cb((f) => c.randomBytes(8, f))).length);
  await ta('async.randomFill', async () => (await cb((f) => c.randomFill(new Uint8Array(4), f))).length);
  await ta('async.randomInt', async () => { const n = await cb((f) => c.randomInt(10, f)); return n >= 0 && n < 10; });
  await ta('async.pbkdf2', async () => await cb((f) => c.pbkdf2('p', 's', 10, 16, 'sha256', f)));
  await ta('async.scrypt', async () => await cb((f) => c.scrypt('p', 's', 16, f)));
  await ta('async.scryptOptions', async () => await cb((f) => c.scrypt('p', 's', 16, { N: 32 }, f)));
  await ta('async.hkdf', async () => await cb((f) => c.hkdf('sha256', 'k', 's', 'i', 16, f)));
  await ta('async.sign', async () => (await cb((f) => c.sign('sha256', msg, rsaPriv, f))).toString('hex'));
  await ta('async.verify', async () => await cb((f) => c.verify(null, msg, c.createPublicKey(edPriv), c.sign(null, msg, edPriv), f)));
  await ta('async.generateKeyPair', async () => { const [pub, priv] = await cb((f) => c.generateKeyPair('ed25519', {}, f)); return [pub.type, priv.type]; });
  await ta('async.generateKeyPairPem', async () => { const [pub] = await cb((f) => c.generateKeyPair('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' } }, f)); return pub.split('\n')[0]; });
  await ta('async.generateKey', async () => (await cb((f) => c.generateKey('hmac', { length: 128 }, f))).symmetricKeySize);
  t('async.pbkdf2NoCallback', () => c.pbkdf2('p', 's', 1, 16, 'sha1'));
  t('async.pbkdf2BadDigestThrows', () => c.pbkdf2('p', 's', 1, 16, 'nope', () => {}));
  await ta('subtle.digest', async () => [await crypto.subtle.digest('SHA-256', Buffer.from('abc')), await crypto.subtle.digest({ name: 'sha-1' }, new Uint8Array([1, 2])), await c.subtle.digest('SHA-512', new ArrayBuffer(0))]);
  await ta('subtle.digestBad', async () => { try { await crypto.subtle.digest('MD5', Buffer.from('x')); } catch (e) { return e.name; } });
  return out;
})();
