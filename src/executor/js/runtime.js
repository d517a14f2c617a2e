// keel executor runtime: evaluated once into each snapshot context (see snapshot.rs): the
// lean default context, and the contexts holding library modules, where the modules'
// bundle sections were evaluated first. Everything here is therefore already present in
// every fresh context.
//
// `require(name)` returns the module if this context has instantiated it, else
// instantiates it here on first use. A module whose bundle section this context has not
// evaluated is loaded by Rust first (`native.loadLibrary`: that one section, never the
// whole bundle). The block's context was picked from its `require('…')` literals
// (requires.rs), so this path only serves a module required another way: correct, only
// slower.
//
// Rust-implemented functions cannot live in the snapshot (they would need external
// references), so the natives (natives/mod.rs) are handed in per context by
// `__keel_boot(natives)`, which Rust calls right after creating the context and which then
// removes itself. The prelude scripts evaluated after this one (snapshot.rs PRELUDE:
// node_errors.js, node_buffer.js, node_crypto.js, web.js) register their Node core modules,
// globals and per-context hooks through `__keel_prelude`; `__keel_boot` calls each hook with
// the natives. Defined here: require, console, timers, queueMicrotask.
(function (global) {
  'use strict';

  /** The bundle's modules, in its order (snapshot.rs MODULES, whose indices natives use). */
  const moduleNames = [
    'crypto-js', 'axios', 'date-fns', 'lodash', 'qs', 'pinyin', 'uuid',
    'dayjs', 'fast-xml-parser', 'xlsx', 'sm-crypto-v2',
  ];
  /**
   * Node's built-in modules that touch the host (files, processes, sockets, the
   * environment): refused by name, with the reason, rather than "cannot find module".
   */
  const refusedBuiltins = new Set([
    'fs', 'fs/promises', 'path', 'path/posix', 'path/win32', 'child_process', 'cluster',
    'dgram', 'dns', 'dns/promises', 'http', 'http2', 'https', 'inspector', 'module', 'net',
    'os', 'process', 'readline', 'repl', 'tls', 'tty', 'v8', 'vm', 'wasi', 'worker_threads',
    'perf_hooks', 'async_hooks', 'trace_events',
  ]);
  /** Hooks of the later prelude scripts, called by __keel_boot with the natives. */
  const bootHooks = [];
  /** Node core modules of the prelude scripts: name -> factory (see __keel_prelude). */
  const builtinFactories = new Map();

  /** Natives from Rust, set per context by __keel_boot. */
  let native = null;
  /** name -> factory of every module section this context has evaluated. */
  const factoryByName = new Map();
  /** subpath ('dayjs/plugin/utc') -> [module, factory]. */
  const subpathFactories = new Map();
  /** name -> exports of the modules this context has instantiated so far. */
  const modules = new Map();

  /** Takes the factories the evaluated bundle sections left on the global object. */
  function adoptFactories() {
    for (const [name, factory] of global.__keel_library_factories || []) factoryByName.set(name, factory);
    for (const [p, m, f] of global.__keel_library_subpaths || []) subpathFactories.set(p, [m, f]);
    delete global.__keel_library_factories;
    delete global.__keel_library_subpaths;
  }
  adoptFactories();

  /** Makes sure this context has evaluated module `name`'s bundle section. */
  function ensureSection(name) {
    if (factoryByName.has(name)) return;
    native.loadLibrary(moduleNames.indexOf(name));
    adoptFactories();
  }

  /** A Node core module of the prelude scripts, made on its first require in this context. */
  function builtin(name) {
    const key = `node:${name}`;
    let exports = modules.get(key);
    if (exports === undefined) {
      exports = builtinFactories.get(name)();
      modules.set(key, exports);
    }
    return exports;
  }

  function instantiate(name) {
    const top = name.split('/')[0];
    if (!moduleNames.includes(top)) return undefined;
    ensureSection(top);
    if (top !== name) {
      const entry = subpathFactories.get(name);
      if (entry === undefined) return undefined;
      const exports = entry[1]();
      modules.set(name, exports);
      return exports;
    }
    const factory = factoryByName.get(name);
    if (factory === undefined) return undefined;
    const exports = factory();
    if (exports === undefined || exports === null) {
      throw new Error(`module ${name} produced no exports`);
    }
    modules.set(name, exports);
    return exports;
  }

  function hidden(name, value) {
    Object.defineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
  }
  function defineGlobal(name, value) {
    Object.defineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
  }

  // ---- snapshot-time helpers (removed before the snapshot is taken) -------------------------
  // Snapshot time, contexts with modules: instantiates one module (Rust times each).
  hidden('__keel_load_module', function (name) {
    if (instantiate(name) === undefined) throw new Error(`the bundle has no module ${name}`);
    return name;
  });
  hidden('__keel_seal', function () {
    delete global.__keel_load_module;
    delete global.__keel_prelude;
    delete global.__keel_seal;
  });
  // Snapshot time: the prelude scripts evaluated after this one register their Node core
  // modules and per-context native hooks here.
  hidden('__keel_prelude', {
    /** Node core module `name` (also `node:name`), made by `factory()` on first require. */
    defineModule(name, factory) {
      builtinFactories.set(name, factory);
    },
    /** Calls `hook(natives)` in every fresh context, before user code runs. */
    onBoot(hook) {
      bootHooks.push(hook);
    },
    /** A getter of this context's natives family `name` (`natives.load(name)`), loaded on
     * its first use — and again in every fresh context: one the snapshot kept belongs to
     * the context the snapshot was made in. */
    nativeFamily(name) {
      let family = null;
      bootHooks.push(() => {
        family = null;
      });
      return () => family || (family = native.load(name));
    },
    defineGlobal,
    /** Shared between the prelude scripts (errors, validators, lazy globals). */
    internals: {},
  });

  // ---- per-context boot ------------------------------------------------------------------
  hidden('__keel_boot', function (natives) {
    native = natives;
    for (const hook of bootHooks) hook(natives);
    // No WebAssembly for user code (the reference's goja had none): wasm memories are not
    // allocated through keel's array-buffer budget, so they would escape the memory bounds.
    // Per context: V8 installs the global again when it deserializes one.
    delete global.WebAssembly;
    delete global.__keel_boot;
  });

  // Node's name for the global object (`global.x = 1` in code written for Node).
  defineGlobal('global', global);

  // ---- require ---------------------------------------------------------------------------
  defineGlobal('require', function require(id) {
    if (typeof id !== 'string') {
      const e = new TypeError(`The "id" argument must be of type string. Received ${id === null ? 'null' : typeof id}`);
      e.code = 'ERR_INVALID_ARG_TYPE';
      throw e;
    }
    if (id === '') {
      const e = new TypeError("The argument 'id' must be a non-empty string. Received ''");
      e.code = 'ERR_INVALID_ARG_VALUE';
      throw e;
    }
    const bare = id.startsWith('node:') ? id.slice(5) : id;
    if (builtinFactories.has(bare)) return builtin(bare);
    if (refusedBuiltins.has(bare)) {
      const e = new Error(`Module '${id}' is not available in a code block: no file system, processes, network sockets or environment`);
      e.code = 'ERR_ACCESS_DENIED';
      throw e;
    }
    if (id.startsWith('node:')) {
      const e = new Error(`No such built-in module: ${id}`);
      e.code = 'ERR_UNKNOWN_BUILTIN_MODULE';
      throw e;
    }
    const exports = modules.get(id) || instantiate(id);
    if (exports === undefined) {
      const e = new Error(`Cannot find module '${id}' (available: ${[...moduleNames, ...builtinFactories.keys()].join(', ')})`);
      e.code = 'MODULE_NOT_FOUND';
      throw e;
    }
    // Counted once per execution by the native (a context may serve several calls).
    if (native) native.noteRequire(moduleNames.indexOf(id.split('/')[0]));
    return exports;
  });

  // ---- console -----------------------------------------------------------------------------
  function format(value) {
    if (typeof value === 'string') return value;
    if (value instanceof Error) return String(value.stack || value);
    if (typeof value === 'function') return `[Function ${value.name || 'anonymous'}]`;
    try {
      const json = JSON.stringify(value);
      return json === undefined ? String(value) : json;
    } catch (_) {
      return String(value);
    }
  }
  const consoleObject = {};
  for (const level of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
    consoleObject[level] = function (...args) {
      if (native) native.log(level, args.map(format).join(' '));
    };
  }
  defineGlobal('console', consoleObject);

  // ---- timers (resolved by the Rust event loop) --------------------------------------------
  // A timer is a native sleep (a promise and its operation id); clearing one cancels the
  // operation, so a cleared timer never holds the call open (see event_loop.rs). As in
  // Node, setTimeout/setInterval return a Timeout (ref/unref/hasRef/refresh/close; its
  // primitive value is its id, which clearTimeout also takes); an unref'd timer still fires
  // but does not hold the call open.
  let nextTimerId = 1;
  /** timer id -> {op, ref, arm}: the op of its pending sleep, whether it holds the call. */
  const liveTimers = new Map();
  function delayOf(ms) {
    const n = Number(ms);
    return Number.isFinite(n) && n > 0 ? n : 0;
  }
  function received(v) {
    if (v === null || v === undefined) return `Received ${v}`;
    if (typeof v === 'object') return v.constructor && v.constructor.name ? `Received an instance of ${v.constructor.name}` : 'Received an object';
    let shown = String(v);
    if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
    return `Received type ${typeof v} (${typeof v === 'string' ? `'${shown}'` : shown})`;
  }
  function timerCallback(callback) {
    if (typeof callback !== 'function') {
      const e = new TypeError(`The "callback" argument must be of type function. ${received(callback)}`);
      e.code = 'ERR_INVALID_ARG_TYPE';
      throw e;
    }
  }
  /** Whether timer `id` holds the call open (Timeout's and Immediate's ref/unref). */
  function holdTimer(id, on) {
    const t = liveTimers.get(id);
    if (t) {
      t.ref = on;
      native.unref(t.op, !on);
    }
  }
  function timerHasRef(id) {
    const t = liveTimers.get(id);
    return t ? t.ref : false;
  }
  class Timeout {
    #id;
    constructor(id) {
      this.#id = id;
    }
    ref() {
      holdTimer(this.#id, true);
      return this;
    }
    unref() {
      holdTimer(this.#id, false);
      return this;
    }
    hasRef() {
      return timerHasRef(this.#id);
    }
    refresh() {
      const t = liveTimers.get(this.#id);
      if (t) {
        native.cancel(t.op);
        t.arm();
      }
      return this;
    }
    close() {
      clearTimer(this.#id);
      return this;
    }
    [Symbol.toPrimitive]() {
      return this.#id;
    }
  }
  /** What setImmediate returns (Node's Immediate: ref/unref/hasRef; clearImmediate takes
   * only this object, not a number). Its timer id lives in `immediateIds`, where
   * clearImmediate finds it too. */
  class Immediate {
    constructor(id) {
      immediateIds.set(this, id);
    }
    ref() {
      holdTimer(immediateIds.get(this), true);
      return this;
    }
    unref() {
      holdTimer(immediateIds.get(this), false);
      return this;
    }
    hasRef() {
      return timerHasRef(immediateIds.get(this));
    }
  }
  const immediateIds = new WeakMap();
  /** Starts timer `id`: fires `fire` after `delay` ms, re-armed by `refresh`. */
  function startTimer(id, delay, fire) {
    const t = { op: -1, ref: true, arm: null };
    t.arm = () => {
      const [promise, op] = native.sleep(delay, !t.ref);
      t.op = op;
      promise.then(() => {
        if (liveTimers.get(id) === t && t.op === op) fire(t);
      });
    };
    liveTimers.set(id, t);
    t.arm();
  }
  /** A timer that calls `callback(...args)` once after `delay` ms; its id. */
  function startOnce(delay, callback, args) {
    const id = nextTimerId++;
    startTimer(id, delay, () => {
      liveTimers.delete(id);
      callback(...args);
    });
    return id;
  }
  defineGlobal('setTimeout', function setTimeout(callback, ms, ...args) {
    timerCallback(callback);
    return new Timeout(startOnce(delayOf(ms), callback, args));
  });
  defineGlobal('setInterval', function setInterval(callback, ms, ...args) {
    timerCallback(callback);
    const id = nextTimerId++;
    startTimer(id, Math.max(delayOf(ms), 1), (t) => {
      t.arm();
      callback(...args);
    });
    return new Timeout(id);
  });
  // Node runs an immediate once the current macrotask and its microtasks are done; here it
  // is a zero-delay timer, which runs then too (this loop has no separate check phase, so
  // its order against a zero-delay setTimeout made before it is the order they were made;
  // in Node that order is not fixed either).
  defineGlobal('setImmediate', function setImmediate(callback, ...args) {
    timerCallback(callback);
    return new Immediate(startOnce(0, callback, args));
  });
  defineGlobal('clearImmediate', function clearImmediate(immediate) {
    const id = immediateIds.get(immediate);
    if (id !== undefined) clearTimer(id);
  });
  const clearTimer = function (timer) {
    if (timer === null || timer === undefined) return;
    const id = typeof timer === 'object' ? Number(timer[Symbol.toPrimitive] ? timer[Symbol.toPrimitive]() : NaN) : Number(timer);
    const t = liveTimers.get(id);
    if (t === undefined) return;
    liveTimers.delete(id);
    native.cancel(t.op);
  };
  defineGlobal('clearTimeout', clearTimer);
  defineGlobal('clearInterval', clearTimer);
  defineGlobal('queueMicrotask', function queueMicrotask(callback) {
    timerCallback(callback);
    Promise.resolve().then(() => callback());
  });
})(globalThis);
