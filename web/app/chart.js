// A uPlot time-series chart sized to its container; data updates without re-creating the
// plot (so 1 s updates stay cheap).
import uPlot from '/vendor/uPlot.esm.js';
import { html, useEffect, useRef } from './html.js';

const PALETTE = ['#4f8cff', '#f5a524', '#17c964', '#f31260', '#9353d3', '#06b7db', '#ff7a45', '#8c8c8c'];

export function color(i) {
  return PALETTE[i % PALETTE.length];
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
      axes: [axis, { ...axis, size: 60, values: (u, vals) => vals.map((v) => format(v)) }],
      series: [{}, ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color || color(i),
        width: 1.5,
        fill: series.length === 1 ? (s.color || color(i)) + '22' : undefined,
        value: (u, v) => (v == null ? '–' : format(v)),
        spanGaps: false,
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
