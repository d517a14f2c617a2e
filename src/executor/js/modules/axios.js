// Entry of the `axios` section of libs.bundle.js (built by ../build.mjs). It registers a
// factory: nothing of the module runs until runtime.js calls it (esbuild wraps every module
// in a lazy initialiser), so a context can hold the section without paying for the module.
'use strict';

const factories = (globalThis.__keel_library_factories = globalThis.__keel_library_factories || []);
const makeFetchAdapter = require('../axios-fetch-adapter.js');

factories.push([
  'axios',
  () => {
    const mod = require('axios');
    const axios = mod.default || mod;
    // No XMLHttpRequest and no Node http here: requests go through keel's `fetch`.
    axios.defaults.adapter = makeFetchAdapter(axios);
    return axios;
  },
]);
