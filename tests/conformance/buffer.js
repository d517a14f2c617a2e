// Conformance: Buffer (global and require('buffer')), from Node 20's documentation.
// A code-block body: run as is by keel and wrapped in an async function by Node; both must
// return the same JSON (tests/e2e/node_compat.rs). Each case records a value or the error
// (name, code, message) it threw.
const { Buffer: B, constants, kMaxLength, kStringMaxLength, isUtf8, isAscii, transcode } = require('buffer');
const out = {};
const hex = (b) => (b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') : b);
function t(name, fn) {
  try {
    let v = fn();
    if (v instanceof Uint8Array) v = { hex: hex(v), isBuffer: Buffer.isBuffer(v), length: v.length };
    if (typeof v === 'bigint') v = `${v}n`;
    // Non-integers as text: keel's JSON result path re-parses numbers (last-digit drift).
    if (typeof v === 'number' && !Number.isSafeInteger(v)) v = String(v);
    if (Object.is(v, -0)) v = '-0';
    out[name] = v === undefined ? '(undefined)' : v;
  } catch (e) {
    out[name] = { threw: e.name, code: e.code, message: e.message };
  }
}

// ---- module and class shape ----
t('module.same', () => B === Buffer && require('node:buffer').Buffer === Buffer);
t('module.keys', () => ['Buffer', 'SlowBuffer', 'transcode', 'isUtf8', 'isAscii', 'kMaxLength', 'kStringMaxLength', 'btoa', 'atob', 'constants', 'INSPECT_MAX_BYTES'].map((k) => k in require('buffer')));
t('constants', () => [constants.MAX_LENGTH, constants.MAX_STRING_LENGTH, kMaxLength, kStringMaxLength]);
t('class.uint8', () => [Buffer.alloc(1) instanceof Uint8Array, Buffer.alloc(1).constructor === Buffer, Object.getPrototypeOf(Buffer) === Uint8Array, Buffer.poolSize]);
t('class.noNew', () => hex(Buffer('abc')));
t('class.noNewNumber', () => Buffer(3).length);
t('class.species', () => { const m = Buffer.from([1, 2, 3]).map((x) => x * 2); return [Buffer.isBuffer(m), hex(m)]; });
t('class.filter', () => Buffer.isBuffer(Buffer.from([1, 2]).filter(() => true)));
t('isBuffer', () => [Buffer.isBuffer(Buffer.alloc(0)), Buffer.isBuffer(new Uint8Array(2)), Buffer.isBuffer('x'), Buffer.isBuffer(null)]);
t('isEncoding', () => ['utf8', 'UTF-8', 'ucs2', 'UCS-2', 'utf16le', 'utf-16le', 'latin1', 'binary', 'base64', 'BASE64URL', 'hex', 'ascii', 'utf32', '', null, 1].map((e) => Buffer.isEncoding(e)));

// ---- Buffer.from ----
const sample = 'héllo wörld ✓ 😀';
for (const enc of ['utf8', 'utf16le', 'latin1', 'ascii', 'base64', 'base64url', 'hex', 'binary', 'ucs2']) {
  t(`from.${enc}`, () => Buffer.from(sample, enc));
  t(`toString.${enc}`, () => Buffer.from(sample).toString(enc));
}
t('from.loneSurrogate', () => Buffer.from('a\ud800b\udc00'));
t('from.surrogatePair', () => Buffer.from('\ud83d\ude00'));
t('toString.invalidUtf8', () => Buffer.from([0x61, 0xff, 0xc3, 0x28, 0xe2, 0x82, 0xf0, 0x9f, 0x98, 0x62]).toString());
t('toString.ascii.high', () => Buffer.from([0xe9, 0x41, 0xff, 0x80]).toString('ascii'));
t('toString.latin1.high', () => Buffer.from([0xe9, 0x41, 0xff]).toString('latin1'));
t('toString.ucs2.odd', () => Buffer.from([0x61, 0, 0x62]).toString('ucs2'));
t('base64.lenient', () => ['aGVsbG8=', 'aGVsbG8', 'QR==', ' Q Q = = Q', 'QQ==QQ==', '_-_-', '/+/+', 'Q', 'aGVs\nbG8=', 'a.G.V.s', '====', '', 'aGVsbG8===', 'YQ', 'YWI', '\u0141\u0141'].map((s) => hex(Buffer.from(s, 'base64'))));
t('base64url.lenient', () => ['aGVsbG8', '_-_-', '/+/+', 'YQ=='].map((s) => hex(Buffer.from(s, 'base64url'))));
t('base64.encodeLengths', () => [0, 1, 2, 3, 4, 5].map((n) => Buffer.alloc(n, 0xfb).toString('base64')));
t('base64url.encodeLengths', () => [0, 1, 2, 3, 4, 5].map((n) => Buffer.alloc(n, 0xfb).toString('base64url')));
t('hex.lenient', () => ['abcx1', 'zz', 'ABCDEF', 'abc', '0g', ''].map((s) => hex(Buffer.from(s, 'hex'))));
t('from.unknownEncoding', () => Buffer.from('abc', 'utf9'));
t('from.encodingNotString', () => hex(Buffer.from('abc', 5)));
t('from.array', () => Buffer.from([1, 256, -1, 3.7, '4', 'x', null]));
t('from.arrayLike', () => Buffer.from({ length: 3, 0: 7, 1: 8, 2: 9 }));
t('from.json', () => Buffer.from({ type: 'Buffer', data: [1, 2, 3] }));
t('from.jsonRoundTrip', () => Buffer.from(JSON.parse(JSON.stringify(Buffer.from('hi')))).toString());
t('from.buffer', () => { const a = Buffer.from('ab'); const b = Buffer.from(a); b[0] = 0x7a; return [a.toString(), b.toString()]; });
t('from.typedArray', () => Buffer.from(new Uint16Array([0x1234, 0xff01])));
t('from.arrayBufferShares', () => { const ab = new ArrayBuffer(8); const b = Buffer.from(ab, 2, 4); new Uint8Array(ab)[3] = 9; return [b.length, b.byteOffset, b[1]]; });
t('from.arrayBufferOffsetOnly', () => Buffer.from(new ArrayBuffer(8), 6).length);
t('from.arrayBufferNaNOffset', () => Buffer.from(new ArrayBuffer(4), NaN).length);
t('from.arrayBufferNegLength', () => Buffer.from(new ArrayBuffer(4), 0, -3).length);
t('from.arrayBufferBadOffset', () => Buffer.from(new ArrayBuffer(4), 5));
t('from.arrayBufferBadLength', () => Buffer.from(new ArrayBuffer(4), 1, 4));
t('from.number', () => Buffer.from(5));
t('from.null', () => Buffer.from(null));
t('from.undefined', () => Buffer.from());
t('from.symbol', () => Buffer.from(Symbol('s')));
t('from.valueOf', () => Buffer.from(new String('xyz')));
t('from.toPrimitive', () => Buffer.from({ [Symbol.toPrimitive]() { return 'prim'; } }));
t('from.objectNoLength', () => Buffer.from({}));
t('of', () => Buffer.of(1, 2, 300));
t('copyBytesFrom', () => [hex(Buffer.copyBytesFrom(new Uint16Array([1, 2, 3]), 1)), hex(Buffer.copyBytesFrom(new Uint8Array([1, 2, 3]), 1, 1)), Buffer.copyBytesFrom(new Uint8Array(2), 5).length]);
t('copyBytesFrom.bad', () => Buffer.copyBytesFrom([1, 2]));

// ---- alloc ----
t('alloc.zero', () => Buffer.alloc(4));
t('alloc.fillNumber', () => Buffer.alloc(4, 257));
t('alloc.fillString', () => Buffer.alloc(5, 'ab'));
t('alloc.fillHex', () => Buffer.alloc(5, 'aabb', 'hex'));
t('alloc.fillBase64', () => Buffer.alloc(4, 'AQI=', 'base64'));
t('alloc.fillBuffer', () => Buffer.alloc(5, Buffer.from([1, 2])));
t('alloc.fillMultibyte', () => Buffer.alloc(2, '€'));
t('alloc.fillBadHex', () => Buffer.alloc(4, 'zz', 'hex'));
t('alloc.fillEmptyString', () => Buffer.alloc(3, ''));
t('alloc.fillBadEncoding', () => Buffer.alloc(3, 'a', 'nope'));
t('alloc.negative', () => Buffer.alloc(-1));
t('alloc.NaN', () => Buffer.alloc(NaN));
t('alloc.string', () => Buffer.alloc('5'));
t('alloc.fraction', () => Buffer.alloc(2.5).length);
t('alloc.tooBig', () => Buffer.alloc(2 ** 33));
t('allocUnsafe', () => [Buffer.allocUnsafe(10).length, Buffer.allocUnsafeSlow(3).length, Buffer.isBuffer(Buffer.allocUnsafe(0))]);
t('allocUnsafe.bad', () => Buffer.allocUnsafe(-5));

// ---- byteLength / concat / compare / equals ----
t('byteLength', () => [Buffer.byteLength(sample), Buffer.byteLength(sample, 'utf16le'), Buffer.byteLength(sample, 'latin1'), Buffer.byteLength('aGVsbG8=', 'base64'), Buffer.byteLength('aGVsbG8', 'base64url'), Buffer.byteLength('abcd', 'hex'), Buffer.byteLength('abc', 'hex'), Buffer.byteLength('x', 'bogus'), Buffer.byteLength(new ArrayBuffer(7)), Buffer.byteLength(new Uint32Array(3)), Buffer.byteLength(new DataView(new ArrayBuffer(5))), Buffer.byteLength('\ud800')]);
t('byteLength.bad', () => Buffer.byteLength(5));
t('concat', () => Buffer.concat([Buffer.from('ab'), new Uint8Array([0x63]), Buffer.from('d')]));
t('concat.shorter', () => Buffer.concat([Buffer.from('abc'), Buffer.from('def')], 4));
t('concat.longer', () => Buffer.concat([Buffer.from('ab')], 5));
t('concat.empty', () => Buffer.concat([]));
t('concat.badItem', () => Buffer.concat([Buffer.from('a'), 'b']));
t('concat.notArray', () => Buffer.concat('ab'));
t('concat.badLength', () => Buffer.concat([Buffer.from('a')], -1));
t('compare.static', () => [Buffer.compare(Buffer.from('a'), Buffer.from('b')), Buffer.compare(Buffer.from('b'), Buffer.from('a')), Buffer.compare(Buffer.from('ab'), Buffer.from('a')), Buffer.compare(Buffer.from(''), Buffer.from('')), [Buffer.from('c'), Buffer.from('a'), Buffer.from('b')].sort(Buffer.compare).map(String)]);
t('compare.staticBad', () => Buffer.compare('a', Buffer.from('a')));
t('compare.ranges', () => { const a = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9]); const b = Buffer.from([5, 6, 7, 8, 9, 1, 2, 3, 4]); return [a.compare(b, 5, 9, 0, 4), a.compare(b, 0, 6, 4), a.compare(b, 5, 6, 5), a.compare(b, 0, 0, 0, 0), a.compare(b, 3, 3, 0, 1), a.compare(b, 0, 1, 3, 3)]; });
t('compare.rangeBad', () => Buffer.from('a').compare(Buffer.from('b'), 0, 5));
t('compare.rangeNeg', () => Buffer.from('a').compare(Buffer.from('b'), -1));
t('compare.rangeString', () => Buffer.from('a').compare(Buffer.from('b'), '1'));
t('compare.targetBad', () => Buffer.from('a').compare('a'));
t('equals', () => [Buffer.from('abc').equals(Buffer.from('abc')), Buffer.from('abc').equals(new Uint8Array([97, 98, 99])), Buffer.from('abc').equals(Buffer.from('abd')), Buffer.alloc(0).equals(Buffer.alloc(0))]);
t('equals.bad', () => Buffer.from('a').equals('a'));

// ---- search ----
const hay = Buffer.from('this is a buffer, a buffer!');
t('indexOf.string', () => [hay.indexOf('buffer'), hay.indexOf('buffer', 11), hay.indexOf('buffer', -10), hay.indexOf('buffer', -100), hay.indexOf('nope'), hay.indexOf(''), hay.indexOf('', 5), hay.indexOf('', 100), hay.indexOf('a', NaN), hay.indexOf('a', '5'), hay.indexOf('a', {}), hay.indexOf('a', null), hay.indexOf('a', 2.9)]);
t('lastIndexOf.string', () => [hay.lastIndexOf('buffer'), hay.lastIndexOf('buffer', 15), hay.lastIndexOf('buffer', -5), hay.lastIndexOf('buffer', -100), hay.lastIndexOf(''), hay.lastIndexOf('', 3), hay.lastIndexOf('a', NaN), hay.lastIndexOf('a', null), hay.lastIndexOf('t', 0)]);
t('indexOf.number', () => [hay.indexOf(0x61), hay.indexOf(0x61 + 256), hay.indexOf(-159), hay.indexOf(97, -3), hay.lastIndexOf(97), hay.lastIndexOf(97, 9), hay.indexOf(1000), hay.indexOf(97.5)]);
t('indexOf.buffer', () => [hay.indexOf(Buffer.from('a b')), hay.indexOf(new Uint8Array([0x62, 0x75])), hay.lastIndexOf(Buffer.from('buf')), hay.indexOf(Buffer.alloc(0)), hay.indexOf(Buffer.from('zzz'))]);
t('indexOf.encodings', () => [hay.indexOf('62756666', 'hex'), hay.indexOf('YnVm', 'base64'), hay.indexOf('buffer', 0, 'latin1'), hay.indexOf('buffer', 'ascii'), Buffer.from('a\u00e9b', 'latin1').indexOf('\u00e9', 'latin1')]);
t('indexOf.ucs2', () => { const u = Buffer.from('ab\u00e9cd\u00e9', 'ucs2'); return [u.indexOf('\u00e9', 'ucs2'), u.lastIndexOf('\u00e9', 'ucs2'), u.indexOf('cd', 3, 'ucs2'), u.indexOf(Buffer.from('c', 'ucs2'), 'ucs2'), Buffer.from('abcde').indexOf(Buffer.from('zz'), 0, 'ucs2'), Buffer.from('abcde').indexOf('zz', 0, 'ucs2')]; });
t('indexOf.badEncoding', () => hay.indexOf('a', 0, 'nope'));
t('indexOf.badValue', () => hay.indexOf({}));
t('includes', () => [hay.includes('buffer'), hay.includes('buffer', 22), hay.includes(0x21), hay.includes(Buffer.from('xyz'))]);

// ---- fill / copy / slice ----
t('fill.range', () => Buffer.alloc(6).fill('ab', 1, 5));
t('fill.encodingAsOffset', () => Buffer.alloc(4).fill('6162', 'hex'));
t('fill.encodingAsEnd', () => Buffer.alloc(4).fill('YQ==', 1, 'base64'));
t('fill.numberMod', () => Buffer.alloc(3).fill(-1));
t('fill.boolean', () => Buffer.alloc(3).fill(true));
t('fill.ucs2', () => Buffer.alloc(5).fill('\u0102', 'ucs2'));
t('fill.offsetBad', () => Buffer.alloc(3).fill(1, -1));
t('fill.endBad', () => Buffer.alloc(3).fill(1, 0, 4));
t('fill.offsetGtEnd', () => Buffer.alloc(3).fill(1, 2, 1));
t('fill.offsetString', () => Buffer.alloc(3).fill(1, '1'));
t('fill.badEncoding', () => Buffer.alloc(3).fill('a', 0, 3, 'bad'));
t('fill.badEncodingType', () => Buffer.alloc(3).fill('a', 0, 3, 7));
t('fill.invalidValue', () => Buffer.alloc(3).fill('zz', 'hex'));
t('fill.emptyBuffer', () => Buffer.alloc(3).fill(Buffer.alloc(0)));
t('copy', () => { const src = Buffer.from('abcdef'); const dst = Buffer.alloc(4, 0x2e); const n = src.copy(dst, 1, 2); return [n, dst.toString()]; });
t('copy.defaults', () => { const dst = Buffer.alloc(3); return [Buffer.from('xyz!').copy(dst), dst.toString()]; });
t('copy.overlap', () => { const b = Buffer.from('abcdef'); b.copy(b, 2, 0, 4); return b.toString(); });
t('copy.coercions', () => { const dst = Buffer.alloc(4, 0x2e); return [Buffer.from('abcd').copy(dst, '1', 1.7, '3'), dst.toString()]; });
t('copy.targetStartBad', () => Buffer.from('a').copy(Buffer.alloc(1), -1));
t('copy.sourceStartBad', () => Buffer.from('a').copy(Buffer.alloc(1), 0, 5));
t('copy.sourceEndBad', () => Buffer.from('a').copy(Buffer.alloc(1), 0, 0, -1));
t('copy.targetPastEnd', () => Buffer.from('ab').copy(Buffer.alloc(2), 5));
t('copy.badTarget', () => Buffer.from('a').copy([]));
t('slice', () => { const b = Buffer.from('abcdef'); return [b.slice(1, 3).toString(), b.slice(-2).toString(), b.slice(-10, 2).toString(), b.slice(4, 2).length, b.slice(NaN, 2).toString(), b.slice(1, NaN).length, b.slice('1', '3').toString(), b.slice(2.9).toString(), b.subarray(1, -1).toString(), b.slice(0, 100).toString()]; });
t('slice.shares', () => { const b = Buffer.from('abc'); b.slice(1)[0] = 0x7a; b.subarray(2)[0] = 0x79; return b.toString(); });
t('slice.byteOffset', () => { const b = Buffer.from('abcdef').subarray(2); return [b.subarray(1).toString(), b.readUInt8(0), b.toString('hex', 1, 3)]; });

// ---- swap ----
t('swap16', () => Buffer.from([1, 2, 3, 4]).swap16());
t('swap32', () => Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]).swap32());
t('swap64', () => Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]).swap64());
t('swap16.large', () => hex(Buffer.alloc(256).fill(Buffer.from([1, 2])).swap16().subarray(0, 6)));
t('swap64.large', () => hex(Buffer.from(Array.from({ length: 256 }, (_, i) => i)).swap64().subarray(0, 16)));
t('swap16.bad', () => Buffer.alloc(3).swap16());
t('swap32.bad', () => Buffer.alloc(6).swap32());
t('swap64.bad', () => Buffer.alloc(12).swap64());

// ---- toJSON / iteration / toString ranges ----
t('toJSON', () => Buffer.from([1, 2, 255]).toJSON());
t('toJSON.empty', () => Buffer.alloc(0).toJSON());
t('JSON.stringify', () => JSON.stringify({ b: Buffer.from('hi') }));
t('iterate', () => [[...Buffer.from('ab')], [...Buffer.from('ab').keys()], [...Buffer.from('ab').values()], [...Buffer.from('ab').entries()]]);
t('forOf', () => { const r = []; for (const x of Buffer.from([5, 6])) r.push(x); return r; });
t('toString.ranges', () => { const b = Buffer.from('abcdef'); return [b.toString('utf8', 1, 3), b.toString(undefined, 2), b.toString('hex', -5, 2), b.toString('utf8', 4, 2), b.toString('utf8', 10), b.toString('utf8', 1.9, 3.9), b.toString('utf8', NaN, 2), b.toString('utf8', 1, NaN), b.toString('utf8', '1', '3'), b.toString('utf8', 0, 100), b.toString(null)]; });
t('toString.badEncoding', () => Buffer.from('a').toString('nope'));
t('toString.badEncodingNoRange', () => Buffer.from('a').toString('utf-9', 0, 1));
t('toLocaleString', () => Buffer.from('hi').toLocaleString());
t('inspect', () => Buffer.from('hi')[Symbol.for('nodejs.util.inspect.custom')]());
t('inspect.long', () => Buffer.alloc(60)[Symbol.for('nodejs.util.inspect.custom')]());
t('parent', () => { const b = Buffer.from('hello'); return [b.parent === b.buffer, b.offset === b.byteOffset]; });

// ---- write ----
t('write.basic', () => { const b = Buffer.alloc(8, 0x2e); return [b.write('héllo'), b.toString('latin1')]; });
t('write.offset', () => { const b = Buffer.alloc(6, 0x2e); return [b.write('ab', 2), b.toString()]; });
t('write.offsetLength', () => { const b = Buffer.alloc(6, 0x2e); return [b.write('abcdef', 1, 2), b.toString()]; });
t('write.encoding', () => { const b = Buffer.alloc(6, 0x2e); return [b.write('6162', 'hex'), b.write('YWJj', 3, 'base64'), b.toString()]; });
t('write.offsetLengthEncoding', () => { const b = Buffer.alloc(6, 0x2e); return [b.write('ffff', 1, 1, 'hex'), hex(b)]; });
t('write.partialChar', () => { const b = Buffer.alloc(4, 0x2e); return [b.write('ab€'), hex(b)]; });
t('write.ucs2Odd', () => { const b = Buffer.alloc(5, 0x2e); return [b.write('abc', 'ucs2'), hex(b)]; });
t('write.latin1Wide', () => { const b = Buffer.alloc(3); return [b.write('\u0141\u00e9x', 'latin1'), hex(b)]; });
t('write.badHex', () => { const b = Buffer.alloc(3); return [b.write('zz', 'hex'), b.write('1z', 'hex'), b.write('abc', 'hex')]; });
t('write.notString', () => Buffer.alloc(4).write(5));
t('write.offsetBad', () => Buffer.alloc(4).write('a', 5));
t('write.offsetNeg', () => Buffer.alloc(4).write('a', -1));
t('write.lengthBad', () => Buffer.alloc(4).write('a', 0, 5));
t('write.badEncoding', () => Buffer.alloc(4).write('a', 0, 1, 'nope'));
t('write.atEnd', () => Buffer.alloc(4).write('abc', 4));
t('utf8Write.direct', () => { const b = Buffer.alloc(4); return [b.utf8Write('xyz', 1), b.latin1Write('q'), b.toString()]; });
t('utf8Slice.direct', () => Buffer.from('abcd').utf8Slice(1, 3));
t('utf8Slice.negative', () => Buffer.from('abcd').utf8Slice(-1));
t('utf8Slice.pastEnd', () => Buffer.from('abcd').utf8Slice(0, 9));
t('hexSlice.reversed', () => Buffer.from('abcd').hexSlice(3, 1));

// ---- numbers ----
const nb = Buffer.from([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x80]);
const readers = ['readUInt8', 'readInt8', 'readUInt16LE', 'readUInt16BE', 'readInt16LE', 'readInt16BE', 'readUInt32LE', 'readUInt32BE', 'readInt32LE', 'readInt32BE', 'readFloatLE', 'readFloatBE', 'readDoubleLE', 'readDoubleBE', 'readBigUInt64LE', 'readBigUInt64BE', 'readBigInt64LE', 'readBigInt64BE', 'readUint8', 'readUint16LE', 'readUint32BE', 'readBigUint64LE'];
for (const r of readers) {
  t(`${r}.at0`, () => nb[r](0));
  t(`${r}.at8`, () => nb[r](8));
  t(`${r}.default`, () => nb[r]());
  t(`${r}.pastEnd`, () => nb[r](15));
  t(`${r}.negative`, () => nb[r](-1));
  t(`${r}.fraction`, () => nb[r](1.5));
  t(`${r}.string`, () => nb[r]('1'));
  t(`${r}.NaN`, () => nb[r](NaN));
}
t('readUInt8.empty', () => Buffer.alloc(0).readUInt8());
t('readInt32LE.short', () => Buffer.alloc(3).readInt32LE(0));
for (const bl of [1, 2, 3, 4, 5, 6]) {
  t(`readUIntLE.${bl}`, () => nb.readUIntLE(8, bl));
  t(`readUIntBE.${bl}`, () => nb.readUIntBE(8, bl));
  t(`readIntLE.${bl}`, () => nb.readIntLE(8, bl));
  t(`readIntBE.${bl}`, () => nb.readIntBE(8, bl));
}
t('readUIntLE.badLength', () => nb.readUIntLE(0, 7));
t('readIntBE.zeroLength', () => nb.readIntBE(0, 0));
t('readUIntBE.noLength', () => nb.readUIntBE(0));
t('readIntLE.pastEnd', () => nb.readIntLE(14, 3));

const writers = [
  ['writeUInt8', [0, 255, 256, -1, 1.7, '7']],
  ['writeInt8', [-128, 127, 128, -129, -1.5]],
  ['writeUInt16LE', [0xabcd, 65536, -1]], ['writeUInt16BE', [0xabcd]], ['writeInt16LE', [-2, 32768]], ['writeInt16BE', [-32768]],
  ['writeUInt32LE', [0xdeadbeef, 2 ** 32, -1]], ['writeUInt32BE', [0xdeadbeef]], ['writeInt32LE', [-2, 2 ** 31]], ['writeInt32BE', [-(2 ** 31)]],
  ['writeFloatLE', [1.5, NaN, -0, Infinity, 3.4e39, 1e-46]], ['writeFloatBE', [-1.25]], ['writeDoubleLE', [Math.PI, NaN, -0, -Infinity]], ['writeDoubleBE', [1e300]],
  ['writeBigUInt64LE', [0xfedcba9876543210n, 2n ** 64n, -1n, 5]], ['writeBigUInt64BE', [1n]], ['writeBigInt64LE', [-2n, 2n ** 63n]], ['writeBigInt64BE', [-(2n ** 63n)]],
  ['writeUint16LE', [7]], ['writeUint32BE', [7]], ['writeBigUint64BE', [7n]],
];
for (const [w, values] of writers) {
  values.forEach((v, i) => {
    t(`${w}.${i}`, () => { const b = Buffer.alloc(10, 0xee); const r = b[w](v, 1); return [r, hex(b)]; });
  });
  t(`${w}.offsetBad`, () => Buffer.alloc(8)[w](typeof writers.find((x) => x[0] === w)[1][0] === 'bigint' ? 1n : 1, 9));
  t(`${w}.offsetFraction`, () => Buffer.alloc(10)[w](typeof writers.find((x) => x[0] === w)[1][0] === 'bigint' ? 1n : 1, 0.5));
}
t('writeUInt8.noValue', () => { const b = Buffer.alloc(2, 1); return [b.writeUInt8(), hex(b)]; });
t('writeUInt32LE.string', () => { const b = Buffer.alloc(4); return [b.writeUInt32LE('258'), hex(b)]; });
for (const bl of [1, 2, 3, 4, 5, 6]) {
  t(`writeUIntLE.${bl}`, () => { const b = Buffer.alloc(8); return [b.writeUIntLE(0x0a0b0c0d0e0f % 2 ** (8 * bl), 1, bl), hex(b)]; });
  t(`writeUIntBE.${bl}`, () => { const b = Buffer.alloc(8); return [b.writeUIntBE(0x0a0b0c0d0e0f % 2 ** (8 * bl), 1, bl), hex(b)]; });
  t(`writeIntLE.${bl}`, () => { const b = Buffer.alloc(8); return [b.writeIntLE(-5, 1, bl), hex(b)]; });
  t(`writeIntBE.${bl}`, () => { const b = Buffer.alloc(8); return [b.writeIntBE(-5, 1, bl), hex(b)]; });
  t(`writeUIntLE.range${bl}`, () => Buffer.alloc(8).writeUIntLE(2 ** (8 * bl), 0, bl));
  t(`writeIntBE.range${bl}`, () => Buffer.alloc(8).writeIntBE(-(2 ** (8 * bl - 1)) - 1, 0, bl));
}
t('writeUIntLE.badLength', () => Buffer.alloc(8).writeUIntLE(1, 0, 7));
t('writeIntLE.pastEnd', () => Buffer.alloc(4).writeIntLE(1, 2, 3));
t('float.roundTrip', () => { const b = Buffer.alloc(8); b.writeDoubleLE(0.1 + 0.2); b.writeFloatBE(0.1, 4); return [b.readDoubleLE(0) === 0.1 + 0.2 ? 'overlap' : b.readFloatBE(4)]; });

// ---- other module functions ----
t('isUtf8', () => [isUtf8(Buffer.from('héllo')), isUtf8(Buffer.from([0xff])), isUtf8(new ArrayBuffer(2)), isUtf8(Buffer.alloc(0))]);
t('isAscii', () => [isAscii(Buffer.from('hello')), isAscii(Buffer.from('héllo')), isAscii(new Uint16Array([0x4141]))]);
t('isUtf8.bad', () => isUtf8('x'));
t('transcode', () => [hex(transcode(Buffer.from('€a'), 'utf8', 'ucs2')), transcode(Buffer.from('héllo€'), 'utf8', 'ascii').toString(), transcode(Buffer.from('héllo€'), 'utf8', 'latin1').toString('latin1'), transcode(Buffer.from('hi', 'ucs2'), 'ucs2', 'utf8').toString()]);
t('transcode.bad', () => transcode(Buffer.from('a'), 'utf8', 'hex'));
t('btoa.atob', () => [require('buffer').btoa('hi'), require('buffer').atob('aGk=')]);
t('INSPECT_MAX_BYTES', () => require('buffer').INSPECT_MAX_BYTES);
t('SlowBuffer', () => [require('buffer').SlowBuffer(2).length, require('buffer').SlowBuffer(2) instanceof Uint8Array]);
return out;
