// The bundled npm modules against the same packages under Node: dayjs with its common
// plugins, fast-xml-parser, xlsx (in memory), sm-crypto-v2, and the reference's original
// seven. Deterministic inputs only; random outputs are checked by round trip.
const out = {};

// ---- dayjs ----
const dayjs = require('dayjs');
dayjs.extend(require('dayjs/plugin/utc'));
dayjs.extend(require('dayjs/plugin/timezone'));
dayjs.extend(require('dayjs/plugin/relativeTime'));
dayjs.extend(require('dayjs/plugin/customParseFormat'));
dayjs.extend(require('dayjs/plugin/duration'));
dayjs.extend(require('dayjs/plugin/isBetween'));
dayjs.extend(require('dayjs/plugin/advancedFormat'));
const d = dayjs.utc('2024-03-05T06:07:08.009Z');
out.dayjs = [
  d.format(),
  d.format('YYYY/MM/DD HH:mm:ss.SSS dddd MMMM'),
  d.add(1, 'month').endOf('month').toISOString(),
  d.startOf('week').toISOString(),
  d.diff(dayjs.utc('2024-01-01'), 'day'),
  d.isValid(),
  dayjs.utc('nonsense').isValid(),
  d.valueOf(),
];
out.dayjs_tz = [d.tz('Asia/Shanghai').format('YYYY-MM-DD HH:mm Z'), dayjs.tz('2024-07-01 12:00', 'America/New_York').toISOString()];
out.dayjs_relative = [dayjs.utc('2024-01-01').from(dayjs.utc('2024-01-03')), dayjs.utc('2024-01-01').to(dayjs.utc('2025-02-01')), dayjs.utc('2024-01-01T00:00:00Z').from(dayjs.utc('2024-01-01T00:00:30Z'))];
out.dayjs_parse = [dayjs.utc('05/02/2024 13:45', 'DD/MM/YYYY HH:mm').toISOString(), dayjs('2024-13-45', 'YYYY-MM-DD', true).isValid()];
const dur = dayjs.duration(5400, 'seconds');
out.dayjs_duration = [dur.asHours(), dur.hours(), dur.minutes(), dayjs.duration({ days: 1, hours: 2 }).asMinutes(), dur.toISOString()];
out.dayjs_between = [d.isBetween('2024-01-01', '2024-12-31'), d.isBetween('2024-03-05', '2024-04-01', 'day', '[)')];
out.dayjs_advanced = d.format('Q Do k X x');

// ---- fast-xml-parser ----
const { XMLParser, XMLBuilder, XMLValidator } = require('fast-xml-parser');
const xml = '<?xml version="1.0"?><root a="1"><item id="x">one</item><item id="y">2</item><empty/><![CDATA[<raw>]]></root>';
out.xml_parse = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_' }).parse(xml);
out.xml_parse_default = new XMLParser().parse(xml);
out.xml_build = new XMLBuilder({ ignoreAttributes: false, format: false }).build({ a: { '@_k': 'v', b: [1, 2], c: 'text & more' } });
out.xml_validate = [XMLValidator.validate(xml), XMLValidator.validate('<a><b></a>')];

// ---- xlsx ----
const XLSX = require('xlsx');
const ws = XLSX.utils.aoa_to_sheet([['name', 'n', 'ok'], ['a', 1, true], ['b', 2.5, false]]);
const wb = XLSX.utils.book_new();
XLSX.utils.book_append_sheet(wb, ws, 'Data');
const written = XLSX.write(wb, { type: 'array', bookType: 'xlsx' });
const back = XLSX.read(written, { type: 'array' });
out.xlsx = [written instanceof ArrayBuffer, back.SheetNames, XLSX.utils.sheet_to_json(back.Sheets.Data), XLSX.utils.sheet_to_csv(ws)];
const fromCsv = XLSX.read('x,y\n1,hello\n2,"a,b"', { type: 'string' });
out.xlsx_csv = XLSX.utils.sheet_to_json(fromCsv.Sheets[fromCsv.SheetNames[0]], { header: 1 });
out.xlsx_json = XLSX.utils.sheet_to_json(XLSX.utils.json_to_sheet([{ k: 'v', n: 3 }]));
// Legacy codepages (cpexcel's tables, built on first use in keel): GBK, Shift_JIS, Big5, cp1252.
out.xlsx_codepages = [[936, [0xd6, 0xd0, 0xce, 0xc4]], [932, [0x82, 0xa0]], [950, [0xa4, 0xa4]], [1252, [0x80, 0xe9]]].map(([cp, b]) =>
  XLSX.utils.sheet_to_json(XLSX.read(String.fromCharCode(...b, 0x2c, 0x41), { type: 'binary', codepage: cp }).Sheets.Sheet1, { header: 1 }));

// ---- sm-crypto-v2 ----
const sm = require('sm-crypto-v2');
out.sm3 = [sm.sm3('abc'), sm.sm3('')];
const key = '0123456789abcdeffedcba9876543210';
const enc = sm.sm4.encrypt('hello sm4', key);
out.sm4 = [enc, sm.sm4.decrypt(enc, key), sm.sm4.encrypt('x', key, { mode: 'cbc', iv: 'fedcba98765432100123456789abcdef' })];
const kp = sm.sm2.generateKeyPairHex();
const cipher = sm.sm2.doEncrypt('secret', kp.publicKey, 1);
const sig = sm.sm2.doSignature('msg', kp.privateKey, { hash: true });
out.sm2 = [sm.sm2.doDecrypt(cipher, kp.privateKey, 1), sm.sm2.doVerifySignature('msg', sig, kp.publicKey, { hash: true }), kp.publicKey.length];

// ---- the reference's first seven ----
const _ = require('lodash');
out.lodash = [_.chunk([1, 2, 3, 4, 5], 2), _.get({ a: [{ b: 3 }] }, 'a[0].b'), _.camelCase('Foo Bar-baz')];
out.qs = [require('qs').stringify({ a: [1, 2], b: { c: 'd' } }), require('qs').parse('a[b]=1&c=2')];
const uuid = require('uuid');
out.uuid = [uuid.v5('hello', uuid.v5.URL), uuid.validate(uuid.v4()), uuid.version(uuid.v7())];
const CryptoJS = require('crypto-js');
out.crypto_js = [CryptoJS.SHA256('abc').toString(), CryptoJS.HmacSHA1('m', 'k').toString(CryptoJS.enc.Base64)];
out.date_fns = require('date-fns').formatISO9075(new Date(Date.UTC(2024, 0, 2, 3, 4, 5)) - new Date(Date.UTC(2024, 0, 2, 3, 4, 5)).getTimezoneOffset() * 60000);
out.pinyin = require('pinyin').pinyin('中心', { heteronym: true });

// ---- require errors ----
try {
  require('no-such-module');
} catch (e) {
  out.require_missing = [e.name, e.code];
}
try {
  require(42);
} catch (e) {
  out.require_bad = [e.name, e.code];
}
return out;
