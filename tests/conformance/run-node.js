// Runs one conformance file under Node the way keel runs a code block: the file is the body
// of a function of `input` (and `require`), its value may be a promise, and — the
// reference's completion rule — the result is taken only when the event loop has nothing
// left to do (`beforeExit`), so work a block started and did not await still lands in it.
//
//   node tests/conformance/run-node.js tests/conformance/web.js '{"base":"http://127.0.0.1:8080"}'
//
// Prints {"result": ...} or {"error": {"name", "message"}} as one JSON line. Modules resolve
// from src/executor/js/node_modules (npm ci there), the packages keel's bundle is built from.
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const [file, inputJson = '{}'] = process.argv.slice(2);
const code = fs.readFileSync(file, 'utf8');
const input = JSON.parse(inputJson);
const libs = createRequire(path.join(__dirname, '../../src/executor/js/package.json'));

let outcome = null;
function report() {
  if (outcome === null) return;
  const o = outcome;
  outcome = null;
  if ('error' in o) {
    process.stdout.write(JSON.stringify({ error: o.error }) + '\n');
  } else if (o.value === undefined) {
    process.stdout.write(JSON.stringify({ error: { name: 'ValidationError', message: 'the return value cannot be undefined' } }) + '\n');
  } else {
    process.stdout.write(JSON.stringify({ result: o.value }) + '\n');
  }
}
process.on('beforeExit', report);

const fn = new Function('input', 'require', code);
Promise.resolve()
  .then(() => fn(input, libs))
  .then(
    (value) => {
      outcome = { value };
    },
    (e) => {
      outcome = { error: { name: e && e.name, message: String(e && e.message) } };
    }
  );
