// Number formatting for figures an operator reads at a glance.
export const pct = (v) => (v == null || Number.isNaN(v) ? '–' : `${(v * 100).toFixed(v < 0.1 && v > 0 ? 1 : 0)}%`);
export const num = (v, d = 1) => (v == null || Number.isNaN(v) ? '–' : v >= 1000 ? `${(v / 1000).toFixed(1)}k` : (+v).toFixed(d).replace(/\.0+$/, ''));
export function secs(v) {
  if (v == null || Number.isNaN(v)) return '–';
  if (v < 1) return `${Math.round(v * 1000)} ms`;
  if (v < 120) return `${v.toFixed(1).replace(/\.0$/, '')} s`;
  if (v < 7200) return `${Math.floor(v / 60)}m ${Math.round(v % 60)}s`;
  return `${Math.floor(v / 3600)}h ${Math.round((v % 3600) / 60)}m`;
}
export function bytes(v) {
  if (v == null || Number.isNaN(v)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}
export function ago(t) {
  if (!t) return '–';
  const ms = Date.now() - (typeof t === 'number' ? t * 1000 : Date.parse(t));
  return ms < 1500 ? 'just now' : `${secs(ms / 1000)} ago`;
}
export const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');
/** Formats an alert value in its rule's unit. */
export function alertValue(alert, v) {
  switch (alert) {
    case 'gateway_error_rate': case 'gpu_lock_held': case 'heartbeat_failure_rate': return pct(v);
    case 'memory_rss': return bytes(v);
    case 'gateway_p99': case 'heartbeat_stale': return secs(v);
    case 'breaker_open': return 'open';
    default: return num(v);
  }
}
