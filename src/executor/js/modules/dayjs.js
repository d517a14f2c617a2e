// Entry of the `dayjs` section of libs.bundle.js (built by ../build.mjs). It registers a
// factory: nothing of the module runs until runtime.js calls it (esbuild wraps every module
// in a lazy initialiser), so a context can hold the section without paying for the module.
// Its plugins and a locale are files Node code requires by path: [path, module, factory].
'use strict';

const factories = (globalThis.__keel_library_factories = globalThis.__keel_library_factories || []);

factories.push(['dayjs', () => require('dayjs')]);
const subpaths = (globalThis.__keel_library_subpaths = globalThis.__keel_library_subpaths || []);
subpaths.push(
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
);
