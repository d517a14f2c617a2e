// keel executor prelude: Node's error classes (the `code`s and messages of lib/internal/errors.js),
// argument validators (lib/internal/validators.js), a small `util.inspect` for error messages
// and value type checks. Shared with node_buffer.js and node_crypto.js through
// `__keel_prelude.internals.node()`; user code never sees this object (it is removed before the
// snapshot is taken). Messages are Node v20's, so code that matches on them keeps working.
// Adapted from Node.js (MIT licence, Copyright Node.js contributors; see NODE_LICENSE.txt).
(function (global, prelude) {
  'use strict';

  // Made on a context's first use of Buffer or crypto, not at snapshot time: a fresh
  // context that never touches them deserializes none of these classes.
  let built = null;
  prelude.internals.node = () => built || (built = build());

  /**
   * A global made on first access (then a plain writable property, as Node's are): keeps
   * the lean context as cheap to create as it was before Buffer and crypto.
   */
  prelude.internals.defineLazyGlobal = (name, make) => {
    const set = (value) => Object.defineProperty(global, name, {
      value, writable: true, configurable: true, enumerable: false,
    });
    Object.defineProperty(global, name, {
      configurable: true,
      enumerable: false,
      get() {
        const value = make();
        set(value);
        return value;
      },
      set,
    });
  };

  function build() {

    const uncurryThis = (fn) => Function.prototype.call.bind(fn);
    const getter = (proto, name) => uncurryThis(Object.getOwnPropertyDescriptor(proto, name).get);
    const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);
    const TypedArrayPrototypeGetSymbolToStringTag = getter(TypedArrayPrototype, Symbol.toStringTag);
    const ArrayBufferPrototypeGetByteLength = getter(ArrayBuffer.prototype, 'byteLength');
    const SharedArrayBufferPrototypeGetByteLength = typeof SharedArrayBuffer === 'function'
      ? getter(SharedArrayBuffer.prototype, 'byteLength') : null;

    // ---- types (lib/internal/util/types.js: tamper-proof, unlike instanceof) ----------------
    const isTypedArray = (v) => TypedArrayPrototypeGetSymbolToStringTag(v) !== undefined;
    const isUint8Array = (v) => TypedArrayPrototypeGetSymbolToStringTag(v) === 'Uint8Array';
    const isArrayBufferView = (v) => ArrayBuffer.isView(v);
    // A view is never a buffer: answered without the getter's exception (the common case,
    // Buffers, stays cheap).
    function isArrayBuffer(v) {
      if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return false;
      try {
        ArrayBufferPrototypeGetByteLength(v);
        return true;
      } catch {
        return false;
      }
    }
    function isSharedArrayBuffer(v) {
      if (SharedArrayBufferPrototypeGetByteLength === null || v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return false;
      try {
        SharedArrayBufferPrototypeGetByteLength(v);
        return true;
      } catch {
        return false;
      }
    }
    const isAnyArrayBuffer = (v) => isArrayBuffer(v) || isSharedArrayBuffer(v);

    // ---- inspect: enough of util.inspect for the values error messages show ---------------
    const kCustomInspect = Symbol.for('nodejs.util.inspect.custom');
    const escapes = { '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r', '\\': '\\\\' };
    function quote(str) {
      let q = "'";
      if (str.includes("'")) {
        if (!str.includes('"')) q = '"';
        else if (!str.includes('`') && !str.includes('${')) q = '`';
      }
      let out = '';
      for (const ch of str) {
        const c = ch.charCodeAt(0);
        if (ch === q) out += `\\${q}`;
        else if (escapes[ch] !== undefined) out += escapes[ch];
        else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).toUpperCase().padStart(2, '0')}`;
        else out += ch;
      }
      return `${q}${out}${q}`;
    }
    function inspectKey(k) {
      if (typeof k === 'symbol') return `[${String(k)}]`;
      return /^[a-zA-Z_][a-zA-Z_0-9]*$/.test(k) ? k : quote(k);
    }
    function inspect(value, depth = 2) {
      switch (typeof value) {
        case 'string': return quote(value);
        case 'number': return Object.is(value, -0) ? '-0' : String(value);
        case 'bigint': return `${value}n`;
        case 'boolean':
        case 'undefined': return String(value);
        case 'symbol': return String(value);
        case 'function': {
          const src = Function.prototype.toString.call(value);
          if (src.startsWith('class')) return `[class ${value.name || '(anonymous)'}]`;
          return value.name ? `[Function: ${value.name}]` : '[Function (anonymous)]';
        }
      }
      if (value === null) return 'null';
      if (typeof value[kCustomInspect] === 'function' && value[kCustomInspect] !== inspect) {
        try {
          const r = value[kCustomInspect](depth, {});
          if (typeof r === 'string') return r;
        } catch {
          // fall through to the generic form
        }
      }
      if (value instanceof Error) return value.stack ? String(value.stack).split('\n')[0] : `[${String(value)}]`;
      if (Array.isArray(value)) {
        if (value.length === 0) return '[]';
        if (depth < 0) return '[Array]';
        const items = value.slice(0, 100).map((v) => inspect(v, depth - 1));
        if (value.length > 100) items.push(`... ${value.length - 100} more item${value.length - 100 > 1 ? 's' : ''}`);
        return `[ ${items.join(', ')} ]`;
      }
      if (isTypedArray(value)) {
        const name = TypedArrayPrototypeGetSymbolToStringTag(value);
        if (value.length === 0) return `${name}(0) []`;
        const items = Array.prototype.slice.call(value, 0, 100).map((v) => inspect(v));
        if (value.length > 100) items.push(`... ${value.length - 100} more item${value.length - 100 > 1 ? 's' : ''}`);
        return `${name}(${value.length}) [ ${items.join(', ')} ]`;
      }
      if (isArrayBuffer(value)) return `ArrayBuffer { byteLength: ${value.byteLength} }`;
      const proto = Object.getPrototypeOf(value);
      let prefix = '';
      if (proto === null) prefix = '[Object: null prototype] ';
      else if (proto !== Object.prototype) {
        const ctor = proto.constructor;
        if (typeof ctor === 'function' && ctor.name) prefix = `${ctor.name} `;
      }
      const keys = Object.keys(value);
      if (keys.length === 0) return `${prefix}{}`;
      if (depth < 0) return prefix ? `[${prefix.trim()}]` : '[Object]';
      const items = keys.map((k) => `${inspectKey(k)}: ${inspect(value[k], depth - 1)}`);
      return `${prefix}{ ${items.join(', ')} }`;
    }

    // ---- messages ------------------------------------------------------------------------
    function addNumericalSeparator(val) {
      let res = '';
      let i = val.length;
      const start = val[0] === '-' ? 1 : 0;
      for (; i >= start + 4; i -= 3) res = `_${val.slice(i - 3, i)}${res}`;
      return `${val.slice(0, i)}${res}`;
    }
    function formatList(array, type = 'and') {
      switch (array.length) {
        case 0: return '';
        case 1: return `${array[0]}`;
        case 2: return `${array[0]} ${type} ${array[1]}`;
        case 3: return `${array[0]}, ${array[1]}, ${type} ${array[2]}`;
        default: return `${array.slice(0, -1).join(', ')}, ${type} ${array[array.length - 1]}`;
      }
    }
    function determineSpecificType(value) {
      if (value === null) return 'null';
      if (value === undefined) return 'undefined';
      switch (typeof value) {
        case 'bigint': return `type bigint (${value}n)`;
        case 'number':
          if (value === 0) return 1 / value === -Infinity ? 'type number (-0)' : 'type number (0)';
          return `type number (${value})`;
        case 'boolean': return `type boolean (${value})`;
        case 'symbol': return `type symbol (${String(value)})`;
        case 'function': return `function ${value.name}`;
        case 'object':
          if (value.constructor && 'name' in value.constructor) return `an instance of ${value.constructor.name}`;
          return inspect(value, -1);
        case 'string': {
          let s = value;
          if (s.length > 28) s = `${s.slice(0, 25)}...`;
          if (!s.includes("'")) return `type string ('${s}')`;
          return `type string (${JSON.stringify(s)})`;
        }
        default: return `type ${typeof value} (${inspect(value)})`;
      }
    }
    /** `util.format`'s %s. */
    function formatS(v) {
      if (typeof v === 'string') return v;
      if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
      if (typeof v === 'bigint') return `${v}n`;
      if (typeof v === 'object' && v !== null) return inspect(v, 0);
      return String(v);
    }

    const kTypes = ['string', 'function', 'number', 'object', 'Function', 'Object', 'boolean', 'bigint', 'symbol'];
    const classRegExp = /^([A-Z][a-z0-9]*)+$/;

    const messages = {
      ERR_INVALID_ARG_TYPE(name, expected, actual) {
        if (!Array.isArray(expected)) expected = [expected];
        let msg = 'The ';
        if (name.endsWith(' argument')) msg += `${name} `;
        else msg += `"${name}" ${name.includes('.') ? 'property' : 'argument'} `;
        msg += 'must be ';
        const types = [];
        const instances = [];
        const other = [];
        for (const value of expected) {
          if (kTypes.includes(value)) types.push(value.toLowerCase());
          else if (classRegExp.test(value)) instances.push(value);
          else other.push(value);
        }
        if (instances.length > 0) {
          const pos = types.indexOf('object');
          if (pos !== -1) {
            types.splice(pos, 1);
            instances.push('Object');
          }
        }
        if (types.length > 0) {
          msg += `${types.length > 1 ? 'one of type' : 'of type'} ${formatList(types, 'or')}`;
          if (instances.length > 0 || other.length > 0) msg += ' or ';
        }
        if (instances.length > 0) {
          msg += `an instance of ${formatList(instances, 'or')}`;
          if (other.length > 0) msg += ' or ';
        }
        if (other.length > 0) {
          if (other.length > 1) msg += `one of ${formatList(other, 'or')}`;
          else {
            if (other[0].toLowerCase() !== other[0]) msg += 'an ';
            msg += `${other[0]}`;
          }
        }
        return `${msg}. Received ${determineSpecificType(actual)}`;
      },
      ERR_INVALID_ARG_VALUE(name, value, reason = 'is invalid') {
        let inspected = inspect(value);
        if (inspected.length > 128) inspected = `${inspected.slice(0, 128)}...`;
        return `The ${name.includes('.') ? 'property' : 'argument'} '${name}' ${reason}. Received ${inspected}`;
      },
      ERR_OUT_OF_RANGE(str, range, input, replaceDefaultBoolean = false) {
        let msg = replaceDefaultBoolean ? str : `The value of "${str}" is out of range.`;
        let received;
        if (Number.isInteger(input) && Math.abs(input) > 2 ** 32) {
          received = addNumericalSeparator(String(input));
        } else if (typeof input === 'bigint') {
          received = String(input);
          if (input > 2n ** 32n || input < -(2n ** 32n)) received = addNumericalSeparator(received);
          received += 'n';
        } else {
          received = inspect(input);
        }
        msg += ` It must be ${range}. Received ${received}`;
        return msg;
      },
      ERR_BUFFER_OUT_OF_BOUNDS(name = undefined) {
        return name ? `"${name}" is outside of buffer bounds` : 'Attempt to access memory outside buffer bounds';
      },
      ERR_MISSING_ARGS(...args) {
        const wrap = (a) => `"${a}"`;
        const list = args.map((a) => (Array.isArray(a) ? a.map(wrap).join(' or ') : wrap(a)));
        return `The ${formatList(list)} argument${args.length > 1 ? 's' : ''} must be specified`;
      },
      ERR_CRYPTO_INCOMPATIBLE_KEY_OPTIONS: 'The selected key encoding %s %s.',
      ERR_CRYPTO_INCOMPATIBLE_KEY: 'Incompatible %s: %s',
      ERR_CRYPTO_INVALID_DIGEST: 'Invalid digest: %s',
      ERR_CRYPTO_INVALID_JWK: 'Invalid JWK data',
      ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE: 'Invalid key object type %s, expected %s.',
      ERR_CRYPTO_INVALID_STATE: 'Invalid state for operation %s',
      ERR_CRYPTO_HASH_FINALIZED: 'Digest already called',
      ERR_CRYPTO_HASH_UPDATE_FAILED: 'Hash update failed',
      ERR_CRYPTO_SCRYPT_INVALID_PARAMETER: 'Invalid scrypt parameter',
      ERR_CRYPTO_SIGN_KEY_REQUIRED: 'No key provided to sign',
      ERR_CRYPTO_UNKNOWN_CIPHER: 'Unknown cipher',
      ERR_CRYPTO_UNKNOWN_DH_GROUP: 'Unknown DH group',
      ERR_CRYPTO_INVALID_KEYLEN: 'Invalid key length',
      ERR_CRYPTO_INVALID_IV: 'Invalid initialization vector',
      ERR_CRYPTO_INVALID_AUTH_TAG: 'Invalid authentication tag length: %s',
      ERR_CRYPTO_INVALID_TAG_LENGTH: 'Invalid authentication tag length: %s',
      ERR_CRYPTO_INVALID_MESSAGELEN: 'Invalid message length',
      ERR_CRYPTO_INVALID_CURVE: 'Invalid EC curve name',
      ERR_CRYPTO_OPERATION_FAILED: '%s',
      ERR_FEATURE_UNAVAILABLE_ON_PLATFORM: 'The feature %s is unavailable on the current platform, which is being used to run Node.js',
      ERR_ILLEGAL_CONSTRUCTOR: 'Illegal constructor',
      ERR_INVALID_BUFFER_SIZE: 'Buffer size must be a multiple of %s',
      ERR_INVALID_STATE: 'Invalid state: %s',
      ERR_INVALID_THIS: 'Value of "this" must be of type %s',
      ERR_METHOD_NOT_IMPLEMENTED: 'The %s method is not implemented',
      ERR_UNKNOWN_ENCODING: 'Unknown encoding: %s',
    };

    function getMessage(key, args) {
      const msg = messages[key];
      if (typeof msg === 'function') return msg(...args);
      let i = 0;
      return msg.replace(/%s/g, () => formatS(args[i++]));
    }

    /** A Node error class: `Base` with `code` and the formatted message of `key`. */
    function makeNodeErrorWithCode(Base, key) {
      return class NodeError extends Base {
        constructor(...args) {
          super();
          Object.defineProperty(this, 'message', {
            value: getMessage(key, args), enumerable: false, writable: true, configurable: true,
          });
          this.code = key;
        }
        // Node's errors report the base class as their constructor.
        get ['constructor']() {
          return Base;
        }
        toString() {
          return `${this.name} [${key}]: ${this.message}`;
        }
      };
    }

    const codes = {};
    const bases = {
      ERR_INVALID_ARG_TYPE: [TypeError],
      ERR_INVALID_ARG_VALUE: [TypeError, RangeError],
      ERR_OUT_OF_RANGE: [RangeError],
      ERR_BUFFER_OUT_OF_BOUNDS: [RangeError],
      ERR_MISSING_ARGS: [TypeError],
      ERR_CRYPTO_INCOMPATIBLE_KEY_OPTIONS: [Error],
      ERR_CRYPTO_INCOMPATIBLE_KEY: [Error],
      ERR_CRYPTO_INVALID_DIGEST: [TypeError],
      ERR_CRYPTO_INVALID_JWK: [TypeError],
      ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE: [TypeError],
      ERR_CRYPTO_INVALID_STATE: [Error],
      ERR_CRYPTO_HASH_FINALIZED: [Error],
      ERR_CRYPTO_HASH_UPDATE_FAILED: [Error],
      ERR_CRYPTO_SCRYPT_INVALID_PARAMETER: [Error],
      ERR_CRYPTO_SIGN_KEY_REQUIRED: [Error],
      ERR_CRYPTO_UNKNOWN_CIPHER: [Error],
      ERR_CRYPTO_UNKNOWN_DH_GROUP: [Error],
      ERR_CRYPTO_INVALID_KEYLEN: [RangeError],
      ERR_CRYPTO_INVALID_IV: [TypeError],
      ERR_CRYPTO_INVALID_AUTH_TAG: [TypeError],
      ERR_CRYPTO_INVALID_TAG_LENGTH: [RangeError],
      ERR_CRYPTO_INVALID_MESSAGELEN: [RangeError],
      ERR_CRYPTO_INVALID_CURVE: [TypeError],
      ERR_CRYPTO_OPERATION_FAILED: [Error],
      ERR_FEATURE_UNAVAILABLE_ON_PLATFORM: [TypeError],
      ERR_ILLEGAL_CONSTRUCTOR: [TypeError],
      ERR_INVALID_BUFFER_SIZE: [RangeError],
      ERR_INVALID_STATE: [Error, TypeError, RangeError],
      ERR_INVALID_THIS: [TypeError],
      ERR_METHOD_NOT_IMPLEMENTED: [Error],
      ERR_UNKNOWN_ENCODING: [TypeError],
    };
    for (const key of Object.keys(bases)) {
      const [Base, ...others] = bases[key];
      codes[key] = makeNodeErrorWithCode(Base, key);
      for (const Other of others) codes[key][Other.name] = makeNodeErrorWithCode(Other, key);
    }

    /** An error with a code and a message of its own (Node's C++ layer throws these). */
    function codedError(Base, code, message) {
      const e = new Base(message);
      e.code = code;
      return e;
    }

    // ---- validators (lib/internal/validators.js) -----------------------------------------
    const { ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE } = codes;
    function validateInteger(value, name, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) {
      if (typeof value !== 'number') throw new ERR_INVALID_ARG_TYPE(name, 'number', value);
      if (!Number.isInteger(value)) throw new ERR_OUT_OF_RANGE(name, 'an integer', value);
      if (value < min || value > max) throw new ERR_OUT_OF_RANGE(name, `>= ${min} && <= ${max}`, value);
    }
    function validateInt32(value, name, min = -2147483648, max = 2147483647) {
      validateInteger(value, name, min, max);
    }
    function validateUint32(value, name, positive = false) {
      if (typeof value !== 'number') throw new ERR_INVALID_ARG_TYPE(name, 'number', value);
      if (!Number.isInteger(value)) throw new ERR_OUT_OF_RANGE(name, 'an integer', value);
      const min = positive ? 1 : 0;
      const max = 4_294_967_295;
      if (value < min || value > max) throw new ERR_OUT_OF_RANGE(name, `>= ${min} && <= ${max}`, value);
    }
    function validateNumber(value, name, min = undefined, max) {
      if (typeof value !== 'number') throw new ERR_INVALID_ARG_TYPE(name, 'number', value);
      if ((min != null && value < min) || (max != null && value > max) ||
          ((min != null || max != null) && Number.isNaN(value))) {
        throw new ERR_OUT_OF_RANGE(
          name,
          `${min != null ? `>= ${min}` : ''}${min != null && max != null ? ' && ' : ''}${max != null ? `<= ${max}` : ''}`,
          value);
      }
    }
    function validateString(value, name) {
      if (typeof value !== 'string') throw new ERR_INVALID_ARG_TYPE(name, 'string', value);
    }
    function validateBoolean(value, name) {
      if (typeof value !== 'boolean') throw new ERR_INVALID_ARG_TYPE(name, 'boolean', value);
    }
    function validateFunction(value, name) {
      if (typeof value !== 'function') throw new ERR_INVALID_ARG_TYPE(name, 'Function', value);
    }
    function validateObject(value, name, allowNullable = false) {
      if ((value === null && !allowNullable) || Array.isArray(value) || (typeof value !== 'object' && value !== null)) {
        throw new ERR_INVALID_ARG_TYPE(name, 'Object', value);
      }
    }
    function validateArray(value, name, minLength = 0) {
      if (!Array.isArray(value)) throw new ERR_INVALID_ARG_TYPE(name, 'Array', value);
      if (value.length < minLength) throw new ERR_INVALID_ARG_VALUE(name, value, `must be longer than ${minLength}`);
    }
    function validateOneOf(value, name, oneOf) {
      if (!oneOf.includes(value)) {
        const allowed = oneOf.map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(', ');
        throw new ERR_INVALID_ARG_VALUE(name, value, `must be one of: ${allowed}`);
      }
    }
    function validateBuffer(buffer, name = 'buffer') {
      if (!isArrayBufferView(buffer)) {
        throw new ERR_INVALID_ARG_TYPE(name, ['Buffer', 'TypedArray', 'DataView'], buffer);
      }
    }

    /** lib/internal/util.js normalizeEncoding: the canonical name, undefined if unknown. */
    function normalizeEncoding(enc) {
      if (enc == null || enc === 'utf8' || enc === 'utf-8') return 'utf8';
      if (typeof enc !== 'string') enc = `${enc}`;
      switch (enc.toLowerCase()) {
        case 'utf8': case 'utf-8': return 'utf8';
        case 'ucs2': case 'ucs-2': case 'utf16le': case 'utf-16le': return 'utf16le';
        case 'latin1': case 'binary': return 'latin1';
        case 'base64': return 'base64';
        case 'base64url': return 'base64url';
        case 'hex': return 'hex';
        case 'ascii': return 'ascii';
        case '': return 'utf8';
        default: return undefined;
      }
    }

    return {
      uncurryThis,
      getter,
      TypedArrayPrototype,
      TypedArrayPrototypeGetSymbolToStringTag,
      isTypedArray,
      isUint8Array,
      isArrayBufferView,
      isArrayBuffer,
      isSharedArrayBuffer,
      isAnyArrayBuffer,
      kCustomInspect,
      inspect,
      codes,
      codedError,
      determineSpecificType,
      validateInteger,
      validateInt32,
      validateUint32,
      validateNumber,
      validateString,
      validateBoolean,
      validateFunction,
      validateObject,
      validateArray,
      validateOneOf,
      validateBuffer,
      normalizeEncoding,
    };
  }
})(globalThis, globalThis.__keel_prelude);
