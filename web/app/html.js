// One place that binds htm to Preact, so every view imports the same `html`.
import { h, render } from '/vendor/preact.module.js';
import htm from '/vendor/htm.module.js';
export { useState, useEffect, useRef, useMemo, useCallback } from '/vendor/preact-hooks.module.js';
export const html = htm.bind(h);
export { render };
