// The reference's completion rule (which Node's own event loop also follows): the block's
// value is taken when nothing it started is still pending — timers, intervals, fetches,
// promise chains — so an object returned at once and filled in later comes back filled in.
// Cleared timers and intervals hold nothing open. Each step starts the next, so the order
// is causal, never a race between clocks.
const out = { log: [] };
const cleared = setTimeout(() => out.log.push('cleared timer ran'), 1);
clearTimeout(cleared);
const never = setTimeout(() => out.log.push('cleared long timer ran'), 600000);
clearTimeout(never);
setTimeout(() => {
  out.log.push('timer');
  Promise.resolve().then(() => out.log.push('microtask after timer'));
  let n = 0;
  const iv = setInterval(() => {
    n++;
    out.log.push(`interval ${n}`);
    if (n < 3) return;
    clearInterval(iv);
    fetch(`${input.base}/delay/30`)
      .then((r) => r.text())
      .then((t) => {
        out.log.push(`fetched ${t}`);
        return new Promise((resolve) => setTimeout(resolve, 5));
      })
      .then(() => {
        out.log.push('last');
      });
  }, 4);
}, 5);
queueMicrotask(() => out.log.push('microtask'));
out.log.push('returned');

// Node's Timeout objects: ref/unref/hasRef/close, a number as primitive value (which
// clearTimeout takes too); an unref'd timer holds nothing open.
const probe = setTimeout(() => {}, 1);
out.timeout_object = [typeof probe, typeof +probe, probe.hasRef(), probe.unref().hasRef(), probe.ref().hasRef()];
const byNumber = setTimeout(() => out.log.push('cleared by number ran'), 1);
clearTimeout(+byNumber);
setTimeout(() => out.log.push('unref timer ran'), 600000).unref();
out.ticks = [];
const closing = setInterval(() => {
  out.ticks.push(out.ticks.length + 1);
  if (out.ticks.length === 2) closing.close();
}, 3);
return out;
