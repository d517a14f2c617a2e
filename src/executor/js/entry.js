// Entry point of the executor's library bundle (built by build.mjs into libs.bundle.js).
//
// Each library is exported as a *factory* rather than as an instantiated module so that the
// runtime (../runtime.js) can instantiate them one at a time, in the reference service's
// order, and name the module that failed if one throws (keel then refuses to start).
// esbuild wraps every CommonJS/ESM module in a lazy initialiser, so nothing below runs
// until a factory is called.
'use strict';

const makeFetchAdapter = require('./axios-fetch-adapter.js');

globalThis.__keel_library_factories = [
  ['crypto-js', () => require('crypto-js')],
  [
    'axios',
    () => {
      const mod = require('axios');
      const axios = mod.default || mod;
      // No XMLHttpRequest and no Node http here: requests go through keel's `fetch`.
      axios.defaults.adapter = makeFetchAdapter(axios);
      return axios;
    },
  ],
  ['date-fns', () => require('date-fns')],
  ['lodash', () => require('lodash')],
  ['qs', () => require('qs')],
  [
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
  ],
  ['uuid', () => require('uuid')],
];
