// Regenerates libs.bundle.js (one section per module, see modules/) and LICENSES/ from the
// pinned npm packages.
//
//   cd src/executor/js && npm ci && node build.mjs
//
// keel's own build never runs this: the output is committed so `cargo build` needs no Node.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The reference service's warmup order, then the modules added since; entry.js lists the
// factories in the same order (snapshot.rs MODULES checks it).
const REFERENCE_ORDER = [
  'crypto-js', 'axios', 'date-fns', 'lodash', 'qs', 'pinyin', 'uuid',
  'dayjs', 'fast-xml-parser', 'xlsx', 'sm-crypto-v2',
];

/** Starts each module's section; snapshot.rs splits the bundle at these lines. */
const SECTION_MARKER = '//# keel-module ';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(fs.readFileSync(path.join(here, 'package.json'), 'utf8'));

const MIT_TEXT = `MIT License

Copyright (c) <COPYRIGHT HOLDER>

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`;

// pinyin's dictionaries are ~41k single-character entries assigned one by one onto an object
// and a ~41k-entry phrase object literal of nested arrays. Evaluated into the snapshot they
// are ~200k heap objects that V8 must deserialize into *every* fresh context (~30 ms each).
// This plugin rewrites both into sorted "key\tvalue\n" line tables held in one string each
// (strings live in the snapshot's shared part, so a context pays nothing for them) plus a
// binary-search lookup; the four use sites are rewritten to call it. Counts are asserted so
// a new pinyin version that changes the source shape fails the build instead of silently
// shipping the slow form.
function compactPinyinPlugin() {
  return {
    name: 'keel-compact-pinyin',
    setup(b) {
      b.onLoad({ filter: /pinyin[\\/]lib[\\/]umd[\\/]pinyin\.js$/ }, async (args) => {
        let src = fs.readFileSync(args.path, 'utf8').replace(/\r\n/g, '\n');
        // 1. single characters
        const chars = [];
        src = src.replace(/^  dict\[0x([0-9a-f]+)\] = "([^"]*)";/gm, (_, hex, val) => {
          const code = parseInt(hex, 16);
          if (code <= 0xffff) chars.push([String.fromCharCode(code), val]); // charCodeAt never sees more
          return '';
        });
        if (chars.length < 20000) throw new Error(`pinyin: found only ${chars.length} dict entries`);
        // 2. phrases
        const start = src.indexOf('  const phrases_dict = {');
        const end = src.indexOf('\n  };\n', start);
        if (start < 0 || end < 0) throw new Error('pinyin: phrases_dict literal not found');
        const literal = src.slice(src.indexOf('{', start), end + 4);
        const phrases = Function('return ' + literal)();
        const phraseRows = Object.keys(phrases).map((k) => [k, phrases[k].map((alts) => alts.join(',')).join('|')]);
        if (phraseRows.length < 20000) throw new Error(`pinyin: found only ${phraseRows.length} phrases`);
        const table = (rows) => {
          rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
          for (const [k, v] of rows) {
            if (/[\t\n]/.test(k + v)) throw new Error(`pinyin: separator inside entry ${k}`);
          }
          return JSON.stringify(rows.map(([k, v]) => `${k}\t${v}\n`).join(''));
        };
        const helpers =
          `  const __keel_chars = ${table(chars)};\n` +
          `  const __keel_phrases = ${table(phraseRows)};\n` +
          `  function __keel_lookup(t, key) {\n` +
          `    let lo = 0, hi = t.length;\n` +
          `    while (lo < hi) {\n` +
          `      const mid = (lo + hi) >>> 1;\n` +
          `      const s = t.lastIndexOf('\\n', mid - 1) + 1;\n` +
          `      const tab = t.indexOf('\\t', s);\n` +
          `      const e = t.indexOf('\\n', tab);\n` +
          `      const k = t.slice(s, tab);\n` +
          `      if (k === key) return t.slice(tab + 1, e);\n` +
          `      if (k < key) lo = e + 1; else hi = s;\n` +
          `    }\n` +
          `    return undefined;\n` +
          `  }\n` +
          `  function __keel_char(code) { return typeof code === 'number' && code >= 0 && code <= 0xffff ? __keel_lookup(__keel_chars, String.fromCharCode(code)) : undefined; }\n` +
          `  function __keel_phrase(p) { const v = __keel_lookup(__keel_phrases, String(p)); return v === undefined ? undefined : v.split('|').map((a) => a.split(',')); }\n`;
        src = src.slice(0, start) + src.slice(end + 5);
        src = src.replace('  const dict = {};\n', helpers);
        const swaps = [
          [/\bdict\[(firstCharCode|hanCode)\]/g, '__keel_char($1)', 4],
          [/hasKey\(phrases_dict, phrases\)/g, '(__keel_phrase(phrases) !== undefined)', 1],
          [/phrases_dict\[phrases\]/g, '__keel_phrase(phrases)', 1],
        ];
        for (const [re, to, want] of swaps) {
          const n = (src.match(re) || []).length;
          if (n !== want) throw new Error(`pinyin: expected ${want} uses of ${re}, found ${n}`);
          src = src.replace(re, to);
        }
        if (/\b(dict|phrases_dict)\[/.test(src.replace(/loadDict|_dict\b/g, ''))) {
          // defensive: any other index into the removed objects would now be a ReferenceError
        }
        return { contents: src, loader: 'js' };
      });
    },
  };
}

// xlsx's CommonJS build (the one `require('xlsx')` resolves to, in Node too) loads
// cpexcel.js, which builds its 32 codepage tables when it loads and, where there is a
// `Buffer` (Node, keel), encoder/decoder lookup buffers for 13 of them (`encache()`): ~9 MB
// of objects and array buffers (the DBCS pages 932/936/949/950 most of it) that a snapshot
// context holding xlsx would copy on every call (~5 ms), although only legacy .xls/.dbf/CSV
// reads with such a codepage ever use them. This plugin makes each table and each cached
// encoder/decoder a property built on its first read (then an ordinary data property, as
// Node's), so the context holds a few dozen small closures instead. The counts are asserted
// so a new cpexcel that changes its shape fails the build instead of silently shipping the
// slow form.
function lazyCodepagesPlugin() {
  return {
    name: 'keel-lazy-codepages',
    setup(b) {
      b.onLoad({ filter: /xlsx[\\/]dist[\\/]cpexcel\.js$/ }, async (args) => {
        let src = fs.readFileSync(args.path, 'utf8').replace(/\r\n/g, '\n');
        const decl = 'var cptable = {version:"1.15.0"};\n';
        if (!src.includes(decl)) throw new Error('cpexcel: cptable declaration not found');
        let n = 0;
        src = src.replace(/^cptable\[(\d+)\] = \(function\(\)\{([\s\S]*?)\}\)\(\);$/gm, (_, cp, body) => {
          n += 1;
          return `__keel_lazy_cp(${cp}, function(){${body}});`;
        });
        if (n < 30) throw new Error(`cpexcel: found only ${n} codepage tables`);
        if (/^cptable\[\d+\] =/m.test(src)) throw new Error('cpexcel: a codepage table is still built eagerly');
        let cached = 0;
        src = src.replace(/^( +)(cp[de]cache)\[s\] = ((?:sbcs|dbcs)_(?:de|en)code)\(s\);$/gm, (_, indent, cache, make) => {
          cached += 1;
          return `${indent}__keel_lazy(${cache}, s, ${make});`;
        });
        if (cached !== 4) throw new Error(`cpexcel: expected 4 eager encache assignments, found ${cached}`);
        // encache() tests each page with `if(cpt[s])`, which would build the table: every
        // table is an object, so `s in cpt` answers the same without reading it.
        const tests = (src.match(/if\(cpt\[s\]\) \{/g) || []).length;
        if (tests !== 2) throw new Error(`cpexcel: expected 2 table tests in encache, found ${tests}`);
        src = src.replace(/if\(cpt\[s\]\) \{/g, 'if(s in cpt) {');
        const helper =
          '/** keel: `obj[key]` is `make(key)`, made on its first read, then a plain data property. */\n' +
          'function __keel_lazy(obj, key, make) {\n' +
          '  var own = function (v) { Object.defineProperty(obj, key, { value: v, writable: true, enumerable: true, configurable: true }); };\n' +
          '  Object.defineProperty(obj, key, { get: function () { var v = make(key); own(v); return v; }, set: own, enumerable: true, configurable: true });\n' +
          '}\n' +
          'function __keel_lazy_cp(cp, make) { __keel_lazy(cptable, cp, make); }\n';
        src = src.replace(decl, decl + helper);
        return { contents: src, loader: 'js' };
      });
    },
  };
}

// One section per module, each built on its own (a module's dependencies are bundled into
// its section): a context evaluates only the sections of the modules it holds, and a lazy
// `require` evaluates one section, never the whole bundle (natives/libraries.rs).
const sections = [];
const inputs = new Set();
for (const name of REFERENCE_ORDER) {
  const result = await build({
    plugins: [compactPinyinPlugin(), lazyCodepagesPlugin()],
    entryPoints: [path.join(here, 'modules', `${name}.js`)],
    bundle: true,
    format: 'iife',
    platform: 'browser', // pick the packages' browser builds: no Node built-ins in V8
    target: 'es2022',
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none', // licence texts go to LICENSES/ instead
    charset: 'utf8',
    metafile: true,
    write: false,
    logLevel: 'warning',
  });
  for (const input of Object.keys(result.metafile.inputs)) inputs.add(input);
  sections.push(`${SECTION_MARKER}${name}\n${result.outputFiles[0].text}`);
}

// Every npm package that ended up in the bundle, transitive dependencies included.
const packages = new Map();
for (const input of [...inputs].sort()) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (!m) continue;
  const dir = path.join(here, 'node_modules', m[1]);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  packages.set(m[1], { dir, version: meta.version, license: meta.license });
}

const names = [...packages.keys()].sort();
const header =
  '/* keel executor library bundle - GENERATED by src/executor/js/build.mjs, do not edit.\n' +
  ' * Modules (reference order): ' + REFERENCE_ORDER.map((n) => `${n}@${pkg.dependencies[n]}`).join(', ') + '\n' +
  ' * Packages included: ' + names.map((n) => `${n}@${packages.get(n).version}`).join(', ') + '\n' +
  ' * Licences: src/executor/js/LICENSES/ */\n';
const code = sections.join('');
fs.writeFileSync(path.join(here, 'libs.bundle.js'), header + code);

const licDir = path.join(here, 'LICENSES');
fs.rmSync(licDir, { recursive: true, force: true });
fs.mkdirSync(licDir);
let summary = 'Third-party packages bundled into libs.bundle.js\n\n';
for (const name of names) {
  const { dir, version, license } = packages.get(name);
  const file = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  const out = path.join(licDir, name.replace('/', '__') + '.txt');
  summary += `${name}@${version}  ${license}  ${path.basename(out)}${file ? '' : ' (package ships no licence file; standard text)'}\n`;
  if (file) {
    fs.copyFileSync(path.join(dir, file), out);
  } else if (license === 'MIT') {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const author = typeof meta.author === 'string' ? meta.author : (meta.author && meta.author.name) || name + ' authors';
    fs.writeFileSync(out, MIT_TEXT.replace('<COPYRIGHT HOLDER>', author));
  } else {
    throw new Error(`${name}: no licence file and licence ${license} has no standard text here`);
  }
}
fs.writeFileSync(path.join(licDir, 'README.txt'), summary);
console.log(`libs.bundle.js: ${(Buffer.byteLength(header + code) / 1e6).toFixed(2)} MB, ${names.length} packages`);

