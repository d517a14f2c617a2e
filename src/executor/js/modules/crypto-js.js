// Entry of the `crypto-js` section of libs.bundle.js (built by ../build.mjs). It registers a
// factory: nothing of the module runs until runtime.js calls it (esbuild wraps every module
// in a lazy initialiser), so a context can hold the section without paying for the module.
'use strict';

const factories = (globalThis.__keel_library_factories = globalThis.__keel_library_factories || []);

factories.push(['crypto-js', () => require('crypto-js')]);
