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
return out;
