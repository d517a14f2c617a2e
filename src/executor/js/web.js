// keel executor prelude: the web platform globals, with Node 20's semantics (its error
// classes, messages and `code`s where user code can observe them). Evaluated once into each
// snapshot context after runtime.js (see snapshot.rs PRELUDE); the natives it needs arrive
// per context through the hook it registers with `__keel_prelude.onBoot`.
//
// Defined here: DOMException, Event, EventTarget, CustomEvent, AbortController, AbortSignal,
// TextEncoder, TextDecoder, atob, btoa, URL, URLSearchParams, Blob, File, ReadableStream,
// FormData (with the Node form-data methods), Headers, Request, Response, fetch,
// structuredClone.
//
// Byte work is native (UTF-8 in natives/text.rs, URL parsing by rust-url in natives/url.rs);
// every byte array is allocated here, in JavaScript, so it counts against the isolate's
// array-buffer budget and a refusal is a catchable RangeError.
(function (global) {
  'use strict';

  /** Natives, set per context. */
  let native = null;
  global.__keel_prelude.onBoot(function (natives) {
    native = natives;
  });
  /** node_crypto.js's random bytes (OpenSSL's RNG), shared so no second native is needed. */
  const randomFill = global.__keel_prelude.internals.randomFill;

  // The globals below are made on first use, per context: a context deserializes one
  // accessor per name instead of every class and method here (~0.1 ms of each call's
  // context creation), and a block that uses none of them pays nothing. Node installs its
  // web globals lazily the same way. Assigning a global first replaces it without building.
  const NAMES = [
    'DOMException', 'Event', 'EventTarget', 'CustomEvent', 'AbortSignal', 'AbortController',
    'TextEncoder', 'TextDecoder', 'btoa', 'atob', 'URL', 'URLSearchParams', 'Blob', 'File',
    'ReadableStream', 'ReadableStreamDefaultReader', 'FormData', 'Headers', 'Request',
    'Response', 'fetch', 'structuredClone',
  ];
  const accessors = new Map();
  /** This context's web API, once built. */
  let api = null;
  function materialize() {
    if (api !== null) return api;
    api = build();
    for (const name of NAMES) {
      if (!(name in api)) throw new Error(`web.js does not define ${name}`);
      const d = Object.getOwnPropertyDescriptor(global, name);
      if (d && d.get === accessors.get(name)) {
        Object.defineProperty(global, name, { value: api[name], writable: true, configurable: true, enumerable: false });
      }
    }
    return api;
  }
  /** For node_crypto.js: Web Crypto's errors are this context's DOMExceptions. */
  global.__keel_prelude.internals.web = materialize;
  for (const name of NAMES) {
    const get = function () {
      return materialize()[name];
    };
    accessors.set(name, get);
    Object.defineProperty(global, name, {
      configurable: true,
      enumerable: false,
      get,
      set(value) {
        Object.defineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
      },
    });
  }

  function build() {
    const api = {};
    function defineGlobal(name, value) {
      api[name] = value;
    }
    function tag(cls, name) {
      Object.defineProperty(cls.prototype, Symbol.toStringTag, { value: name, configurable: true });
    }
    /** A Node-style error: the given class, message and `code`. */
    function nodeError(Cls, code, message) {
      const e = new Cls(message);
      Object.defineProperty(e, 'code', { value: code, writable: true, configurable: true, enumerable: true });
      return e;
    }
    function typeName(v) {
      if (v === null) return 'null';
      if (v === undefined) return 'undefined';
      if (typeof v === 'function') return `function ${v.name}`;
      if (typeof v === 'object') {
        const n = v.constructor && v.constructor.name;
        return n ? `an instance of ${n}` : 'an object';
      }
      let shown = String(v);
      if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
      if (typeof v === 'string') shown = `'${shown}'`;
      return `type ${typeof v} (${shown})`;
    }
    function invalidArgType(name, expected, actual) {
      return nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be ${expected}. Received ${typeName(actual)}`);
    }
    function missingArgs(...names) {
      const list = names.map((n) => `"${n}"`);
      const text = list.length === 1 ? `The ${list[0]} argument` : `The ${list.slice(0, -1).join(', ')} and ${list[list.length - 1]} arguments`;
      return nodeError(TypeError, 'ERR_MISSING_ARGS', `${text} must be specified`);
    }
    /** A USVString: lone surrogates become U+FFFD. */
    function usv(v) {
      return String(v).toWellFormed();
    }
    const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));

    /** An iterator object over `next()`, with the given toStringTag (Node's iterator shapes). */
    function makeIterator(tagName, next) {
      const it = Object.create(IteratorPrototype);
      Object.defineProperty(it, 'next', { value: next, writable: true, configurable: true });
      Object.defineProperty(it, Symbol.toStringTag, { value: tagName, configurable: true });
      return it;
    }

    /**
     * A `keys`/`values`/`entries` iterator over `[key, value]` pairs; `pairs()` is asked at
     * every step, so an iterator over a live list sees changes made while it runs (as the
     * WHATWG iterators of URLSearchParams and FormData do).
     */
    function pairIterator(tagName, kind, pairs) {
      let i = 0;
      return makeIterator(tagName, function next() {
        const list = pairs();
        if (i >= list.length) return { value: undefined, done: true };
        const [k, v] = list[i++];
        return { value: kind === 'keys' ? k : kind === 'values' ? v : [k, v], done: false };
      });
    }

    // ---- DOMException --------------------------------------------------------------------------
    const domCodes = {
      IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5,
      NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11,
      SyntaxError: 12, InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
      TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20, URLMismatchError: 21,
      QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25,
    };
    class DOMException extends Error {
      #name;
      constructor(message = '', options = 'Error') {
        super(String(message));
        if (options !== null && typeof options === 'object') {
          this.#name = 'name' in options ? String(options.name) : 'Error';
          if ('cause' in options) {
            Object.defineProperty(this, 'cause', { value: options.cause, writable: true, configurable: true });
          }
        } else {
          this.#name = String(options);
        }
      }
      get name() {
        return this.#name;
      }
      get code() {
        return domCodes[this.#name] || 0;
      }
    }
    tag(DOMException, 'DOMException');
    for (const [name, code] of Object.entries(domCodes)) {
      const constName = name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase().replace(/_ERROR$/, '_ERR');
      Object.defineProperty(DOMException, constName, { value: code, enumerable: true });
      Object.defineProperty(DOMException.prototype, constName, { value: code, enumerable: true });
    }
    defineGlobal('DOMException', DOMException);

    // ---- Event, EventTarget ----------------------------------------------------------------------
    const eventState = new WeakMap();
    const started = Date.now();
    class Event {
      constructor(type, options = undefined) {
        if (arguments.length === 0) throw missingArgs('type');
        const o = options == null ? {} : options;
        eventState.set(this, {
          type: String(type),
          bubbles: !!o.bubbles,
          cancelable: !!o.cancelable,
          composed: !!o.composed,
          canceled: false,
          target: null,
          current: null,
          phase: 0,
          stop: false,
          stopNow: false,
          dispatching: false,
          timeStamp: Date.now() - started,
        });
      }
      get type() { return eventState.get(this).type; }
      get bubbles() { return eventState.get(this).bubbles; }
      get cancelable() { return eventState.get(this).cancelable; }
      get composed() { return eventState.get(this).composed; }
      get defaultPrevented() { const s = eventState.get(this); return s.cancelable && s.canceled; }
      get returnValue() { return !this.defaultPrevented; }
      get target() { return eventState.get(this).target; }
      get srcElement() { return eventState.get(this).target; }
      get currentTarget() { return eventState.get(this).current; }
      get eventPhase() { return eventState.get(this).phase; }
      get isTrusted() { return false; }
      get timeStamp() { return eventState.get(this).timeStamp; }
      get cancelBubble() { return eventState.get(this).stop; }
      set cancelBubble(v) { if (v) eventState.get(this).stop = true; }
      composedPath() {
        const s = eventState.get(this);
        return s.dispatching ? [s.current] : [];
      }
      preventDefault() {
        const s = eventState.get(this);
        // Node 20 does not suppress preventDefault() in passive listeners; neither does keel.
        if (s.cancelable) s.canceled = true;
      }
      stopPropagation() { eventState.get(this).stop = true; }
      stopImmediatePropagation() { const s = eventState.get(this); s.stop = true; s.stopNow = true; }
    }
    for (const [k, v] of [['NONE', 0], ['CAPTURING_PHASE', 1], ['AT_TARGET', 2], ['BUBBLING_PHASE', 3]]) {
      Object.defineProperty(Event, k, { value: v, enumerable: true });
      Object.defineProperty(Event.prototype, k, { value: v, enumerable: true });
    }
    tag(Event, 'Event');

    class CustomEvent extends Event {
      #detail;
      constructor(type, options = undefined) {
        if (arguments.length === 0) throw missingArgs('type');
        super(type, options);
        this.#detail = options != null && options.detail !== undefined ? options.detail : null;
      }
      get detail() { return this.#detail; }
    }
    tag(CustomEvent, 'CustomEvent');

    const listenersOf = new WeakMap();
    function listenerMap(target) {
      let m = listenersOf.get(target);
      if (!m) {
        m = new Map();
        listenersOf.set(target, m);
      }
      return m;
    }
    function flatten(options) {
      if (typeof options === 'boolean') return { capture: options, once: false, passive: false, signal: undefined };
      if (options == null) return { capture: false, once: false, passive: false, signal: undefined };
      return { capture: !!options.capture, once: !!options.once, passive: !!options.passive, signal: options.signal };
    }
    class EventTarget {
      constructor() {
        listenersOf.set(this, new Map());
      }
      addEventListener(type, listener, options = undefined) {
        if (arguments.length < 2) throw missingArgs('type', 'listener');
        if (listener == null) return;
        const { capture, once, passive, signal } = flatten(options);
        if (signal !== undefined && !(signal instanceof AbortSignal)) {
          throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
        }
        if (signal && signal.aborted) return;
        const t = String(type);
        const map = listenerMap(this);
        let list = map.get(t);
        if (!list) {
          list = [];
          map.set(t, list);
        }
        if (list.some((l) => l.listener === listener && l.capture === capture)) return;
        const entry = { listener, capture, once, passive, removed: false };
        list.push(entry);
        if (signal) {
          signal.addEventListener('abort', () => this.removeEventListener(t, listener, { capture }), { once: true });
        }
      }
      removeEventListener(type, listener, options = undefined) {
        if (arguments.length < 2) throw missingArgs('type', 'listener');
        const capture = typeof options === 'boolean' ? options : !!(options && options.capture);
        const list = listenerMap(this).get(String(type));
        if (!list) return;
        const i = list.findIndex((l) => l.listener === listener && l.capture === capture);
        if (i >= 0) {
          list[i].removed = true;
          list.splice(i, 1);
        }
      }
      dispatchEvent(event) {
        if (!(event instanceof Event)) throw invalidArgType('event', 'an instance of Event', event);
        const s = eventState.get(event);
        if (s.dispatching) throw new DOMException('The event is already being dispatched', 'InvalidStateError');
        s.dispatching = true;
        s.target = this;
        s.current = this;
        s.phase = 2;
        const list = listenerMap(this).get(s.type);
        if (list) {
          for (const l of list.slice()) {
            if (l.removed) continue;
            if (l.once) this.removeEventListener(s.type, l.listener, { capture: l.capture });
            try {
              if (typeof l.listener === 'function') l.listener.call(this, event);
              else if (l.listener && typeof l.listener.handleEvent === 'function') l.listener.handleEvent(event);
            } catch (err) {
              // Node reports a throwing listener as an uncaught exception; here it is logged
              // and the other listeners still run.
              console.error(err);
            }
            if (s.stopNow) break;
          }
        }
        s.dispatching = false;
        s.current = null;
        s.phase = 0;
        return !event.defaultPrevented;
      }
    }
    tag(EventTarget, 'EventTarget');
    defineGlobal('Event', Event);
    defineGlobal('EventTarget', EventTarget);
    defineGlobal('CustomEvent', CustomEvent);

    /** `on<event>` attribute: one listener, replaced when set. */
    function handlerAttribute(cls, type) {
      const handlers = new WeakMap();
      Object.defineProperty(cls.prototype, `on${type}`, {
        configurable: true,
        enumerable: true,
        get() {
          const h = handlers.get(this);
          return h ? h.fn : null;
        },
        set(fn) {
          const old = handlers.get(this);
          if (old) this.removeEventListener(type, old.wrapper);
          if (typeof fn === 'function') {
            const wrapper = (e) => fn.call(this, e);
            handlers.set(this, { fn, wrapper });
            this.addEventListener(type, wrapper);
          } else {
            handlers.delete(this);
          }
        },
      });
    }

    // ---- AbortController, AbortSignal -----------------------------------------------------------
    const kCreate = Symbol('create');
    const signalState = new WeakMap();
    class AbortSignal extends EventTarget {
      constructor(key) {
        if (key !== kCreate) throw nodeError(TypeError, 'ERR_ILLEGAL_CONSTRUCTOR', 'Illegal constructor');
        super();
        signalState.set(this, { aborted: false, reason: undefined });
      }
      get aborted() { return signalState.get(this).aborted; }
      get reason() { return signalState.get(this).reason; }
      throwIfAborted() {
        const s = signalState.get(this);
        if (s.aborted) throw s.reason;
      }
      static abort(reason = undefined) {
        const signal = new AbortSignal(kCreate);
        const s = signalState.get(signal);
        s.aborted = true;
        s.reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
        return signal;
      }
      static timeout(delay) {
        if (typeof delay !== 'number') throw invalidArgType('delay', 'of type number', delay);
        if (!Number.isInteger(delay)) {
          throw nodeError(RangeError, 'ERR_OUT_OF_RANGE', `The value of "delay" is out of range. It must be an integer. Received ${delay}`);
        }
        if (delay < 0 || delay > 4294967295) {
          throw nodeError(RangeError, 'ERR_OUT_OF_RANGE', `The value of "delay" is out of range. It must be >= 0 && <= 4294967295. Received ${delay}`);
        }
        const signal = new AbortSignal(kCreate);
        // Unref'd, as Node's: the call does not wait for it (event_loop.rs).
        const [promise] = native.sleep(delay, true);
        promise.then(() => abortSignal(signal, new DOMException('The operation was aborted due to timeout', 'TimeoutError')));
        return signal;
      }
      static any(signals) {
        const signal = new AbortSignal(kCreate);
        const list = Array.from(signals);
        for (const s of list) {
          if (!(s instanceof AbortSignal)) throw invalidArgType('signals', 'an instance of AbortSignal', s);
        }
        const first = list.find((s) => s.aborted);
        if (first) {
          const st = signalState.get(signal);
          st.aborted = true;
          st.reason = first.reason;
          return signal;
        }
        for (const s of list) {
          s.addEventListener('abort', () => abortSignal(signal, s.reason), { once: true });
        }
        return signal;
      }
    }
    handlerAttribute(AbortSignal, 'abort');
    tag(AbortSignal, 'AbortSignal');
    function abortSignal(signal, reason) {
      const s = signalState.get(signal);
      if (s.aborted) return;
      s.aborted = true;
      s.reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
      signal.dispatchEvent(new Event('abort'));
    }
    class AbortController {
      #signal = new AbortSignal(kCreate);
      get signal() { return this.#signal; }
      abort(reason = undefined) {
        abortSignal(this.#signal, reason);
      }
    }
    tag(AbortController, 'AbortController');
    defineGlobal('AbortSignal', AbortSignal);
    defineGlobal('AbortController', AbortController);

    // ---- TextEncoder, TextDecoder -----------------------------------------------------------------
    function utf8Encode(str) {
      const s = String(str);
      const n = native.utf8Length(s);
      const out = new Uint8Array(n);
      if (n > 0) native.utf8Write(s, out);
      return out;
    }
    function asBytes(input, name) {
      if (input instanceof ArrayBuffer) return new Uint8Array(input);
      if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      if (typeof SharedArrayBuffer === 'function' && input instanceof SharedArrayBuffer) return new Uint8Array(input);
      throw invalidArgType(name, 'an instance of ArrayBuffer or ArrayBufferView', input);
    }
    function utf8Decode(bytes) {
      return native.utf8Decode(bytes, false);
    }
    class TextEncoder {
      get encoding() { return 'utf-8'; }
      encode(input = '') {
        return utf8Encode(input);
      }
      encodeInto(src, dest) {
        if (!(dest instanceof Uint8Array)) throw invalidArgType('dest', 'an instance of Uint8Array', dest);
        const [read, written] = native.utf8EncodeInto(String(src), dest);
        return { read, written };
      }
    }
    tag(TextEncoder, 'TextEncoder');

    const encodingLabels = new Map();
    for (const l of ['unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'utf-8', 'utf8', 'x-unicode20utf8']) encodingLabels.set(l, 'utf-8');
    for (const l of ['csunicode', 'iso-10646-ucs-2', 'ucs-2', 'unicode', 'unicodefeff', 'utf-16', 'utf-16le']) encodingLabels.set(l, 'utf-16le');
    for (const l of ['ansi_x3.4-1968', 'ascii', 'cp1252', 'cp819', 'csisolatin1', 'ibm819', 'iso-8859-1', 'iso-ir-100', 'iso8859-1', 'iso88591', 'iso_8859-1', 'iso_8859-1:1987', 'l1', 'latin1', 'us-ascii', 'windows-1252', 'x-cp1252']) encodingLabels.set(l, 'windows-1252');

    class TextDecoder {
      #encoding;
      #fatal;
      #ignoreBOM;
      #pending = null;
      #started = false;
      constructor(label = 'utf-8', options = {}) {
        const key = String(label).trim().toLowerCase();
        const encoding = encodingLabels.get(key);
        if (encoding === undefined) {
          throw nodeError(RangeError, 'ERR_ENCODING_NOT_SUPPORTED', `The "${label}" encoding is not supported`);
        }
        const o = options == null ? {} : options;
        this.#encoding = encoding;
        this.#fatal = !!o.fatal;
        this.#ignoreBOM = !!o.ignoreBOM;
      }
      get encoding() { return this.#encoding; }
      get fatal() { return this.#fatal; }
      get ignoreBOM() { return this.#ignoreBOM; }
      decode(input = undefined, options = {}) {
        let bytes;
        if (input === undefined) bytes = new Uint8Array(0);
        else if (input instanceof ArrayBuffer || ArrayBuffer.isView(input) || (typeof SharedArrayBuffer === 'function' && input instanceof SharedArrayBuffer)) bytes = asBytes(input, 'input');
        else throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "list" argument must be an instance of SharedArrayBuffer, ArrayBuffer or ArrayBufferView.');
        const stream = !!(options && options.stream);
        if (this.#pending) {
          const joined = new Uint8Array(this.#pending.length + bytes.length);
          joined.set(this.#pending);
          joined.set(bytes, this.#pending.length);
          bytes = joined;
          this.#pending = null;
        }
        let keep = 0;
        if (this.#encoding === 'utf-8') {
          if (stream) keep = incompleteUtf8Tail(bytes);
        } else if (this.#encoding === 'utf-16le') {
          if (stream) keep = bytes.length % 2;
        }
        if (keep > 0) {
          this.#pending = bytes.slice(bytes.length - keep);
          bytes = bytes.subarray(0, bytes.length - keep);
        }
        let text;
        if (this.#encoding === 'utf-8') {
          text = native.utf8Decode(bytes, this.#fatal);
        } else if (this.#encoding === 'utf-16le') {
          text = decodeUtf16le(bytes, this.#fatal);
        } else {
          text = decodeLatin1(bytes);
        }
        if (!this.#started && text.length > 0) {
          this.#started = true;
          if (!this.#ignoreBOM && this.#encoding !== 'windows-1252' && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        }
        if (!stream) {
          this.#started = false;
          this.#pending = null;
        }
        return text;
      }
    }
    tag(TextDecoder, 'TextDecoder');
    /** Bytes at the end of `b` that begin a UTF-8 sequence not yet complete. */
    function incompleteUtf8Tail(b) {
      for (let back = 1; back <= Math.min(3, b.length); back++) {
        const c = b[b.length - back];
        if ((c & 0xc0) === 0x80) continue;
        const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return need > back ? back : 0;
      }
      return 0;
    }
    function decodeUtf16le(b, fatal) {
      let out = '';
      const n = b.length - (b.length % 2);
      for (let i = 0; i < n; i += 2) out += String.fromCharCode(b[i] | (b[i + 1] << 8));
      if (n < b.length) {
        if (fatal) throw nodeError(TypeError, 'ERR_ENCODING_INVALID_ENCODED_DATA', 'The encoded data was not valid for encoding utf-16le');
        out += '\ufffd';
      }
      if (fatal && !out.isWellFormed()) {
        throw nodeError(TypeError, 'ERR_ENCODING_INVALID_ENCODED_DATA', 'The encoded data was not valid for encoding utf-16le');
      }
      return out.toWellFormed();
    }
    /** Node 20 decodes every windows-1252 label as ISO-8859-1 (bytes 0x80-0x9f stay C1 controls). */
    function decodeLatin1(b) {
      let out = '';
      for (let i = 0; i < b.length; i += 0x8000) out += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
      return out;
    }
    defineGlobal('TextEncoder', TextEncoder);
    defineGlobal('TextDecoder', TextDecoder);

    // ---- atob, btoa ------------------------------------------------------------------------------
    const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    defineGlobal('btoa', function btoa(input) {
      if (arguments.length === 0) throw missingArgs('input');
      const s = String(input);
      let out = '';
      for (let i = 0; i < s.length; i += 3) {
        const a = s.charCodeAt(i);
        const b = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        const c = i + 2 < s.length ? s.charCodeAt(i + 2) : 0;
        if (a > 255 || b > 255 || c > 255) throw new DOMException('Invalid character', 'InvalidCharacterError');
        const n = (a << 16) | (b << 8) | c;
        out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
        out += i + 1 < s.length ? B64[(n >> 6) & 63] : '=';
        out += i + 2 < s.length ? B64[n & 63] : '=';
      }
      return out;
    });
    // Node's forgiving-base64 checks, in its order (its messages tell the two failures apart).
    const B64_WHITESPACE = new Set([0x09, 0x0a, 0x0c, 0x0d, 0x20]);
    defineGlobal('atob', function atob(input) {
      if (arguments.length === 0) throw missingArgs('input');
      const s = `${input}`;
      let count = 0;
      let equals = 0;
      let clean = '';
      for (let n = 0; n < s.length; n++) {
        const c = s.charCodeAt(n);
        if (B64_WHITESPACE.has(c)) continue;
        count++;
        if (c === 0x3d) {
          equals++;
        } else if (B64.indexOf(s[n]) < 0) {
          throw new DOMException('Invalid character', 'InvalidCharacterError');
        } else if (equals) {
          throw new DOMException('Invalid character', 'InvalidCharacterError');
        }
        if (equals > 2) throw new DOMException('Invalid character', 'InvalidCharacterError');
        if (c !== 0x3d) clean += s[n];
      }
      let reminder = count % 4;
      if (!reminder) reminder = (count - equals) % 4;
      else if (equals) throw new DOMException('Invalid character', 'InvalidCharacterError');
      if (reminder === 1) {
        throw new DOMException('The string to be decoded is not correctly encoded.', 'InvalidCharacterError');
      }
      let out = '';
      let bits = 0;
      let acc = 0;
      for (let i = 0; i < clean.length; i++) {
        acc = ((acc << 6) | B64.indexOf(clean[i])) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          out += String.fromCharCode((acc >> bits) & 255);
        }
      }
      return out;
    });

    // ---- URLSearchParams, URL ----------------------------------------------------------------------
    function formEncode(s) {
      return encodeURIComponent(s)
        .replace(/%20/g, '+')
        .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    }
    function percentDecodeBytes(bytes) {
      const out = new Uint8Array(bytes.length);
      let n = 0;
      const hex = (c) => (c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1);
      for (let i = 0; i < bytes.length; i++) {
        const c = bytes[i];
        if (c === 37 && i + 2 < bytes.length) {
          const h = hex(bytes[i + 1]);
          const l = hex(bytes[i + 2]);
          if (h >= 0 && l >= 0) {
            out[n++] = (h << 4) | l;
            i += 2;
            continue;
          }
        }
        out[n++] = c;
      }
      return out.subarray(0, n);
    }
    function formDecode(s) {
      const t = s.replace(/\+/g, ' ');
      if (!t.includes('%')) return t;
      return utf8Decode(percentDecodeBytes(utf8Encode(t)));
    }
    function parseQuery(s) {
      const out = [];
      for (const seq of s.split('&')) {
        if (seq === '') continue;
        const i = seq.indexOf('=');
        const name = i < 0 ? seq : seq.slice(0, i);
        const value = i < 0 ? '' : seq.slice(i + 1);
        out.push([formDecode(name), formDecode(value)]);
      }
      return out;
    }
    function serializeQuery(list) {
      return list.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join('&');
    }

    let paramsAttach;
    let paramsReplace;
    let paramsList;
    class URLSearchParams {
      #list = [];
      #onUpdate = null;
      static {
        paramsAttach = (p, fn) => { p.#onUpdate = fn; };
        paramsReplace = (p, list) => { p.#list = list; };
        paramsList = (p) => p.#list;
      }
      constructor(init = undefined) {
        if (init === undefined) return;
        if (init !== null && (typeof init === 'object' || typeof init === 'function')) {
          if (typeof init[Symbol.iterator] === 'function') {
            for (const pair of init) {
              if (pair === null || (typeof pair !== 'object' && typeof pair !== 'function') || typeof pair[Symbol.iterator] !== 'function') {
                throw nodeError(TypeError, 'ERR_INVALID_TUPLE', 'Each query pair must be an iterable [name, value] tuple');
              }
              const kv = Array.from(pair);
              if (kv.length !== 2) {
                throw nodeError(TypeError, 'ERR_INVALID_TUPLE', 'Each query pair must be an iterable [name, value] tuple');
              }
              this.#list.push([usv(kv[0]), usv(kv[1])]);
            }
          } else {
            for (const key of Object.keys(init)) this.#list.push([usv(key), usv(init[key])]);
          }
          return;
        }
        let s = usv(init);
        if (s.startsWith('?')) s = s.slice(1);
        this.#list = parseQuery(s);
      }
      #update() {
        if (this.#onUpdate) this.#onUpdate(serializeQuery(this.#list));
      }
      get size() { return this.#list.length; }
      append(name, value) {
        if (arguments.length < 2) throw missingArgs('name', 'value');
        this.#list.push([usv(name), usv(value)]);
        this.#update();
      }
      delete(name, value = undefined) {
        if (arguments.length < 1) throw missingArgs('name');
        const n = usv(name);
        const v = value === undefined ? undefined : usv(value);
        this.#list = this.#list.filter(([k, x]) => !(k === n && (v === undefined || x === v)));
        this.#update();
      }
      get(name) {
        if (arguments.length < 1) throw missingArgs('name');
        const n = usv(name);
        const e = this.#list.find(([k]) => k === n);
        return e ? e[1] : null;
      }
      getAll(name) {
        if (arguments.length < 1) throw missingArgs('name');
        const n = usv(name);
        return this.#list.filter(([k]) => k === n).map((e) => e[1]);
      }
      has(name, value = undefined) {
        if (arguments.length < 1) throw missingArgs('name');
        const n = usv(name);
        const v = value === undefined ? undefined : usv(value);
        return this.#list.some(([k, x]) => k === n && (v === undefined || x === v));
      }
      set(name, value) {
        if (arguments.length < 2) throw missingArgs('name', 'value');
        const n = usv(name);
        const v = usv(value);
        const i = this.#list.findIndex(([k]) => k === n);
        if (i < 0) {
          this.#list.push([n, v]);
        } else {
          this.#list[i][1] = v;
          this.#list = this.#list.filter(([k], j) => j <= i || k !== n);
        }
        this.#update();
      }
      sort() {
        // Stable, by UTF-16 code units.
        this.#list = this.#list
          .map((e, i) => [e, i])
          .sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1]))
          .map((x) => x[0]);
        this.#update();
      }
      forEach(callback, thisArg = undefined) {
        if (typeof callback !== 'function') throw invalidArgType('callback', 'of type function', callback);
        for (let i = 0; i < this.#list.length; i++) {
          const [k, v] = this.#list[i];
          callback.call(thisArg, v, k, this);
        }
      }
      #iterate(kind) {
        return pairIterator('URLSearchParams Iterator', kind, () => paramsList(this));
      }
      keys() { return this.#iterate('keys'); }
      values() { return this.#iterate('values'); }
      entries() { return this.#iterate('entries'); }
      [Symbol.iterator]() { return this.#iterate('entries'); }
      toString() { return serializeQuery(this.#list); }
    }
    tag(URLSearchParams, 'URLSearchParams');

    const URL_FIELDS = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'];
    function invalidUrl(input, base) {
      const e = nodeError(TypeError, 'ERR_INVALID_URL', 'Invalid URL');
      e.input = input;
      if (base !== undefined) e.base = base;
      return e;
    }
    let urlParts;
    let urlSet;
    class URL {
      #parts;
      #params;
      static {
        urlParts = (u) => u.#parts;
        urlSet = (u, field, value) => u.#set(field, value);
      }
      constructor(url, base = undefined) {
        if (arguments.length === 0) throw missingArgs('url');
        const input = usv(url);
        const b = base === undefined ? undefined : usv(base);
        const parts = native.urlParse(input, b);
        if (parts === null) throw invalidUrl(input, b);
        this.#parts = parts;
        this.#params = new URLSearchParams(parts[9]);
        paramsAttach(this.#params, (query) => {
          this.#set('search', query);
        });
      }
      #set(field, value) {
        const parts = native.urlSet(this.#parts[0], field, usv(value));
        if (parts === null) {
          if (field === 'href') throw invalidUrl(usv(value));
          return;
        }
        this.#parts = parts;
        if (field === 'href' || field === 'search') paramsReplace(this.#params, parseQuery(parts[9].replace(/^\?/, '')));
      }
      get searchParams() { return this.#params; }
      toString() { return this.#parts[0]; }
      toJSON() { return this.#parts[0]; }
      static canParse(url, base = undefined) {
        if (arguments.length === 0) throw missingArgs('url');
        return native.urlParse(usv(url), base === undefined ? undefined : usv(base)) !== null;
      }
    }
    URL_FIELDS.forEach((field, i) => {
      const desc = {
        configurable: true,
        enumerable: true,
        get() {
          return urlParts(this)[i];
        },
      };
      if (field !== 'origin') {
        desc.set = function (v) {
          urlSet(this, field, v);
        };
      }
      Object.defineProperty(URL.prototype, field, desc);
    });
    tag(URL, 'URL');
    defineGlobal('URL', URL);
    defineGlobal('URLSearchParams', URLSearchParams);

    // ---- Blob, File ------------------------------------------------------------------------------
    function concatBytes(chunks) {
      let n = 0;
      for (const c of chunks) n += c.length;
      const out = new Uint8Array(n);
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    }
    /** A copy of the bytes of an ArrayBuffer or a view. */
    function copyBytes(source) {
      const view = source instanceof ArrayBuffer ? new Uint8Array(source) : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
      return view.slice();
    }
    function blobType(type) {
      const t = type === undefined ? '' : String(type);
      return /[^\u0020-\u007e]/.test(t) ? '' : t.toLowerCase();
    }
    let blobBytes;
    class Blob {
      #bytes;
      #type;
      static {
        blobBytes = (b) => b.#bytes;
      }
      constructor(sources = [], options = undefined) {
        if (sources === null || typeof sources !== 'object' || typeof sources[Symbol.iterator] !== 'function') {
          throw invalidArgType('sources', 'a sequence', sources);
        }
        const o = options == null ? {} : options;
        const endings = o.endings === undefined ? 'transparent' : String(o.endings);
        if (endings !== 'transparent' && endings !== 'native') {
          throw nodeError(TypeError, 'ERR_INVALID_ARG_VALUE', `The property 'options.endings' is invalid. Received '${endings}'`);
        }
        const chunks = [];
        for (const part of sources) {
          if (part instanceof Blob) chunks.push(part.#bytes);
          else if (part instanceof ArrayBuffer || ArrayBuffer.isView(part)) chunks.push(copyBytes(part));
          else {
            let s = String(part);
            if (endings === 'native') s = s.replace(/\r\n|\r/g, '\n');
            chunks.push(utf8Encode(s));
          }
        }
        this.#bytes = concatBytes(chunks);
        this.#type = blobType(o.type);
      }
      get size() { return this.#bytes.length; }
      get type() { return this.#type; }
      slice(start = 0, end = undefined, contentType = '') {
        const n = this.#bytes.length;
        const rel = (v, dflt) => {
          if (v === undefined) return dflt;
          const x = Math.trunc(Number(v)) || 0;
          return x < 0 ? Math.max(n + x, 0) : Math.min(x, n);
        };
        const from = rel(start, 0);
        const to = rel(end, n);
        const b = new Blob([], { type: contentType });
        b.#bytes = this.#bytes.slice(from, Math.max(from, to));
        return b;
      }
      text() { return Promise.resolve(utf8Decode(this.#bytes)); }
      arrayBuffer() { return Promise.resolve(this.#bytes.slice().buffer); }
      bytes() { return Promise.resolve(this.#bytes.slice()); }
      stream() {
        const bytes = this.#bytes;
        return new ReadableStream({
          start(controller) {
            if (bytes.length > 0) controller.enqueue(bytes.slice());
            controller.close();
          },
        });
      }
    }
    tag(Blob, 'Blob');
    class File extends Blob {
      #name;
      #lastModified;
      constructor(fileBits, fileName, options = undefined) {
        if (arguments.length < 2) throw missingArgs('fileBits', 'fileName');
        super(fileBits, options);
        const o = options == null ? {} : options;
        this.#name = usv(fileName);
        const lm = o.lastModified === undefined ? Date.now() : Number(o.lastModified);
        this.#lastModified = Number.isFinite(lm) ? Math.trunc(lm) : 0;
      }
      get name() { return this.#name; }
      get lastModified() { return this.#lastModified; }
    }
    tag(File, 'File');
    defineGlobal('Blob', Blob);
    defineGlobal('File', File);

    // ---- ReadableStream (the part a fetch body and Blob.stream() need) -----------------------------
    let streamDisturbed;
    let streamReadAll;
    class ReadableStream {
      #queue = [];
      #state = 'readable';
      #error = undefined;
      #reader = null;
      #requests = [];
      #source;
      #pulling = false;
      #started = false;
      #disturbed = false;
      #controller;
      static {
        streamDisturbed = (s) => s.#disturbed;
        streamReadAll = async (s) => {
          const reader = s.getReader();
          const chunks = [];
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            if (!(value instanceof Uint8Array)) throw new TypeError('Received non-Uint8Array chunk');
            chunks.push(value);
          }
          return concatBytes(chunks);
        };
      }
      constructor(source = undefined, strategy = undefined) {
        void strategy;
        this.#source = source == null ? {} : source;
        const self = this;
        this.#controller = {
          get desiredSize() {
            return self.#state === 'readable' ? Math.max(0, 1 - self.#queue.length) : self.#state === 'closed' ? 0 : null;
          },
          enqueue(chunk) {
            if (self.#state !== 'readable' || self.#closeRequested) throw nodeError(TypeError, 'ERR_INVALID_STATE', 'Invalid state: Controller is already closed');
            const req = self.#requests.shift();
            if (req) req.resolve({ value: chunk, done: false });
            else self.#queue.push(chunk);
          },
          close() {
            if (self.#state !== 'readable' || self.#closeRequested) throw nodeError(TypeError, 'ERR_INVALID_STATE', 'Invalid state: Controller is already closed');
            self.#closeRequested = true;
            if (self.#queue.length === 0) self.#close();
          },
          error(e) {
            self.#fail(e);
          },
        };
        const start = typeof this.#source.start === 'function' ? this.#source.start(this.#controller) : undefined;
        Promise.resolve(start).then(
          () => {
            this.#started = true;
            this.#pull();
          },
          (e) => this.#fail(e)
        );
      }
      #closeRequested = false;
      #close() {
        this.#state = 'closed';
        for (const r of this.#requests.splice(0)) r.resolve({ value: undefined, done: true });
        if (this.#reader) this.#reader.__closed.resolve(undefined);
      }
      #fail(e) {
        if (this.#state !== 'readable') return;
        this.#state = 'errored';
        this.#error = e;
        this.#queue = [];
        for (const r of this.#requests.splice(0)) r.reject(e);
        if (this.#reader) this.#reader.__closed.reject(e);
      }
      #pull() {
        if (!this.#started || this.#pulling || this.#state !== 'readable' || this.#closeRequested) return;
        if (this.#requests.length === 0 || typeof this.#source.pull !== 'function') return;
        this.#pulling = true;
        Promise.resolve()
          .then(() => this.#source.pull(this.#controller))
          .then(
            () => {
              this.#pulling = false;
              this.#pull();
            },
            (e) => this.#fail(e)
          );
      }
      /** One read for a reader of this stream. */
      _read() {
        this.#disturbed = true;
        if (this.#queue.length > 0) {
          const value = this.#queue.shift();
          if (this.#closeRequested && this.#queue.length === 0) this.#close();
          return Promise.resolve({ value, done: false });
        }
        if (this.#state === 'closed') return Promise.resolve({ value: undefined, done: true });
        if (this.#state === 'errored') return Promise.reject(this.#error);
        return new Promise((resolve, reject) => {
          this.#requests.push({ resolve, reject });
          this.#pull();
        });
      }
      _cancel(reason) {
        this.#disturbed = true;
        if (this.#state === 'closed') return Promise.resolve();
        if (this.#state === 'errored') return Promise.reject(this.#error);
        this.#queue = [];
        this.#close();
        const c = typeof this.#source.cancel === 'function' ? this.#source.cancel(reason) : undefined;
        return Promise.resolve(c).then(() => undefined);
      }
      _lock(reader) {
        this.#reader = reader;
        if (this.#state === 'closed') reader.__closed.resolve(undefined);
        if (this.#state === 'errored') reader.__closed.reject(this.#error);
      }
      _unlock() {
        this.#reader = null;
      }
      get locked() { return this.#reader !== null; }
      getReader(options = undefined) {
        if (options && options.mode !== undefined && String(options.mode) !== 'byob') {
          throw nodeError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument 'options.mode' is invalid. Received '${options.mode}'`);
        }
        return new ReadableStreamDefaultReader(this);
      }
      cancel(reason = undefined) {
        if (this.locked) return Promise.reject(nodeError(TypeError, 'ERR_INVALID_STATE', 'Invalid state: ReadableStream is locked'));
        return this._cancel(reason);
      }
      values(options = undefined) {
        const reader = this.getReader();
        const preventCancel = !!(options && options.preventCancel);
        const it = Object.create(Object.getPrototypeOf(Object.getPrototypeOf((async function* () {})())));
        it.next = () =>
          reader.read().then((r) => {
            if (r.done) reader.releaseLock();
            return r;
          });
        it.return = (value) => {
          const done = preventCancel ? Promise.resolve() : reader.cancel(value);
          return done.then(() => {
            reader.releaseLock();
            return { value, done: true };
          });
        };
        return it;
      }
      [Symbol.asyncIterator](options = undefined) {
        return this.values(options);
      }
    }
    tag(ReadableStream, 'ReadableStream');
    class ReadableStreamDefaultReader {
      #stream;
      constructor(stream) {
        if (!(stream instanceof ReadableStream)) throw invalidArgType('stream', 'an instance of ReadableStream', stream);
        if (stream.locked) throw nodeError(TypeError, 'ERR_INVALID_STATE', 'Invalid state: ReadableStream is locked');
        let resolve;
        let reject;
        const closed = new Promise((a, b) => {
          resolve = a;
          reject = b;
        });
        closed.catch(() => {});
        Object.defineProperty(this, '__closed', { value: { promise: closed, resolve, reject } });
        this.#stream = stream;
        stream._lock(this);
      }
      get closed() { return this.__closed.promise; }
      read() {
        if (!this.#stream) return Promise.reject(nodeError(TypeError, 'ERR_INVALID_STATE', 'Invalid state: The reader is not attached to a stream'));
        return this.#stream._read();
      }
      cancel(reason = undefined) {
        if (!this.#stream) return Promise.reject(nodeError(TypeError, 'ERR_INVALID_STATE', 'Invalid state: The reader is not attached to a stream'));
        return this.#stream._cancel(reason);
      }
      releaseLock() {
        if (!this.#stream) return;
        this.#stream._unlock();
        this.#stream = null;
      }
    }
    tag(ReadableStreamDefaultReader, 'ReadableStreamDefaultReader');
    for (const name of ['_read', '_cancel', '_lock', '_unlock']) {
      Object.defineProperty(ReadableStream.prototype, name, { enumerable: false });
    }
    defineGlobal('ReadableStream', ReadableStream);
    defineGlobal('ReadableStreamDefaultReader', ReadableStreamDefaultReader);

    // ---- FormData (Web API + the Node form-data package's methods) ---------------------------------
    function formEntry(name, value, filename, viaSet) {
      const n = usv(name);
      if (value instanceof Blob) {
        let fname = filename;
        let type;
        if (filename !== null && typeof filename === 'object') {
          fname = filename.filename;
          type = filename.contentType;
        }
        if (fname === undefined) fname = value instanceof File ? value.name : 'blob';
        if (!(value instanceof File) || filename !== undefined) {
          const opts = { type: type === undefined ? value.type : type };
          if (value instanceof File) opts.lastModified = value.lastModified;
          value = new File([value], usv(fname), opts);
        }
        return [n, value];
      }
      if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
        // form-data's append(name, buffer, filename | {filename, contentType}).
        let fname = 'blob';
        let type = 'application/octet-stream';
        if (typeof filename === 'string') fname = filename;
        else if (filename !== null && typeof filename === 'object') {
          if (filename.filename !== undefined) fname = String(filename.filename);
          if (filename.contentType !== undefined) type = String(filename.contentType);
        }
        return [n, new File([value], fname, { type })];
      }
      if (filename !== undefined && typeof filename !== 'object') {
        throw new TypeError(`Failed to execute '${viaSet ? 'set' : 'append'}' on 'FormData': parameter 2 is not of type 'Blob'`);
      }
      return [n, usv(value)];
    }
    function quoteName(s) {
      return s.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
    }
    function randomHex(bytes) {
      const b = new Uint8Array(bytes);
      randomFill(b);
      return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    }
    let formEntries;
    class FormData {
      #entries = [];
      #boundary = null;
      static {
        formEntries = (f) => f.#entries;
      }
      constructor(form = undefined) {
        if (form !== undefined) {
          throw new TypeError("Failed to construct 'FormData': parameter 1 is not of type 'HTMLFormElement'.");
        }
      }
      append(name, value, filename = undefined) {
        if (arguments.length < 2) throw missingArgs('name', 'value');
        this.#entries.push(formEntry(name, value, filename, false));
      }
      set(name, value, filename = undefined) {
        if (arguments.length < 2) throw missingArgs('name', 'value');
        const entry = formEntry(name, value, filename, true);
        const i = this.#entries.findIndex(([k]) => k === entry[0]);
        if (i < 0) this.#entries.push(entry);
        else {
          this.#entries[i] = entry;
          this.#entries = this.#entries.filter(([k], j) => j <= i || k !== entry[0]);
        }
      }
      delete(name) {
        const n = usv(name);
        this.#entries = this.#entries.filter(([k]) => k !== n);
      }
      get(name) {
        const n = usv(name);
        const e = this.#entries.find(([k]) => k === n);
        return e ? e[1] : null;
      }
      getAll(name) {
        const n = usv(name);
        return this.#entries.filter(([k]) => k === n).map((e) => e[1]);
      }
      has(name) {
        const n = usv(name);
        return this.#entries.some(([k]) => k === n);
      }
      forEach(callback, thisArg = undefined) {
        if (typeof callback !== 'function') throw invalidArgType('callback', 'of type function', callback);
        for (const [k, v] of this.#entries.slice()) callback.call(thisArg, v, k, this);
      }
      #iterate(kind) {
        return pairIterator('FormData Iterator', kind, () => formEntries(this));
      }
      keys() { return this.#iterate('keys'); }
      values() { return this.#iterate('values'); }
      entries() { return this.#iterate('entries'); }
      [Symbol.iterator]() { return this.#iterate('entries'); }
      // -- the form-data package's API (Node code written against `require('form-data')`) --
      getBoundary() {
        if (this.#boundary === null) this.#boundary = `--------------------------${randomHex(12)}`;
        return this.#boundary;
      }
      setBoundary(boundary) {
        if (typeof boundary !== 'string') throw new TypeError('FormData boundary must be a string');
        this.#boundary = boundary;
      }
      getHeaders(userHeaders = undefined) {
        const headers = { 'content-type': `multipart/form-data; boundary=${this.getBoundary()}` };
        if (userHeaders != null) {
          for (const k of Object.keys(userHeaders)) headers[k.toLowerCase()] = userHeaders[k];
        }
        return headers;
      }
      getBuffer() {
        const bytes = serializeForm(this);
        return typeof global.Buffer === 'function' && typeof global.Buffer.from === 'function'
          ? global.Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
          : bytes;
      }
      getLengthSync() {
        return serializeForm(this).length;
      }
      hasKnownLength() {
        return true;
      }
      getLength(callback) {
        const n = this.getLengthSync();
        if (typeof callback === 'function') queueMicrotask(() => callback(null, n));
        return undefined;
      }
    }
    tag(FormData, 'FormData');
    /** multipart/form-data bytes of a FormData, with its boundary. */
    function serializeForm(form) {
      const boundary = form.getBoundary();
      const chunks = [];
      for (const [name, value] of formEntries(form)) {
        if (value instanceof File) {
          const type = value.type || 'application/octet-stream';
          chunks.push(utf8Encode(`--${boundary}\r\nContent-Disposition: form-data; name="${quoteName(name)}"; filename="${quoteName(value.name)}"\r\nContent-Type: ${type}\r\n\r\n`));
          chunks.push(blobBytes(value));
          chunks.push(utf8Encode('\r\n'));
        } else {
          const v = value.replace(/\r(?!\n)|(?<!\r)\n/g, '\r\n');
          chunks.push(utf8Encode(`--${boundary}\r\nContent-Disposition: form-data; name="${quoteName(name)}"\r\n\r\n${v}\r\n`));
        }
      }
      chunks.push(utf8Encode(`--${boundary}--\r\n`));
      return concatBytes(chunks);
    }
    /** Parses multipart/form-data bytes (Response.formData()). */
    function parseMultipart(bytes, boundary) {
      let bin = '';
      for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      const delim = `--${boundary}`;
      const form = new FormData();
      let pos = bin.indexOf(delim);
      if (pos < 0) throw new TypeError('Failed to parse body as FormData.');
      for (;;) {
        pos += delim.length;
        if (bin.startsWith('--', pos)) break;
        if (bin.startsWith('\r\n', pos)) pos += 2;
        const headEnd = bin.indexOf('\r\n\r\n', pos);
        if (headEnd < 0) throw new TypeError('Failed to parse body as FormData.');
        const head = utf8Decode(bytes.subarray(pos, headEnd));
        const next = bin.indexOf(`\r\n${delim}`, headEnd + 4);
        if (next < 0) throw new TypeError('Failed to parse body as FormData.');
        const body = bytes.subarray(headEnd + 4, next);
        const disp = /content-disposition:[^\r\n]*?\bname="([^"]*)"(?:[^\r\n]*?\bfilename="([^"]*)")?/i.exec(head);
        if (!disp) throw new TypeError('Failed to parse body as FormData.');
        const unquote = (s) => s.replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%22/g, '"');
        const type = /content-type:\s*([^\r\n]*)/i.exec(head);
        if (disp[2] !== undefined) {
          form.append(unquote(disp[1]), new File([body], unquote(disp[2]), { type: type ? type[1] : '' }));
        } else {
          form.append(unquote(disp[1]), utf8Decode(body));
        }
        pos = next + 2;
      }
      return form;
    }
    defineGlobal('FormData', FormData);

    // ---- Headers -----------------------------------------------------------------------------------
    const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
    function headerValue(v) {
      return String(v).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
    }
    let headersGuard;
    let headersRaw;
    class Headers {
      /** lowercase name -> values (in order). */
      #map = new Map();
      #guard = 'none';
      static {
        headersGuard = (h, g) => { h.#guard = g; };
        headersRaw = (h) => h.#map;
      }
      constructor(init = undefined) {
        if (init === undefined || init === null) {
          if (init === null) throw new TypeError("Headers constructor: Argument 1 could not be converted to any of: sequence<sequence<ByteString>>, record<ByteString, ByteString>.");
          return;
        }
        if (typeof init !== 'object' && typeof init !== 'function') {
          throw new TypeError("Headers constructor: Argument 1 could not be converted to any of: sequence<sequence<ByteString>>, record<ByteString, ByteString>.");
        }
        if (init instanceof Headers) {
          for (const [k, vs] of init.#map) this.#map.set(k, vs.slice());
        } else if (typeof init[Symbol.iterator] === 'function') {
          for (const pair of init) {
            const kv = typeof pair === 'string' ? null : Array.from(pair);
            if (kv === null || kv.length !== 2) {
              throw new TypeError(`Headers constructor: expected name/value pair to be length 2, found ${kv === null ? pair.length : kv.length}.`);
            }
            this.append(kv[0], kv[1]);
          }
        } else {
          for (const k of Reflect.ownKeys(init)) {
            const d = Reflect.getOwnPropertyDescriptor(init, k);
            if (d === undefined || !d.enumerable) continue;
            if (typeof k === 'symbol') throw new TypeError('Headers constructor: Key is a symbol, which cannot be converted to a ByteString.');
            this.append(k, init[k]);
          }
        }
      }
      #check(op, name, value) {
        const n = String(name);
        if (!TOKEN.test(n)) throw new TypeError(`Headers.${op}: "${n}" is an invalid header name.`);
        if (value !== undefined && /[\0\r\n]/.test(value)) throw new TypeError(`Headers.${op}: "${value}" is an invalid header value.`);
        if (this.#guard === 'immutable') throw new TypeError('immutable');
        return n.toLowerCase();
      }
      append(name, value) {
        if (arguments.length < 2) throw missingArgs('name', 'value');
        const v = headerValue(value);
        const k = this.#check('append', name, v);
        const list = this.#map.get(k);
        if (list) list.push(v);
        else this.#map.set(k, [v]);
      }
      set(name, value) {
        if (arguments.length < 2) throw missingArgs('name', 'value');
        const v = headerValue(value);
        this.#map.set(this.#check('set', name, v), [v]);
      }
      delete(name) {
        if (arguments.length < 1) throw missingArgs('name');
        this.#map.delete(this.#check('delete', name));
      }
      get(name) {
        if (arguments.length < 1) throw missingArgs('name');
        const n = String(name);
        if (!TOKEN.test(n)) throw new TypeError(`Headers.get: "${n}" is an invalid header name.`);
        const list = this.#map.get(n.toLowerCase());
        return list ? list.join(', ') : null;
      }
      has(name) {
        if (arguments.length < 1) throw missingArgs('name');
        const n = String(name);
        if (!TOKEN.test(n)) throw new TypeError(`Headers.has: "${n}" is an invalid header name.`);
        return this.#map.has(n.toLowerCase());
      }
      getSetCookie() {
        const list = this.#map.get('set-cookie');
        return list ? list.slice() : [];
      }
      #sorted() {
        const out = [];
        for (const k of [...this.#map.keys()].sort()) {
          if (k === 'set-cookie') for (const v of this.#map.get(k)) out.push([k, v]);
          else out.push([k, this.#map.get(k).join(', ')]);
        }
        return out;
      }
      forEach(callback, thisArg = undefined) {
        if (typeof callback !== 'function') throw new TypeError("Headers.forEach: Argument 1 could not be converted to: Function.");
        for (const [k, v] of this.#sorted()) callback.call(thisArg, v, k, this);
      }
      #iterate(kind) {
        const list = this.#sorted();
        return pairIterator('Headers Iterator', kind, () => list);
      }
      keys() { return this.#iterate('keys'); }
      values() { return this.#iterate('values'); }
      entries() { return this.#iterate('entries'); }
      [Symbol.iterator]() { return this.#iterate('entries'); }
    }
    tag(Headers, 'Headers');
    defineGlobal('Headers', Headers);

    // ---- Body mixin, Request, Response -------------------------------------------------------------
    /**
     * The fetch standard's "extract a body": bytes (or a stream) and the content type it
     * implies.
     */
    function extractBody(body) {
      if (body instanceof ReadableStream) return { bytes: null, stream: body, type: null };
      if (typeof body === 'string') return { bytes: utf8Encode(body), type: 'text/plain;charset=UTF-8' };
      if (body instanceof URLSearchParams) return { bytes: utf8Encode(body.toString()), type: 'application/x-www-form-urlencoded;charset=UTF-8' };
      if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return { bytes: copyBytes(body), type: null };
      if (body instanceof Blob) return { bytes: blobBytes(body).slice(), type: body.type || null };
      if (body instanceof FormData) {
        return { bytes: serializeForm(body), type: `multipart/form-data; boundary=${body.getBoundary()}` };
      }
      return { bytes: utf8Encode(String(body)), type: 'text/plain;charset=UTF-8' };
    }
    const bodyOf = new WeakMap();
    function setBody(owner, extracted) {
      bodyOf.set(owner, { bytes: extracted ? extracted.bytes : null, stream: extracted ? extracted.stream || null : null, used: false });
    }
    function bodyUsed(owner) {
      const b = bodyOf.get(owner);
      return b.used || (b.stream !== null && streamDisturbed(b.stream));
    }
    /** The body's bytes, once (a second read is a TypeError, as in undici). */
    async function consume(owner) {
      const b = bodyOf.get(owner);
      if (bodyUsed(owner) || (b.stream !== null && b.stream.locked)) {
        throw new TypeError('Body is unusable: Body has already been read');
      }
      b.used = true;
      if (b.stream !== null) return streamReadAll(b.stream);
      return b.bytes === null ? new Uint8Array(0) : b.bytes;
    }
    const bodyMixin = {
      get body() {
        const b = bodyOf.get(this);
        if (b.stream === null && b.bytes !== null) {
          const bytes = b.bytes;
          b.stream = new ReadableStream({
            start(controller) {
              if (bytes.length > 0) controller.enqueue(bytes);
              controller.close();
            },
          });
          if (b.used) b.stream._cancel();
        }
        return b.stream;
      },
      get bodyUsed() {
        return bodyUsed(this);
      },
      arrayBuffer() {
        return consume(this).then((u8) => (u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength ? u8.buffer : u8.slice().buffer));
      },
      bytes() {
        return consume(this).then((u8) => u8);
      },
      blob() {
        return consume(this).then((u8) => new Blob([u8], { type: this.headers.get('content-type') || '' }));
      },
      text() {
        return consume(this).then(utf8Decode);
      },
      json() {
        return consume(this).then((u8) => JSON.parse(utf8Decode(u8)));
      },
      formData() {
        return consume(this).then((u8) => {
          const type = this.headers.get('content-type') || '';
          const m = /^multipart\/form-data;.*?boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
          if (m) return parseMultipart(u8, m[1] || m[2]);
          if (/^application\/x-www-form-urlencoded/i.test(type)) {
            const form = new FormData();
            for (const [k, v] of new URLSearchParams(utf8Decode(u8))) form.append(k, v);
            return form;
          }
          throw new TypeError('Content-Type was not one of "multipart/form-data" or "application/x-www-form-urlencoded".');
        });
      },
    };
    function mixBody(cls) {
      for (const key of Object.keys(bodyMixin)) {
        Object.defineProperty(cls.prototype, key, { ...Object.getOwnPropertyDescriptor(bodyMixin, key), enumerable: true });
      }
    }

    const METHOD_NORMAL = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
    const METHOD_FORBIDDEN = new Set(['CONNECT', 'TRACE', 'TRACK']);
    const REDIRECTS = new Set(['follow', 'error', 'manual']);
    const requestState = new WeakMap();
    class Request {
      constructor(input, init = undefined) {
        if (arguments.length === 0) throw new TypeError("Request constructor: At least 1 argument required, but only 0 present.");
        const o = init == null ? {} : init;
        let st;
        if (input instanceof Request) {
          const src = requestState.get(input);
          st = { ...src, headers: new Headers(src.headers) };
          if (o.body === undefined || o.body === null) {
            if (bodyUsed(input)) throw new TypeError('Cannot construct a Request with a Request object that has already been used.');
            const b = bodyOf.get(input);
            setBody(this, b.bytes === null && b.stream === null ? null : { bytes: b.bytes, stream: b.stream });
          }
        } else {
          let url;
          try {
            url = new URL(usv(input));
          } catch (cause) {
            const e = new TypeError(`Failed to parse URL from ${usv(input)}`);
            e.cause = cause;
            throw e;
          }
          if (url.username !== '' || url.password !== '') {
            throw new TypeError(`Request cannot be constructed from a URL that includes credentials: ${usv(input)}`);
          }
          st = { url: url.href, method: 'GET', headers: new Headers(), signal: null, redirect: 'follow', keelTimeout: 0 };
          setBody(this, null);
        }
        if (o.method !== undefined) {
          const m = String(o.method);
          if (!TOKEN.test(m)) throw new TypeError(`'${m}' is not a valid HTTP method.`);
          const up = m.toUpperCase();
          if (METHOD_FORBIDDEN.has(up)) throw new TypeError(`'${m}' HTTP method is unsupported.`);
          st.method = METHOD_NORMAL.has(up) ? up : m;
        }
        if (o.headers !== undefined) st.headers = new Headers(o.headers);
        if (o.redirect !== undefined) {
          const r = String(o.redirect);
          if (!REDIRECTS.has(r)) {
            throw new TypeError(`Request constructor: ${r} is not an accepted type. Expected one of follow, manual, error.`);
          }
          st.redirect = r;
        }
        if (o.signal !== undefined && o.signal !== null) {
          if (!(o.signal instanceof AbortSignal)) {
            throw new TypeError("Request constructor: Expected signal (\"" + String(o.signal) + "\") to be an instance of AbortSignal.");
          }
          st.signal = o.signal;
        }
        if (o.timeout !== undefined) st.keelTimeout = Number(o.timeout) > 0 ? Number(o.timeout) : 0;
        if (o.body !== undefined && o.body !== null) {
          if (st.method === 'GET' || st.method === 'HEAD') throw new TypeError('Request with GET/HEAD method cannot have body.');
          const extracted = extractBody(o.body);
          setBody(this, extracted);
          if (extracted.type !== null && !st.headers.has('content-type')) st.headers.append('content-type', extracted.type);
        } else if (!bodyOf.has(this)) {
          setBody(this, null);
        }
        const own = bodyOf.get(this);
        if ((own.bytes !== null || own.stream !== null) && (st.method === 'GET' || st.method === 'HEAD')) {
          throw new TypeError('Request with GET/HEAD method cannot have body.');
        }
        if (st.signal === null) st.signal = new AbortController().signal;
        requestState.set(this, st);
      }
      get method() { return requestState.get(this).method; }
      get url() { return requestState.get(this).url; }
      get headers() { return requestState.get(this).headers; }
      get signal() { return requestState.get(this).signal; }
      get redirect() { return requestState.get(this).redirect; }
      get cache() { return 'default'; }
      get credentials() { return 'same-origin'; }
      get mode() { return 'cors'; }
      get referrer() { return 'about:client'; }
      get referrerPolicy() { return ''; }
      get integrity() { return ''; }
      get keepalive() { return false; }
      get destination() { return ''; }
      get duplex() { return 'half'; }
      clone() {
        if (bodyUsed(this)) throw new TypeError('Request.clone: Body has already been consumed.');
        return new Request(this);
      }
    }
    mixBody(Request);
    tag(Request, 'Request');

    const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
    const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
    const responseState = new WeakMap();
    const kInternal = Symbol('internal');
    class Response {
      constructor(body = null, init = undefined) {
        if (body === kInternal) return;
        const o = init == null ? {} : init;
        const status = o.status === undefined ? 200 : Number(o.status);
        if (!Number.isInteger(status) || status < 200 || status > 599) {
          throw new RangeError('init["status"] must be in the range of 200 to 599, inclusive.');
        }
        const statusText = o.statusText === undefined ? '' : String(o.statusText);
        if (/[^\t\u0020-\u007e\u0080-\u00ff]/.test(statusText)) throw new TypeError('Invalid statusText');
        const headers = new Headers(o.headers);
        let extracted = null;
        if (body !== null && body !== undefined) {
          if (NULL_BODY_STATUS.has(status)) throw new TypeError(`Response constructor: Invalid response status code ${status}`);
          extracted = extractBody(body);
          if (extracted.type !== null && !headers.has('content-type')) headers.append('content-type', extracted.type);
        }
        setBody(this, extracted);
        responseState.set(this, { status, statusText, headers, type: 'default', url: '', redirected: false });
      }
      static error() {
        const r = new Response(kInternal);
        setBody(r, null);
        const headers = new Headers();
        headersGuard(headers, 'immutable');
        responseState.set(r, { status: 0, statusText: '', headers, type: 'error', url: '', redirected: false });
        return r;
      }
      static json(data, init = undefined) {
        const text = JSON.stringify(data);
        if (text === undefined) throw new TypeError('Value is not JSON serializable');
        const o = init == null ? {} : init;
        const headers = new Headers(o.headers);
        if (!headers.has('content-type')) headers.set('content-type', 'application/json');
        return new Response(text, { ...o, headers });
      }
      static redirect(url, status = 302) {
        let parsed;
        try {
          parsed = new URL(usv(url));
        } catch (cause) {
          const e = new TypeError(`Failed to parse URL from ${usv(url)}`);
          e.cause = cause;
          throw e;
        }
        if (!REDIRECT_STATUS.has(status)) throw new RangeError(`Invalid status code ${status}`);
        const r = new Response(null, { status, headers: { location: parsed.href } });
        headersGuard(r.headers, 'immutable');
        return r;
      }
      get status() { return responseState.get(this).status; }
      get ok() { const s = responseState.get(this).status; return s >= 200 && s <= 299; }
      get statusText() { return responseState.get(this).statusText; }
      get headers() { return responseState.get(this).headers; }
      get type() { return responseState.get(this).type; }
      get url() { return responseState.get(this).url; }
      get redirected() { return responseState.get(this).redirected; }
      clone() {
        if (bodyUsed(this)) throw new TypeError('Response.clone: Body has already been consumed.');
        const r = new Response(kInternal);
        const st = responseState.get(this);
        const headers = new Headers(st.headers);
        if (st.type !== 'default') headersGuard(headers, 'immutable');
        responseState.set(r, { ...st, headers });
        const b = bodyOf.get(this);
        if (b.stream !== null) {
          // Both sides read the same bytes: buffer the stream once.
          const source = b.stream;
          const all = streamReadAll(source);
          const replay = () =>
            new ReadableStream({
              pull(controller) {
                return all.then((u8) => {
                  if (u8.length > 0) controller.enqueue(u8.slice());
                  controller.close();
                });
              },
            });
          b.stream = replay();
          setBody(r, { bytes: null, stream: replay() });
        } else {
          setBody(r, b.bytes === null ? null : { bytes: b.bytes.slice() });
        }
        return r;
      }
    }
    mixBody(Response);
    tag(Response, 'Response');
    /** A Response for an answer of the network (type `basic`, immutable headers). */
    function fetchedResponse(r, bytes, method) {
      const res = new Response(kInternal);
      const headers = new Headers();
      for (let i = 0; i + 1 < r.headers.length; i += 2) headers.append(r.headers[i], r.headers[i + 1]);
      headersGuard(headers, 'immutable');
      const nullBody = NULL_BODY_STATUS.has(r.status) || method === 'HEAD';
      setBody(res, nullBody ? null : { bytes });
      responseState.set(res, { status: r.status, statusText: r.statusText, headers, type: 'basic', url: r.url, redirected: r.redirected });
      return res;
    }
    defineGlobal('Request', Request);
    defineGlobal('Response', Response);

    // ---- fetch -------------------------------------------------------------------------------------
    defineGlobal('fetch', function fetch(input, init = undefined) {
      return new Promise((resolve, reject) => {
        let request;
        try {
          request = new Request(input, init);
        } catch (e) {
          reject(e);
          return;
        }
        const st = requestState.get(request);
        const signal = st.signal;
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        const b = bodyOf.get(request);
        const bodyReady = b.stream !== null ? streamReadAll(b.stream) : Promise.resolve(b.bytes);
        bodyReady.then((bytes) => {
          if (signal.aborted) {
            reject(signal.reason);
            return;
          }
          const headers = [];
          headersRaw(st.headers).forEach((vs, k) => {
            for (const v of vs) headers.push(k, v);
          });
          const [promise, op] = native.fetch(st.method, st.url, headers, bytes, st.keelTimeout, st.redirect !== 'follow');
          const onAbort = () => {
            if (op >= 0) native.cancel(op);
            reject(signal.reason);
          };
          signal.addEventListener('abort', onAbort, { once: true });
          promise.then(
            (r) => {
              signal.removeEventListener('abort', onAbort);
              if (st.redirect === 'error' && r.status >= 300 && r.status < 400) {
                native.cancel(r.op);
                reject(new TypeError('fetch failed: the server redirected and redirect mode is "error"'));
                return;
              }
              let body;
              try {
                body = new Uint8Array(r.length);
              } catch (e) {
                native.cancel(r.op);
                reject(e);
                return;
              }
              native.takeBody(r.op, body);
              resolve(fetchedResponse(r, body, st.method));
            },
            (e) => {
              signal.removeEventListener('abort', onAbort);
              reject(e);
            }
          );
        }, reject);
      });
    });

    // ---- structuredClone ----------------------------------------------------------------------------
    const ERRORS = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
    function uncloneable(v) {
      let shown;
      try {
        shown = typeof v === 'function' ? Function.prototype.toString.call(v) : typeof v === 'symbol' ? v.toString() : Object.prototype.toString.call(v);
      } catch (_) {
        shown = 'value';
      }
      return new DOMException(`${shown} could not be cloned.`, 'DataCloneError');
    }
    function cloneValue(v, memo) {
      if (typeof v === 'symbol' || typeof v === 'function') throw uncloneable(v);
      if (v === null || typeof v !== 'object') return v;
      if (memo.has(v)) return memo.get(v);
      let out;
      const tagOf = Object.prototype.toString.call(v);
      if (Array.isArray(v)) {
        out = new Array(v.length);
        memo.set(v, out);
        for (const k of Object.keys(v)) out[k] = cloneValue(v[k], memo);
        return out;
      }
      if (v instanceof Date) out = new Date(v.getTime());
      else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
      else if (tagOf === '[object Boolean]') out = Object(Boolean.prototype.valueOf.call(v));
      else if (tagOf === '[object Number]') out = Object(Number.prototype.valueOf.call(v));
      else if (tagOf === '[object String]') out = Object(String.prototype.valueOf.call(v));
      else if (tagOf === '[object BigInt]') out = Object(BigInt.prototype.valueOf.call(v));
      else if (v instanceof ArrayBuffer) out = v.slice(0);
      else if (ArrayBuffer.isView(v)) {
        const buf = cloneValue(v.buffer, memo);
        out = v instanceof DataView ? new DataView(buf, v.byteOffset, v.byteLength) : new v.constructor(buf, v.byteOffset, v.length);
      } else if (v instanceof Map) {
        out = new Map();
        memo.set(v, out);
        for (const [k, x] of v) out.set(cloneValue(k, memo), cloneValue(x, memo));
        return out;
      } else if (v instanceof Set) {
        out = new Set();
        memo.set(v, out);
        for (const x of v) out.add(cloneValue(x, memo));
        return out;
      } else if (v instanceof Error) {
        const Ctor = Object.prototype.hasOwnProperty.call(ERRORS, v.name) ? ERRORS[v.name] : Error;
        out = Object.create(Ctor.prototype);
        memo.set(v, out);
        const own = (k) => Object.prototype.hasOwnProperty.call(v, k);
        if (own('message')) Object.defineProperty(out, 'message', { value: String(v.message), writable: true, configurable: true });
        if (typeof v.stack === 'string') Object.defineProperty(out, 'stack', { value: v.stack, writable: true, configurable: true });
        if (own('cause')) Object.defineProperty(out, 'cause', { value: cloneValue(v.cause, memo), writable: true, configurable: true });
        return out;
      } else if (v instanceof File) out = new File([v], v.name, { type: v.type, lastModified: v.lastModified });
      else if (v instanceof Blob) out = new Blob([v], { type: v.type });
      else if (
        v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef ||
        (typeof FinalizationRegistry === 'function' && v instanceof FinalizationRegistry) || tagOf === '[object Generator]' ||
        v instanceof Headers || v instanceof Request || v instanceof Response || v instanceof EventTarget ||
        v instanceof Event || v instanceof FormData || v instanceof URL || v instanceof URLSearchParams
      ) {
        throw uncloneable(v);
      } else {
        out = {};
        memo.set(v, out);
        for (const k of Object.keys(v)) out[k] = cloneValue(v[k], memo);
        return out;
      }
      memo.set(v, out);
      return out;
    }
    defineGlobal('structuredClone', function structuredClone(value, options = undefined) {
      if (arguments.length === 0) throw missingArgs('value');
      if (options != null && typeof options !== 'object') {
        throw new TypeError("Failed to execute 'structuredClone' on 'Window': The provided value is not of type 'StructuredSerializeOptions'.");
      }
      return cloneValue(value, new Map());
    });
    return api;
  }
})(globalThis);
