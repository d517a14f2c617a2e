// Entry of the `pinyin` section of libs.bundle.js (built by ../build.mjs). It registers a
// factory: nothing of the module runs until runtime.js calls it (esbuild wraps every module
// in a lazy initialiser), so a context can hold the section without paying for the module.
'use strict';

const factories = (globalThis.__keel_library_factories = globalThis.__keel_library_factories || []);

factories.push([
  'pinyin',
  () => {
    // pinyin >= 3 is an ES module whose default export is the conversion function; the
    // reference service (pinyin 2.x) returned the function itself from require('pinyin').
    // Return the function and hang the named exports on it so both styles work.
    const mod = require('pinyin');
    const fn = mod.default || mod.pinyin;
    fn.default = fn;
    fn.pinyin = fn;
    fn.Pinyin = mod.Pinyin;
    if (!fn.compact) fn.compact = mod.compact;
    if (!fn.compare) fn.compare = mod.compare;
    return fn;
  },
]);
