// A uPlot time-series chart sized to its container; data updates without re-creating the
// plot (so 1 s updates stay cheap). Y ticks are chosen so that their formatted labels
// differ, and a value with no neighbour (one busy second among idle ones) gets a dot.
import uPlot from '/vendor/uPlot.esm.js';
import { html, useEffect, useRef } from './html.js';

const PALETTE = ['#4f8cff', '#f5a524', '#17c964', '#f31260', '#9353d3', '#06b7db', '#ff7a45', '#8c8c8c'];

export function color(i) {
  return PALETTE[i % PALETTE.length];
}

/** The next step up the 1-2-5 ladder uPlot picks its steps from (…, 0.5, 1, 2, 5, 10, …). */
function nextStep(step) {
  const e = 10 ** Math.floor(Math.log10(step) + 1e-9);
  const m = step / e;
  return (m < 1.5 ? 2 : m < 3.5 ? 5 : 10) * e;
}

/**
 * Y ticks from `min` to `max` whose labels all differ. uPlot spaces ticks by pixels, but a
 * formatter that rounds (whole counts, whole milliseconds) turns 0, 0.2, 0.4 … 1 into
 * "0, 0, 0, 1, 1, 1": the step grows along the ladder until every label — and the label
 * of the tick after the last, so that rounding cannot hide — is distinct.
 */
export function distinctTicks(min, max, step, format) {
  for (let i = 0; i < 40 && step > 0 && Number.isFinite(step); i++, step = nextStep(step)) {
    const ticks = [];
    for (let k = Math.ceil(min / step - 1e-9); k * step <= max + step * 1e-9 && ticks.length < 50; k++) {
      ticks.push(+(k * step).toPrecision(12));
    }
    const next = +((Math.ceil(min / step - 1e-9) + ticks.length) * step).toPrecision(12);
    const labels = [...ticks, next].map(format);
    if (new Set(labels).size === labels.length) return ticks;
  }
  return [min, max];
}

/** Indices of values without a neighbour: a line cannot draw them, a dot can. */
function isolated(u, sidx, show) {
  if (show) return null;
  const ys = u.data[sidx];
  const out = [];
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] != null && ys[i - 1] == null && ys[i + 1] == null) out.push(i);
  }
  return out.length ? out : null;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

/**
 * props: title, series: [{label, color?}], data: [xs, ...ys] (xs in Unix seconds),
 * format: value -> text for the axis and legend, height.
 */
export function Chart({ title, series, data, format = (v) => v, height = 160, min }) {
  const box = useRef(null);
  const plot = useRef(null);
  const shape = series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--grid'), width: 1 }, ticks: { stroke: cssVar('--grid') } };
    const opts = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [min ?? Math.min(0, lo), hi > 0 ? hi * 1.1 : 1] } },
      axes: [axis, {
        ...axis,
        // Wide enough for the longest label ("0.25 ms", "1.5 GiB"), about 7 px a character.
        size: (u, labels) => Math.max(44, 18 + 7 * Math.max(0, ...(labels || []).map((l) => String(l).length))),
        splits: (u, i, lo, hi, step) => distinctTicks(lo, hi, step, format),
        // The labels are drawn on a canvas; `data-y-ticks` lets tests (and curious eyes) read them.
        values: (u, vals) => { const labels = vals.map((v) => format(v)); el.dataset.yTicks = labels.join(' | '); return labels; },
      }],
      series: [{}, ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color || color(i),
        width: 1.5,
        fill: series.length === 1 ? (s.color || color(i)) + '22' : undefined,
        value: (u, v) => (v == null ? '–' : format(v)),
        spanGaps: false,
        points: { filter: isolated, size: 5 },
      }))],
    };
    plot.current = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => {
      if (plot.current) plot.current.setSize({ width: Math.max(200, el.clientWidth), height });
    });
    ro.observe(el);
    return () => { ro.disconnect(); plot.current?.destroy(); plot.current = null; };
  }, [shape, height]);

  useEffect(() => { plot.current?.setData(data); }, [data]);

  return html`<figure class="chart"><figcaption>${title}</figcaption><div ref=${box} class="chart-box" role="img" aria-label=${title}></div></figure>`;
}
