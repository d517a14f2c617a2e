// keel executor runtime: evaluated once into each of the snapshot's two contexts (see
// snapshot.rs): after libs.bundle.js in the context with libraries, alone in the lean
// default context. Everything here is therefore already present in every fresh context.
//
// `require(name)` returns the module if this context has it, else instantiates it in this
// context on first use. In the context with libraries, __keel_load_module instantiated all
// seven at snapshot time. The lean context has not even evaluated the bundle (thousands of
// module closures, most of a context's deserialization time), so there `require` first has
// Rust evaluate the bundle into the context (`native.loadLibraries`). Blocks that mention
// `require` start from the other context; this path only serves one that reaches `require`
// another way: correct, only slower.
//
// Rust-implemented functions cannot live in the snapshot (they would need external
// references), so the few natives (log, fetch, sleep, loadLibraries, and `load` for the
// Buffer and crypto families) are handed in
// per context by `__keel_boot(natives)`, which Rust calls right after creating the context
// and which then removes itself. User code sees only the web-like globals defined here:
// require, console, fetch, Headers, Response, setTimeout/clearTimeout/setInterval/
// clearInterval, btoa, atob, TextEncoder, TextDecoder (and, from the prelude scripts after
// this one, Buffer and crypto).
(function (global) {
  'use strict';

  /** The reference's modules, in its warmup order (snapshot.rs checks the bundle's). */
  const moduleNames = ['crypto-js', 'axios', 'date-fns', 'lodash', 'qs', 'pinyin', 'uuid'];

  /** Natives from Rust, set per context by __keel_boot. */
  let native = null;
  /** name -> factory; null until this context has evaluated the bundle. */
  let factoryByName = null;
  /** name -> exports of the modules this context has required so far. */
  const modules = new Map();
  /** Node core modules of the prelude scripts: name -> factory (see __keel_prelude). */
  const builtinFactories = new Map();
  /** Per-context hooks of the prelude scripts, called with the natives. */
  const bootHooks = [];
  /**
   * Node core modules a code block cannot have, as on the reference: no file system,
   * processes, network sockets, workers or environment inside the sandbox.
   */
  const refusedBuiltins = new Set([
    'fs', 'fs/promises', 'path', 'path/posix', 'path/win32', 'child_process', 'cluster',
    'dgram', 'dns', 'dns/promises', 'http', 'http2', 'https', 'inspector', 'module', 'net',
    'os', 'process', 'readline', 'repl', 'tls', 'tty', 'v8', 'vm', 'wasi', 'worker_threads',
  ]);

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
  function codedError(Base, code, message) {
    const e = new Base(message);
    e.code = code;
    return e;
  }

  /** Takes the factories the bundle left on the global object. */
  function adoptFactories() {
    const factories = global.__keel_library_factories;
    delete global.__keel_library_factories;
    factoryByName = new Map(factories);
    return factories.map((f) => f[0]);
  }
  const bundleNames = global.__keel_library_factories ? adoptFactories() : [];

  function instantiate(name) {
    if (!moduleNames.includes(name)) return undefined;
    if (factoryByName === null) {
      native.loadLibraries();
      adoptFactories();
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
  // The bundle's module names (empty in the lean context, which has not evaluated it).
  hidden('__keel_module_names', bundleNames);
  // Snapshot time, context with libraries: instantiates one module (Rust times each).
  hidden('__keel_load_module', function (index) {
    const name = bundleNames[index];
    instantiate(name);
    return name;
  });
  hidden('__keel_seal', function () {
    delete global.__keel_module_names;
    delete global.__keel_load_module;
    delete global.__keel_prelude;
    delete global.__keel_seal;
  });
  // The prelude scripts evaluated after this one (snapshot.rs PRELUDE: node_errors.js,
  // node_buffer.js, node_crypto.js...) register their Node core modules and per-context
  // native hooks here.
  hidden('__keel_prelude', {
    /** Node core module `name` (also `node:name`), made by `factory()` on first require. */
    defineModule(name, factory) {
      builtinFactories.set(name, factory);
    },
    /** Calls `hook(natives)` in every fresh context, before user code runs. */
    onBoot(hook) {
      bootHooks.push(hook);
    },
    defineGlobal,
    /** Shared between the prelude scripts (errors, validators). */
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

  // ---- require ---------------------------------------------------------------------------
  defineGlobal('require', function require(name) {
    if (typeof name !== 'string') {
      throw new TypeError('require() expects a module name string');
    }
    const bare = name.startsWith('node:') ? name.slice(5) : name;
    if (builtinFactories.has(bare)) return builtin(bare);
    if (refusedBuiltins.has(bare)) {
      throw codedError(Error, 'ERR_ACCESS_DENIED', `Module '${name}' is not available in a code block: no file system, processes, network sockets or environment`);
    }
    if (bare !== name) throw codedError(Error, 'ERR_UNKNOWN_BUILTIN_MODULE', `No such built-in module: ${name}`);
    const exports = modules.get(name) || instantiate(name);
    if (exports === undefined) {
      throw new Error(`Cannot find module '${name}' (available: ${[...moduleNames, ...builtinFactories.keys()].join(', ')})`);
    }
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
  let nextTimerId = 1;
  const liveTimers = new Set();
  function delayOf(ms) {
    const n = Number(ms);
    return Number.isFinite(n) && n > 0 ? n : 0;
  }
  defineGlobal('setTimeout', function setTimeout(callback, ms, ...args) {
    if (typeof callback !== 'function') throw new TypeError('setTimeout: callback is not a function');
    const id = nextTimerId++;
    liveTimers.add(id);
    native.sleep(delayOf(ms)).then(() => {
      if (liveTimers.delete(id)) callback(...args);
    });
    return id;
  });
  defineGlobal('setInterval', function setInterval(callback, ms, ...args) {
    if (typeof callback !== 'function') throw new TypeError('setInterval: callback is not a function');
    const id = nextTimerId++;
    const delay = Math.max(delayOf(ms), 1);
    liveTimers.add(id);
    const tick = () => {
      if (!liveTimers.has(id)) return;
      callback(...args);
      if (liveTimers.has(id)) native.sleep(delay).then(tick);
    };
    native.sleep(delay).then(tick);
    return id;
  });
  const clearTimer = function (id) {
    liveTimers.delete(id);
  };
  defineGlobal('clearTimeout', clearTimer);
  defineGlobal('clearInterval', clearTimer);
  defineGlobal('queueMicrotask', function queueMicrotask(callback) {
    Promise.resolve().then(callback);
  });

  // ---- base64 and text encoding --------------------------------------------------------------
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  defineGlobal('btoa', function btoa(input) {
    const s = String(input);
    let out = '';
    for (let i = 0; i < s.length; i += 3) {
      const a = s.charCodeAt(i);
      const b = s.charCodeAt(i + 1);
      const c = s.charCodeAt(i + 2);
      if (a > 255 || b > 255 || c > 255) {
        throw new Error('btoa: string contains characters outside of the Latin1 range');
      }
      const n = (a << 16) | ((b || 0) << 8) | (c || 0);
      out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
      out += i + 1 < s.length ? B64[(n >> 6) & 63] : '=';
      out += i + 2 < s.length ? B64[n & 63] : '=';
    }
    return out;
  });
  defineGlobal('atob', function atob(input) {
    const s = String(input).replace(/[\t\n\f\r ]/g, '').replace(/=+$/, '');
    if (/[^A-Za-z0-9+/]/.test(s) || s.length % 4 === 1) {
      throw new Error('atob: invalid base64 input');
    }
    let out = '';
    let bits = 0;
    let acc = 0;
    for (let i = 0; i < s.length; i++) {
      acc = (acc << 6) | B64.indexOf(s[i]);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += String.fromCharCode((acc >> bits) & 255);
      }
    }
    return out;
  });
  class TextEncoder {
    get encoding() {
      return 'utf-8';
    }
    encode(input = '') {
      const bin = unescape(encodeURIComponent(String(input)));
      const out = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
      return out;
    }
  }
  class TextDecoder {
    get encoding() {
      return 'utf-8';
    }
    decode(input) {
      if (input === undefined) return '';
      const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      let bin = '';
      for (let i = 0; i < bytes.length; i += 0x8000) {
        bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
      try {
        return decodeURIComponent(escape(bin));
      } catch (_) {
        return bin;
      }
    }
  }
  defineGlobal('TextEncoder', TextEncoder);
  defineGlobal('TextDecoder', TextDecoder);

  // ---- fetch ---------------------------------------------------------------------------------
  class Headers {
    constructor(init) {
      this._map = new Map();
      if (init == null) return;
      if (init instanceof Headers) {
        init.forEach((v, k) => this.append(k, v));
      } else if (Array.isArray(init)) {
        for (const pair of init) this.append(pair[0], pair[1]);
      } else if (typeof init === 'object') {
        for (const k of Object.keys(init)) {
          if (init[k] !== undefined && init[k] !== null) this.append(k, init[k]);
        }
      }
    }
    append(name, value) {
      const k = String(name).toLowerCase();
      const v = String(value);
      this._map.set(k, this._map.has(k) ? `${this._map.get(k)}, ${v}` : v);
    }
    set(name, value) {
      this._map.set(String(name).toLowerCase(), String(value));
    }
    get(name) {
      const v = this._map.get(String(name).toLowerCase());
      return v === undefined ? null : v;
    }
    has(name) {
      return this._map.has(String(name).toLowerCase());
    }
    delete(name) {
      this._map.delete(String(name).toLowerCase());
    }
    forEach(callback, thisArg) {
      for (const [k, v] of this._map) callback.call(thisArg, v, k, this);
    }
    entries() {
      return this._map.entries();
    }
    keys() {
      return this._map.keys();
    }
    values() {
      return this._map.values();
    }
    [Symbol.iterator]() {
      return this._map.entries();
    }
    toJSON() {
      return Object.fromEntries(this._map);
    }
  }

  class Response {
    constructor(body, init = {}) {
      this._body = body == null ? '' : String(body);
      this.status = init.status === undefined ? 200 : init.status;
      this.statusText = init.statusText || '';
      this.headers = init.headers instanceof Headers ? init.headers : new Headers(init.headers);
      this.url = init.url || '';
      this.redirected = !!init.redirected;
      this.type = 'basic';
      this.bodyUsed = false;
    }
    get ok() {
      return this.status >= 200 && this.status < 300;
    }
    _consume() {
      if (this.bodyUsed) return Promise.reject(new TypeError('Body has already been consumed'));
      this.bodyUsed = true;
      return Promise.resolve(this._body);
    }
    text() {
      return this._consume();
    }
    json() {
      return this._consume().then((t) => JSON.parse(t));
    }
    arrayBuffer() {
      return this._consume().then((t) => new TextEncoder().encode(t).buffer);
    }
    clone() {
      return new Response(this._body, this);
    }
  }
  defineGlobal('Headers', Headers);
  defineGlobal('Response', Response);

  defineGlobal('fetch', function fetch(input, init) {
    return new Promise((resolve, reject) => {
      const options = init || {};
      const url = typeof input === 'string' ? input : input && input.url ? String(input.url) : String(input);
      const method = String(options.method || 'GET').toUpperCase();
      const headers = [];
      new Headers(options.headers).forEach((v, k) => headers.push(k, v));
      let body = options.body;
      if (body !== undefined && body !== null) {
        if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
          body = new TextDecoder().decode(body);
        } else {
          body = String(body);
        }
      } else {
        body = null;
      }
      const timeout = Number(options.timeout) > 0 ? Number(options.timeout) : 0;
      const manual = options.redirect === 'manual' || options.redirect === 'error';
      native.fetch(method, url, headers, body, timeout, manual).then((r) => {
        const h = new Headers();
        for (let i = 0; i + 1 < r.headers.length; i += 2) h.append(r.headers[i], r.headers[i + 1]);
        if (options.redirect === 'error' && r.status >= 300 && r.status < 400) {
          throw new TypeError('fetch failed: redirect mode is "error"');
        }
        resolve(new Response(r.body, { status: r.status, statusText: r.statusText, headers: h, url: r.url, redirected: r.redirected }));
      }).catch(reject);
    });
  });
})(globalThis);
