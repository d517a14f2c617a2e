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
// setImmediate: runs once the current microtasks are done, with its arguments, and holds the
// call open; Node's Immediate object (ref/unref/hasRef); clearImmediate takes that object
// (nothing does nothing; Node throws on a number, after miscounting its immediates, so that
// case is left out). Its own list: against the timers above, an immediate's
// place in Node depends on how late the loop starts.
out.imm = [];
const imm = setImmediate((a, b) => {
  out.imm.push(`immediate ${a} ${b}`);
  setImmediate(() => out.imm.push('immediate from an immediate'));
}, 1, 2);
Promise.resolve().then(() => out.imm.push('microtask first'));
out.immediate_object = [typeof imm, imm.hasRef(), imm.unref().hasRef(), imm.ref().hasRef(), Object.getOwnPropertyNames(Object.getPrototypeOf(imm)).sort(), imm.constructor.name];
const dropped = setImmediate(() => out.imm.push('cleared immediate ran'));
clearImmediate(dropped);
clearImmediate();
out.global = [global === globalThis, typeof setImmediate, typeof clearImmediate];
return out;
