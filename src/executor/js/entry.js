// Entry point of the executor's library bundle (built by build.mjs into libs.bundle.js).
// The first seven modules are the reference's original list, in its warmup order; the
// rest are the modules its users' workflow code added.
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
  ['dayjs', () => require('dayjs')],
  ['fast-xml-parser', () => require('fast-xml-parser')],
  ['xlsx', () => require('xlsx')],
  ['sm-crypto-v2', () => require('sm-crypto-v2')],
];

// Files inside a module that Node code requires by path: [path, module, factory].
globalThis.__keel_library_subpaths = [
  ['dayjs/plugin/utc', 'dayjs', () => require('dayjs/plugin/utc')],
  ['dayjs/plugin/timezone', 'dayjs', () => require('dayjs/plugin/timezone')],
  ['dayjs/plugin/relativeTime', 'dayjs', () => require('dayjs/plugin/relativeTime')],
  ['dayjs/plugin/customParseFormat', 'dayjs', () => require('dayjs/plugin/customParseFormat')],
  ['dayjs/plugin/duration', 'dayjs', () => require('dayjs/plugin/duration')],
  ['dayjs/plugin/isBetween', 'dayjs', () => require('dayjs/plugin/isBetween')],
  ['dayjs/plugin/advancedFormat', 'dayjs', () => require('dayjs/plugin/advancedFormat')],
  ['dayjs/plugin/isSameOrAfter', 'dayjs', () => require('dayjs/plugin/isSameOrAfter')],
  ['dayjs/plugin/isSameOrBefore', 'dayjs', () => require('dayjs/plugin/isSameOrBefore')],
  ['dayjs/plugin/weekOfYear', 'dayjs', () => require('dayjs/plugin/weekOfYear')],
  ['dayjs/plugin/quarterOfYear', 'dayjs', () => require('dayjs/plugin/quarterOfYear')],
  ['dayjs/plugin/localizedFormat', 'dayjs', () => require('dayjs/plugin/localizedFormat')],
  ['dayjs/locale/zh-cn', 'dayjs', () => require('dayjs/locale/zh-cn')],
];
