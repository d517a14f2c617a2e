// keel executor prelude: Node's `crypto` module (`require('crypto')`, `require('node:crypto')`)
// and Web Crypto: `globalThis.crypto` (getRandomValues, randomUUID, subtle.digest), `Crypto`
// and `SubtleCrypto`, made apart from the module (see makeWebCrypto).
//
// The work is OpenSSL's, through keel natives (natives/crypto.rs, natives/crypto_keys.rs);
// this file is Node v20's JavaScript layer re-done on them: the same argument validation,
// coercions, defaults and error codes (lib/internal/crypto/*.js). Asynchronous variants run
// the work at once and call back on a microtask. Not here: streams (Hash/Cipher as Transform
// streams), X509Certificate, DiffieHellman/ECDH objects, webcrypto beyond digest, and the
// OpenSSL engine/FIPS switches. Work caps (PBKDF2, scrypt, key generation) are keel's: a
// native call cannot be interrupted by the execution deadline.
// Adapted from Node.js (MIT licence, Copyright Node.js contributors; see NODE_LICENSE.txt).
(function (global, prelude) {
  'use strict';

  /** The crypto natives of this context, asked for on its first use. */
  const native = prelude.nativeFamily('crypto');
  /** For web.js (FormData boundaries): the OS random bytes without building this module. */
  prelude.internals.randomFill = (bytes) => native().randomFill(bytes, 0, bytes.byteLength);

  // Made on the context's first require('crypto').
  let made = null;
  const make = () => made || (made = makeCrypto());
  prelude.defineModule('crypto', () => make().exports);

  // ---- Web Crypto: globalThis.crypto, Crypto, SubtleCrypto -----------------------------------
  // Made on first use and apart from the module above: libraries read `globalThis.crypto`
  // while they load (crypto-js, sm-crypto-v2, @noble/hashes) and only call getRandomValues
  // later, so a snapshot context holding one of them carries this small object and not the
  // whole `crypto` module. `subtle` is made on its first read.
  let web = null;
  const webCrypto = () => web || (web = makeWebCrypto());
  prelude.internals.defineLazyGlobal('crypto', () => webCrypto().crypto);
  prelude.internals.defineLazyGlobal('Crypto', () => webCrypto().Crypto);
  prelude.internals.defineLazyGlobal('SubtleCrypto', () => webCrypto().SubtleCrypto);

  /** Node's lib/internal/crypto/webcrypto.js, with subtle.digest as its only operation. */
  function makeWebCrypto() {
    const errors = () => prelude.internals.node();
    /** A DOMException of the web globals' class (made on this first error, not before). */
    const domException = (message, name) => new (prelude.internals.web().DOMException)(message, name);
    const kConstruct = Symbol('kConstruct');
    const typedArrayTag = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag).get;
    let crypto = null;
    let subtle = null;

    class Crypto {
      constructor(key) {
        if (key !== kConstruct) throw new (errors().codes.ERR_ILLEGAL_CONSTRUCTOR)();
      }
      get subtle() {
        if (this !== crypto) throw new (errors().codes.ERR_INVALID_THIS)('Crypto');
        return subtle || (subtle = makeSubtle());
      }
      /** Integer typed arrays only, at most 65536 bytes (Node's messages and DOMExceptions). */
      getRandomValues(array) {
        if (this !== crypto) throw new (errors().codes.ERR_INVALID_THIS)('Crypto');
        if (arguments.length < 1) {
          throw errors().codedError(TypeError, 'ERR_MISSING_ARGS', "Failed to execute 'getRandomValues' on 'Crypto': 1 argument required, but only 0 present.");
        }
        return fillRandom(array);
      }
      randomUUID() {
        if (this !== crypto) throw new (errors().codes.ERR_INVALID_THIS)('Crypto');
        return uuid4();
      }
    }
    Object.defineProperty(Crypto.prototype, Symbol.toStringTag, { value: 'Crypto', configurable: true });
    for (const name of ['subtle', 'getRandomValues', 'randomUUID']) {
      Object.defineProperty(Crypto.prototype, name, { enumerable: true });
    }
    crypto = new Crypto(kConstruct);

    function fillRandom(array) {
      const tag = typedArrayTag.call(array);
      if (tag === undefined || tag === 'Float32Array' || tag === 'Float64Array') {
        throw domException('The data argument must be an integer-type TypedArray', 'TypeMismatchError');
      }
      if (array.byteLength > 65536) {
        throw domException('The requested length exceeds 65,536 bytes', 'QuotaExceededError');
      }
      native().randomFill(array, 0, array.byteLength);
      return array;
    }

    function uuid4() {
      const b = new Uint8Array(16);
      native().randomFill(b, 0, 16);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      let s = '';
      for (let i = 0; i < 16; i++) {
        if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
        s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
      }
      return s;
    }

    function makeSubtle() {
      const digestNames = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };
      class SubtleCrypto {
        constructor(key) {
          if (key !== kConstruct) throw new (errors().codes.ERR_ILLEGAL_CONSTRUCTOR)();
        }
        digest(algorithm, data) {
          return new Promise((resolve, reject) => {
            const name = typeof algorithm === 'string' ? algorithm : algorithm && algorithm.name;
            const md = typeof name === 'string' ? digestNames[name.toUpperCase()] : undefined;
            if (md === undefined) return reject(domException('Unrecognized algorithm name', 'NotSupportedError'));
            const { isAnyArrayBuffer, isArrayBufferView, codes } = errors();
            if (!isAnyArrayBuffer(data) && !isArrayBufferView(data)) {
              return reject(new codes.ERR_INVALID_ARG_TYPE('data', ['ArrayBuffer', 'Buffer', 'TypedArray', 'DataView'], data));
            }
            const bytes = isAnyArrayBuffer(data) ? new Uint8Array(data) : data;
            const out = native().hashOnce(md, bytes, (n) => new Uint8Array(n));
            resolve(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
          });
        }
      }
      Object.defineProperty(SubtleCrypto.prototype, Symbol.toStringTag, { value: 'SubtleCrypto', configurable: true });
      Object.defineProperty(SubtleCrypto.prototype, 'digest', { enumerable: true });
      return new SubtleCrypto(kConstruct);
    }

    return {
      crypto,
      Crypto,
      /** The class, made with the first `subtle`. */
      get SubtleCrypto() {
        return crypto.subtle.constructor;
      },
    };
  }

  function makeCrypto() {

    const { Buffer, FastBuffer } = prelude.internals.buffer();
    const {
      isArrayBufferView,
      isAnyArrayBuffer,
      isTypedArray,
      codes: {
        ERR_CRYPTO_HASH_FINALIZED,
        ERR_CRYPTO_HASH_UPDATE_FAILED,
        ERR_CRYPTO_INCOMPATIBLE_KEY_OPTIONS,
        ERR_CRYPTO_INVALID_DIGEST,
        ERR_CRYPTO_INVALID_JWK,
        ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE,
        ERR_CRYPTO_INVALID_STATE,
        ERR_CRYPTO_SIGN_KEY_REQUIRED,
        ERR_INVALID_ARG_TYPE,
        ERR_INVALID_ARG_VALUE,
        ERR_OUT_OF_RANGE,
        ERR_FEATURE_UNAVAILABLE_ON_PLATFORM,
      },
      codedError,
      validateBoolean,
      validateFunction,
      validateInt32,
      validateInteger,
      validateNumber,
      validateObject,
      validateOneOf,
      validateString,
      validateUint32,
      normalizeEncoding,
    } = prelude.internals.node();

    /** What the natives allocate their results with (memory on the isolate's budget). */
    const alloc = (n) => new FastBuffer(n);
    const kMaxLength = 2 ** 31 - 1;
    const defer = (fn) => Promise.resolve().then(fn);

    // ---- lists (OpenSSL 3.0 as Node 20 reports them) -------------------------------------------
    const hashes = ['RSA-MD5', 'RSA-RIPEMD160', 'RSA-SHA1', 'RSA-SHA1-2', 'RSA-SHA224', 'RSA-SHA256', 'RSA-SHA3-224', 'RSA-SHA3-256', 'RSA-SHA3-384', 'RSA-SHA3-512', 'RSA-SHA384', 'RSA-SHA512', 'RSA-SHA512/224', 'RSA-SHA512/256', 'RSA-SM3', 'blake2b512', 'blake2s256', 'id-rsassa-pkcs1-v1_5-with-sha3-224', 'id-rsassa-pkcs1-v1_5-with-sha3-256', 'id-rsassa-pkcs1-v1_5-with-sha3-384', 'id-rsassa-pkcs1-v1_5-with-sha3-512', 'md5', 'md5-sha1', 'md5WithRSAEncryption', 'ripemd', 'ripemd160', 'ripemd160WithRSA', 'rmd160', 'sha1', 'sha1WithRSAEncryption', 'sha224', 'sha224WithRSAEncryption', 'sha256', 'sha256WithRSAEncryption', 'sha3-224', 'sha3-256', 'sha3-384', 'sha3-512', 'sha384', 'sha384WithRSAEncryption', 'sha512', 'sha512-224', 'sha512-224WithRSAEncryption', 'sha512-256', 'sha512-256WithRSAEncryption', 'sha512WithRSAEncryption', 'shake128', 'shake256', 'sm3', 'sm3WithRSAEncryption', 'ssl3-md5', 'ssl3-sha1'];
    const ciphers = ['aes-128-cbc', 'aes-128-ccm', 'aes-128-cfb', 'aes-128-cfb1', 'aes-128-cfb8', 'aes-128-ctr', 'aes-128-ecb', 'aes-128-gcm', 'aes-128-ocb', 'aes-128-ofb', 'aes-128-xts', 'aes-192-cbc', 'aes-192-ccm', 'aes-192-cfb', 'aes-192-cfb1', 'aes-192-cfb8', 'aes-192-ctr', 'aes-192-ecb', 'aes-192-gcm', 'aes-192-ocb', 'aes-192-ofb', 'aes-256-cbc', 'aes-256-ccm', 'aes-256-cfb', 'aes-256-cfb1', 'aes-256-cfb8', 'aes-256-ctr', 'aes-256-ecb', 'aes-256-gcm', 'aes-256-ocb', 'aes-256-ofb', 'aes-256-xts', 'aes128', 'aes128-wrap', 'aes192', 'aes192-wrap', 'aes256', 'aes256-wrap', 'aria-128-cbc', 'aria-128-ccm', 'aria-128-cfb', 'aria-128-cfb1', 'aria-128-cfb8', 'aria-128-ctr', 'aria-128-ecb', 'aria-128-gcm', 'aria-128-ofb', 'aria-192-cbc', 'aria-192-ccm', 'aria-192-cfb', 'aria-192-cfb1', 'aria-192-cfb8', 'aria-192-ctr', 'aria-192-ecb', 'aria-192-gcm', 'aria-192-ofb', 'aria-256-cbc', 'aria-256-ccm', 'aria-256-cfb', 'aria-256-cfb1', 'aria-256-cfb8', 'aria-256-ctr', 'aria-256-ecb', 'aria-256-gcm', 'aria-256-ofb', 'aria128', 'aria192', 'aria256', 'camellia-128-cbc', 'camellia-128-cfb', 'camellia-128-cfb1', 'camellia-128-cfb8', 'camellia-128-ctr', 'camellia-128-ecb', 'camellia-128-ofb', 'camellia-192-cbc', 'camellia-192-cfb', 'camellia-192-cfb1', 'camellia-192-cfb8', 'camellia-192-ctr', 'camellia-192-ecb', 'camellia-192-ofb', 'camellia-256-cbc', 'camellia-256-cfb', 'camellia-256-cfb1', 'camellia-256-cfb8', 'camellia-256-ctr', 'camellia-256-ecb', 'camellia-256-ofb', 'camellia128', 'camellia192', 'camellia256', 'chacha20', 'chacha20-poly1305', 'des-ede', 'des-ede-cbc', 'des-ede-cfb', 'des-ede-ecb', 'des-ede-ofb', 'des-ede3', 'des-ede3-cbc', 'des-ede3-cfb', 'des-ede3-cfb1', 'des-ede3-cfb8', 'des-ede3-ecb', 'des-ede3-ofb', 'des3', 'des3-wrap', 'id-aes128-CCM', 'id-aes128-GCM', 'id-aes128-wrap', 'id-aes128-wrap-pad', 'id-aes192-CCM', 'id-aes192-GCM', 'id-aes192-wrap', 'id-aes192-wrap-pad', 'id-aes256-CCM', 'id-aes256-GCM', 'id-aes256-wrap', 'id-aes256-wrap-pad', 'id-smime-alg-CMS3DESwrap', 'sm4', 'sm4-cbc', 'sm4-cfb', 'sm4-ctr', 'sm4-ecb', 'sm4-ofb'];
    const curves = ['Oakley-EC2N-3', 'Oakley-EC2N-4', 'SM2', 'brainpoolP160r1', 'brainpoolP160t1', 'brainpoolP192r1', 'brainpoolP192t1', 'brainpoolP224r1', 'brainpoolP224t1', 'brainpoolP256r1', 'brainpoolP256t1', 'brainpoolP320r1', 'brainpoolP320t1', 'brainpoolP384r1', 'brainpoolP384t1', 'brainpoolP512r1', 'brainpoolP512t1', 'prime192v1', 'prime192v2', 'prime192v3', 'prime239v1', 'prime239v2', 'prime239v3', 'prime256v1', 'secp112r1', 'secp112r2', 'secp128r1', 'secp128r2', 'secp160k1', 'secp160r1', 'secp160r2', 'secp192k1', 'secp224k1', 'secp224r1', 'secp256k1', 'secp384r1', 'secp521r1'];

    const constants = {
      OPENSSL_VERSION_NUMBER: 0x30000000,
      SSL_OP_ALL: 2147485776,
      RSA_PKCS1_PADDING: 1,
      RSA_NO_PADDING: 3,
      RSA_PKCS1_OAEP_PADDING: 4,
      RSA_X931_PADDING: 5,
      RSA_PKCS1_PSS_PADDING: 6,
      RSA_PSS_SALTLEN_DIGEST: -1,
      RSA_PSS_SALTLEN_MAX_SIGN: -2,
      RSA_PSS_SALTLEN_AUTO: -2,
      defaultCoreCipherList: 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA256:DHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:DHE-RSA-AES256-SHA384:ECDHE-RSA-AES256-SHA256:DHE-RSA-AES256-SHA256:HIGH:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:!SRP:!CAMELLIA',
      TLS1_VERSION: 769,
      TLS1_1_VERSION: 770,
      TLS1_2_VERSION: 771,
      TLS1_3_VERSION: 772,
      POINT_CONVERSION_COMPRESSED: 2,
      POINT_CONVERSION_UNCOMPRESSED: 4,
      POINT_CONVERSION_HYBRID: 6,
    };

    // ---- argument helpers (lib/internal/crypto/util.js) --------------------------------------
    /** A string (in `encoding`), ArrayBuffer or view as a Uint8Array over the same bytes. */
    function getArrayBufferOrView(buffer, name, encoding) {
      if (isAnyArrayBuffer(buffer)) return new Uint8Array(buffer);
      if (typeof buffer === 'string') {
        if (encoding === 'buffer') encoding = 'utf8';
        return Buffer.from(buffer, encoding);
      }
      if (!isArrayBufferView(buffer)) {
        throw new ERR_INVALID_ARG_TYPE(name, ['string', 'ArrayBuffer', 'Buffer', 'TypedArray', 'DataView'], buffer);
      }
      return buffer;
    }
    /** lib/internal/validators.js validateEncoding: hex needs an even length. */
    function validateEncoding(data, encoding) {
      const normalized = normalizeEncoding(encoding);
      const length = data.length;
      if (normalized === 'hex' && length % 2 !== 0) {
        throw new ERR_INVALID_ARG_VALUE('encoding', encoding, `is invalid for data of length ${length}`);
      }
    }
    /** Throws ERR_CRYPTO_INVALID_DIGEST (with the name, or without as Sign/Verify do). */
    function checkDigest(name, withName = true) {
      try {
        native().hashOnce(name, new Uint8Array(0), alloc);
      } catch {
        if (withName) throw new ERR_CRYPTO_INVALID_DIGEST(name);
        throw codedError(TypeError, 'ERR_CRYPTO_INVALID_DIGEST', 'Invalid digest');
      }
    }

    // ---- Hash / Hmac (lib/internal/crypto/hash.js) -------------------------------------------
    // A hash or HMAC of a string, updated once, then digested — what most blocks make (a JWT
    // or webhook signature, the md5 of a text) — is computed in one native call at digest():
    // until then the object keeps the string (strings cannot change, so the bytes are the
    // ones Node hashed at update()). A view goes to a native object at once (keeping it
    // would need a copy, which costs what the calls it saves cost), and so does everything
    // after a second update or a copy(): the streaming path, fed update by update.
    const kHandle = Symbol('kHandle');
    const kFinalized = Symbol('kFinalized');
    const kAlgorithm = Symbol('kAlgorithm');
    const kKey = Symbol('kKey');
    const kPending = Symbol('kPending');
    /** Digest names this context has seen work: their objects may wait (a bad name must
     * still throw at createHash/createHmac, so a name's first object is made natively). */
    const goodHashes = new Set();
    const goodHmacs = new Set();
    /** node_buffer.js's encoding numbers: the natives return a digest in these as a string. */
    const encodingNumbers = { __proto__: null, utf8: 0, utf16le: 1, latin1: 2, ascii: 3, base64: 4, base64url: 5, hex: 6 };
    /** digest(outputEncoding)'s encoding number, or -1 for a Buffer (Node's C++ answers a
     * Buffer for 'buffer', a falsy value and any name it does not know). */
    function digestEncoding(outputEncoding) {
      if (!outputEncoding) return -1;
      const n = encodingNumbers[normalizeEncoding(`${outputEncoding}`)];
      return n === undefined ? -1 : n;
    }
    /** The object's native state, started (and fed what the object kept) on first need. */
    function handleOf(self) {
      let h = self[kHandle];
      if (h === null) {
        h = self[kKey] === undefined ? native().hashNew(self[kAlgorithm]) : native().hmacNew(self[kAlgorithm], self[kKey]);
        self[kHandle] = h;
        const pending = self[kPending];
        self[kPending] = undefined;
        if (pending !== undefined && !native().update(h, pending)) throw new ERR_CRYPTO_HASH_UPDATE_FAILED();
      }
      return h;
    }
    /** The digest, in one native call when the object never needed its native state. */
    function finish(self, encoding) {
      const h = self[kHandle];
      if (h !== null) return native().digest(h, alloc, encoding);
      const data = self[kPending] === undefined ? '' : self[kPending];
      self[kPending] = undefined;
      return self[kKey] === undefined
        ? native().hashOnce(self[kAlgorithm], data, alloc, encoding)
        : native().hmacOnce(self[kAlgorithm], self[kKey], data, alloc, encoding);
    }

    function Hash(algorithm, options) {
      if (!new.target) return new Hash(algorithm, options);
      const isCopy = algorithm instanceof Hash;
      if (!isCopy) validateString(algorithm, 'algorithm');
      const xofLen = typeof options === 'object' && options !== null ? options.outputLength : undefined;
      if (xofLen !== undefined) validateUint32(xofLen, 'options.outputLength');
      this[kFinalized] = false;
      this[kPending] = undefined;
      if (!isCopy && xofLen === undefined && goodHashes.has(algorithm)) {
        this[kAlgorithm] = algorithm;
        this[kHandle] = null;
        return;
      }
      this[kHandle] = isCopy ? native().hashCopy(handleOf(algorithm), xofLen) : native().hashNew(algorithm, xofLen);
      if (!isCopy) goodHashes.add(algorithm);
    }
    Hash.prototype.copy = function copy(options) {
      if (this[kFinalized]) throw new ERR_CRYPTO_HASH_FINALIZED();
      return new Hash(this, options);
    };
    Hash.prototype.update = function update(data, encoding) {
      if (this[kFinalized]) throw new ERR_CRYPTO_HASH_FINALIZED();
      let fresh = false;
      if (typeof data === 'string') {
        validateEncoding(data, encoding);
        const enc = normalizeEncoding(encoding);
        // The natives read a string as UTF-8; other encodings become bytes here.
        if (enc !== undefined && enc !== 'utf8') {
          data = Buffer.from(data, encoding);
          fresh = true;
        }
      } else if (!isArrayBufferView(data)) {
        throw new ERR_INVALID_ARG_TYPE('data', ['string', 'Buffer', 'TypedArray', 'DataView'], data);
      }
      if (this[kHandle] === null && this[kPending] === undefined && (fresh || typeof data === 'string')) {
        this[kPending] = data;
        return this;
      }
      if (!native().update(handleOf(this), data)) throw new ERR_CRYPTO_HASH_UPDATE_FAILED();
      return this;
    };
    Hash.prototype.digest = function digest(outputEncoding) {
      if (this[kFinalized]) throw new ERR_CRYPTO_HASH_FINALIZED();
      const encoding = digestEncoding(outputEncoding);
      this[kFinalized] = true;
      return finish(this, encoding);
    };

    function Hmac(hmac, key, options) {
      if (!(this instanceof Hmac)) return new Hmac(hmac, key, options);
      validateString(hmac, 'hmac');
      const encoding = options && typeof options === 'object' ? options.encoding : undefined;
      // A string key in UTF-8 goes to the natives as it is (and may wait with the object);
      // anything else as bytes, at once.
      const textKey = typeof key === 'string' && (encoding === undefined || encoding === 'buffer' || normalizeEncoding(encoding) === 'utf8');
      if (!textKey) key = prepareSecretKey(key, encoding);
      this[kFinalized] = false;
      this[kPending] = undefined;
      if (textKey && goodHmacs.has(hmac)) {
        this[kAlgorithm] = hmac;
        this[kKey] = key;
        this[kHandle] = null;
        return;
      }
      this[kHandle] = native().hmacNew(hmac, key);
      goodHmacs.add(hmac);
    }
    Hmac.prototype.update = Hash.prototype.update;
    Hmac.prototype.digest = function digest(outputEncoding) {
      if (this[kFinalized]) {
        const buf = Buffer.from('');
        return outputEncoding && outputEncoding !== 'buffer' ? buf.toString(outputEncoding) : buf;
      }
      const encoding = digestEncoding(outputEncoding);
      this[kFinalized] = true;
      return finish(this, encoding);
    };

    function hash(algorithm, input, outputEncoding = 'hex') {
      validateString(algorithm, 'algorithm');
      if (typeof input !== 'string' && !isArrayBufferView(input)) {
        throw new ERR_INVALID_ARG_TYPE('input', ['Buffer', 'TypedArray', 'DataView', 'string'], input);
      }
      let normalized = outputEncoding;
      if (outputEncoding !== 'hex') {
        validateString(outputEncoding, 'outputEncoding');
        normalized = normalizeEncoding(outputEncoding);
        if (normalized === undefined) {
          if (outputEncoding.toLowerCase() === 'buffer') normalized = 'buffer';
          else throw new ERR_INVALID_ARG_VALUE('outputEncoding', outputEncoding);
        }
      }
      return native().hashOnce(algorithm, input, alloc, normalized === 'buffer' ? -1 : encodingNumbers[normalized]);
    }

    // ---- random (lib/internal/crypto/random.js) ----------------------------------------------
    function assertSize(size, elementSize, offset, length) {
      validateNumber(size, 'size');
      size *= elementSize;
      if (Number.isNaN(size) || size > kMaxLength || size < 0) {
        throw new ERR_OUT_OF_RANGE('size', `>= 0 && <= ${kMaxLength}`, size);
      }
      if (size + offset > length) {
        throw new ERR_OUT_OF_RANGE('size + offset', `<= ${length}`, size + offset);
      }
      return size >>> 0;
    }
    function assertOffset(offset, elementSize, length) {
      validateNumber(offset, 'offset');
      offset *= elementSize;
      const maxLength = Math.min(length, kMaxLength);
      if (Number.isNaN(offset) || offset > maxLength || offset < 0) {
        throw new ERR_OUT_OF_RANGE('offset', `>= 0 && <= ${maxLength}`, offset);
      }
      return offset >>> 0;
    }
    function randomBytes(size, callback) {
      size = assertSize(size, 1, 0, Infinity);
      if (callback !== undefined) validateFunction(callback, 'callback');
      const buf = new FastBuffer(size);
      native().randomFill(buf, 0, size);
      if (callback === undefined) return buf;
      defer(() => callback(null, buf));
    }
    function randomFillSync(buf, offset = 0, size) {
      if (!isAnyArrayBuffer(buf) && !isArrayBufferView(buf)) {
        throw new ERR_INVALID_ARG_TYPE('buf', ['ArrayBuffer', 'ArrayBufferView'], buf);
      }
      const elementSize = buf.BYTES_PER_ELEMENT || 1;
      offset = assertOffset(offset, elementSize, buf.byteLength);
      if (size === undefined) size = buf.byteLength - offset;
      else size = assertSize(size, elementSize, offset, buf.byteLength);
      if (size === 0) return buf;
      native().randomFill(buf, offset, size);
      return buf;
    }
    function randomFill(buf, offset, size, callback) {
      if (!isAnyArrayBuffer(buf) && !isArrayBufferView(buf)) {
        throw new ERR_INVALID_ARG_TYPE('buf', ['ArrayBuffer', 'ArrayBufferView'], buf);
      }
      const elementSize = buf.BYTES_PER_ELEMENT || 1;
      if (typeof offset === 'function') {
        callback = offset;
        offset = 0;
        size = buf.byteLength;
      } else if (typeof size === 'function') {
        validateFunction(callback = size, 'callback');
        offset = assertOffset(offset, elementSize, buf.byteLength);
        size = buf.byteLength - offset;
      } else {
        validateFunction(callback, 'callback');
        offset = assertOffset(offset, elementSize, buf.byteLength);
        if (size === undefined) size = buf.byteLength - offset;
        else size = assertSize(size, elementSize, offset, buf.byteLength);
      }
      if (size > 0) native().randomFill(buf, offset, size);
      defer(() => callback(null, buf));
    }
    const RAND_MAX = 0xFFFFFFFFFFFF;
    function randomInt(min, max, callback) {
      const minNotSpecified = typeof max === 'undefined' || typeof max === 'function';
      if (minNotSpecified) {
        callback = max;
        max = min;
        min = 0;
      }
      const isSync = typeof callback === 'undefined';
      if (!isSync) validateFunction(callback, 'callback');
      if (!Number.isSafeInteger(min)) throw new ERR_INVALID_ARG_TYPE('min', 'a safe integer', min);
      if (!Number.isSafeInteger(max)) throw new ERR_INVALID_ARG_TYPE('max', 'a safe integer', max);
      if (max <= min) throw new ERR_OUT_OF_RANGE('max', `greater than the value of "min" (${min})`, max);
      const range = max - min;
      if (!(range <= RAND_MAX)) {
        throw new ERR_OUT_OF_RANGE(`max${minNotSpecified ? '' : ' - min'}`, `<= ${RAND_MAX}`, range);
      }
      const randLimit = RAND_MAX - (RAND_MAX % range);
      const six = new FastBuffer(6);
      for (;;) {
        native().randomFill(six, 0, 6);
        const x = six.readUIntBE(0, 6);
        if (x < randLimit) {
          const n = (x % range) + min;
          if (isSync) return n;
          defer(() => callback(undefined, n));
          return;
        }
      }
    }
    const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
    function randomUUID(options) {
      if (options !== undefined) validateObject(options, 'options');
      if (options && options.disableEntropyCache !== undefined) {
        validateBoolean(options.disableEntropyCache, 'options.disableEntropyCache');
      }
      const b = new Uint8Array(16);
      native().randomFill(b, 0, 16);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      return `${hex[b[0]]}${hex[b[1]]}${hex[b[2]]}${hex[b[3]]}-${hex[b[4]]}${hex[b[5]]}-${hex[b[6]]}${hex[b[7]]}-${hex[b[8]]}${hex[b[9]]}-${hex[b[10]]}${hex[b[11]]}${hex[b[12]]}${hex[b[13]]}${hex[b[14]]}${hex[b[15]]}`;
    }
    function timingSafeEqual(buf1, buf2) {
      for (const [name, value] of [['buf1', buf1], ['buf2', buf2]]) {
        if (!isAnyArrayBuffer(value) && !isArrayBufferView(value)) {
          throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be an instance of ArrayBuffer, Buffer, TypedArray, or DataView.`);
        }
      }
      const a = isAnyArrayBuffer(buf1) ? new Uint8Array(buf1) : new Uint8Array(buf1.buffer, buf1.byteOffset, buf1.byteLength);
      const b = isAnyArrayBuffer(buf2) ? new Uint8Array(buf2) : new Uint8Array(buf2.buffer, buf2.byteOffset, buf2.byteLength);
      if (a.length !== b.length) {
        throw codedError(RangeError, 'ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH', 'Input buffers must have the same byte length');
      }
      let diff = 0;
      for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
      return diff === 0;
    }

    // ---- key derivation (pbkdf2.js, scrypt.js, hkdf.js) ---------------------------------------
    function pbkdf2Check(password, salt, iterations, keylen, digest) {
      validateString(digest, 'digest');
      password = getArrayBufferOrView(password, 'password');
      salt = getArrayBufferOrView(salt, 'salt');
      validateInt32(iterations, 'iterations', 1);
      validateInt32(keylen, 'keylen', 0);
      checkDigest(digest);
      return { password, salt, iterations, keylen, digest };
    }
    function pbkdf2Sync(password, salt, iterations, keylen, digest) {
      const a = pbkdf2Check(password, salt, iterations, keylen, digest);
      return native().pbkdf2(a.password, a.salt, a.iterations, a.keylen, a.digest, alloc);
    }
    function pbkdf2(password, salt, iterations, keylen, digest, callback) {
      if (typeof digest === 'function') {
        callback = digest;
        digest = undefined;
      }
      const a = pbkdf2Check(password, salt, iterations, keylen, digest);
      validateFunction(callback, 'callback');
      let err = null;
      let out;
      try {
        out = native().pbkdf2(a.password, a.salt, a.iterations, a.keylen, a.digest, alloc);
      } catch (e) {
        err = e;
      }
      defer(() => (err ? callback(err) : callback(null, out)));
    }

    const scryptDefaults = { N: 16384, r: 8, p: 1, maxmem: 32 << 20 };
    function scryptCheck(password, salt, keylen, options) {
      password = getArrayBufferOrView(password, 'password');
      salt = getArrayBufferOrView(salt, 'salt');
      validateInt32(keylen, 'keylen', 0);
      let { N, r, p, maxmem } = scryptDefaults;
      if (options && options !== scryptDefaults) {
        const has = (name) => options[name] !== undefined;
        if (has('N')) {
          if (has('cost')) throw new ERR_INCOMPATIBLE_OPTION_PAIR('N', 'cost');
          N = options.N;
          validateUint32(N, 'N');
        }
        if (has('cost')) {
          N = options.cost;
          validateUint32(N, 'cost');
        }
        if (has('r')) {
          if (has('blockSize')) throw new ERR_INCOMPATIBLE_OPTION_PAIR('r', 'blockSize');
          r = options.r;
          validateUint32(r, 'r');
        }
        if (has('blockSize')) {
          r = options.blockSize;
          validateUint32(r, 'blockSize');
        }
        if (has('p')) {
          if (has('parallelization')) throw new ERR_INCOMPATIBLE_OPTION_PAIR('p', 'parallelization');
          p = options.p;
          validateUint32(p, 'p');
        }
        if (has('parallelization')) {
          p = options.parallelization;
          validateUint32(p, 'parallelization');
        }
        if (has('maxmem')) {
          maxmem = options.maxmem;
          validateInteger(maxmem, 'maxmem', 0);
        }
        if (N === 0) N = scryptDefaults.N;
        if (r === 0) r = scryptDefaults.r;
        if (p === 0) p = scryptDefaults.p;
        if (maxmem === 0) maxmem = scryptDefaults.maxmem;
      }
      if (N < 2 || (N & (N - 1)) !== 0) {
        throw codedError(RangeError, 'ERR_CRYPTO_INVALID_SCRYPT_PARAMS', 'Invalid scrypt params');
      }
      return { password, salt, keylen, N, r, p, maxmem };
    }
    // Node 20 reports both spellings of one parameter with this error.
    function ERR_INCOMPATIBLE_OPTION_PAIR() {
      return codedError(Error, 'ERR_CRYPTO_SCRYPT_INVALID_PARAMETER', 'Invalid scrypt parameter');
    }
    function runScrypt(a) {
      return native().scrypt(a.password, a.salt, a.keylen, a.N, a.r, a.p, a.maxmem, alloc);
    }
    function scryptSync(password, salt, keylen, options = scryptDefaults) {
      return runScrypt(scryptCheck(password, salt, keylen, options));
    }
    function scrypt(password, salt, keylen, options, callback = options) {
      if (callback === options) options = scryptDefaults;
      const a = scryptCheck(password, salt, keylen, options);
      validateFunction(callback, 'callback');
      let err = null;
      let out;
      try {
        out = runScrypt(a);
      } catch (e) {
        err = e;
      }
      defer(() => (err ? callback(err) : callback(null, out)));
    }

    function prepareHkdfKey(key) {
      if (isKeyObject(key)) {
        if (key.type !== 'secret') throw new ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE(key.type, 'secret');
        return key[kHandle].data;
      }
      if (typeof key !== 'string' && !isArrayBufferView(key) && !isAnyArrayBuffer(key)) {
        throw new ERR_INVALID_ARG_TYPE('ikm', ['string', 'SecretKeyObject', 'ArrayBuffer', 'TypedArray', 'DataView', 'Buffer'], key);
      }
      return getArrayBufferOrView(key, 'ikm');
    }
    function hkdfCheck(hash, key, salt, info, length) {
      validateString(hash, 'digest');
      key = prepareHkdfKey(key);
      salt = getArrayBufferOrView(salt, 'salt');
      info = getArrayBufferOrView(info, 'info');
      validateInteger(length, 'length', 0, 2 ** 32);
      if (info.byteLength > 1024) {
        throw new ERR_OUT_OF_RANGE('info', 'must not contain more than 1024 bytes', info.byteLength);
      }
      checkDigest(hash);
      return { hash, key, salt, info, length };
    }
    function hkdfSync(hash, key, salt, info, length) {
      const a = hkdfCheck(hash, key, salt, info, length);
      return native().hkdf(a.hash, a.key, a.salt, a.info, a.length, alloc).buffer;
    }
    function hkdf(hash, key, salt, info, length, callback) {
      const a = hkdfCheck(hash, key, salt, info, length);
      validateFunction(callback, 'callback');
      let err = null;
      let out;
      try {
        out = native().hkdf(a.hash, a.key, a.salt, a.info, a.length, alloc).buffer;
      } catch (e) {
        err = e;
      }
      defer(() => (err ? callback(err) : callback(null, out)));
    }

    // ---- ciphers (lib/internal/crypto/cipher.js) ------------------------------------------------
    function getUIntOption(options, key) {
      let value;
      if (options && (value = options[key]) != null) {
        if (value >>> 0 !== value) throw new ERR_INVALID_ARG_VALUE(`options.${key}`, value);
        return value;
      }
      return -1;
    }
    function createCipherBase(self, cipher, key, iv, options, decipher) {
      validateString(cipher, 'cipher');
      const encoding = options && typeof options === 'object' ? options.encoding : undefined;
      key = prepareSecretKey(key, encoding);
      if (iv !== null) iv = getArrayBufferOrView(iv, 'iv');
      const authTagLength = getUIntOption(options, 'authTagLength');
      self[kHandle] = native().cipherNew(cipher, key, iv, decipher, authTagLength);
      self._decoder = null;
      self[kFinalized] = false;
    }
    function Cipheriv(cipher, key, iv, options) {
      if (!(this instanceof Cipheriv)) return new Cipheriv(cipher, key, iv, options);
      createCipherBase(this, cipher, key, iv, options, false);
    }
    function Decipheriv(cipher, key, iv, options) {
      if (!(this instanceof Decipheriv)) return new Decipheriv(cipher, key, iv, options);
      createCipherBase(this, cipher, key, iv, options, true);
    }
    /** Output of update/final in an encoding: utf8 keeps split characters for the next call. */
    function cipherOutput(self, out, outputEncoding, final) {
      if (!outputEncoding || outputEncoding === 'buffer' || normalizeEncoding(outputEncoding) === undefined) {
        return out;
      }
      const enc = normalizeEncoding(outputEncoding);
      if (enc === 'utf8' || enc === 'utf16le' || enc === 'base64' || enc === 'base64url') {
        // Carry an incomplete unit (a UTF-8 sequence, a UTF-16 unit, a base64 group) over.
        let pending = self._decoder && self._decoder.enc === enc ? self._decoder.bytes : null;
        if (self._decoder && self._decoder.enc !== enc) {
          throw codedError(Error, 'ERR_INTERNAL_ASSERTION', 'Cannot change encoding');
        }
        let bytes = pending ? Buffer.concat([pending, out]) : out;
        let keep = 0;
        if (!final) {
          if (enc === 'utf8') keep = utf8Tail(bytes);
          else if (enc === 'utf16le') keep = bytes.length % 2;
          else keep = bytes.length % 3;
        }
        self._decoder = { enc, bytes: keep ? Buffer.from(bytes.subarray(bytes.length - keep)) : null };
        return bytes.toString(enc, 0, bytes.length - keep);
      }
      return out.toString(enc);
    }
    /** How many trailing bytes start a UTF-8 sequence that is not complete yet. */
    function utf8Tail(b) {
      for (let i = 1; i <= Math.min(3, b.length); i++) {
        const c = b[b.length - i];
        if ((c & 0xc0) === 0x80) continue;
        const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return need > i ? i : 0;
      }
      return 0;
    }
    function cipherUpdate(data, inputEncoding, outputEncoding) {
      if (typeof data === 'string') {
        validateEncoding(data, inputEncoding);
        data = Buffer.from(data, normalizeEncoding(inputEncoding) ? inputEncoding : 'utf8');
      } else if (!isArrayBufferView(data)) {
        throw new ERR_INVALID_ARG_TYPE('data', ['string', 'Buffer', 'TypedArray', 'DataView'], data);
      }
      const out = native().cipherUpdate(this[kHandle], data, alloc);
      return cipherOutput(this, out, outputEncoding, false);
    }
    function cipherFinal(outputEncoding) {
      if (this[kFinalized]) throw codedError(Error, 'ERR_CRYPTO_INVALID_STATE', 'Invalid state');
      let out;
      try {
        out = native().cipherFinal(this[kHandle], alloc);
      } catch (e) {
        if (e.message === 'Invalid state: the object is finished or from another call') {
          throw codedError(Error, 'ERR_CRYPTO_INVALID_STATE', 'Invalid state');
        }
        throw e;
      } finally {
        this[kFinalized] = true;
      }
      return cipherOutput(this, out, outputEncoding, true);
    }
    function setAutoPadding(ap) {
      if (!native().cipherSetPadding(this[kHandle], !!(ap === undefined ? true : ap))) {
        throw new ERR_CRYPTO_INVALID_STATE('setAutoPadding');
      }
      return this;
    }
    function setAAD(aadbuf, options) {
      const encoding = options && typeof options === 'object' ? options.encoding : undefined;
      const buffer = getArrayBufferOrView(aadbuf, 'aadbuf', encoding);
      const plaintextLength = getUIntOption(options, 'plaintextLength');
      if (!native().cipherSetAAD(this[kHandle], buffer, plaintextLength)) {
        throw new ERR_CRYPTO_INVALID_STATE('setAAD');
      }
      return this;
    }
    for (const Ctor of [Cipheriv, Decipheriv]) {
      Ctor.prototype.update = cipherUpdate;
      Ctor.prototype.final = cipherFinal;
      Ctor.prototype.setAutoPadding = setAutoPadding;
      Ctor.prototype.setAAD = setAAD;
    }
    Cipheriv.prototype.getAuthTag = function getAuthTag() {
      const ret = this[kFinalized] ? native().cipherAuthTag(this[kHandle], alloc) : undefined;
      if (ret === undefined) throw new ERR_CRYPTO_INVALID_STATE('getAuthTag');
      return ret;
    };
    Decipheriv.prototype.setAuthTag = function setAuthTag(tagbuf, encoding) {
      tagbuf = getArrayBufferOrView(tagbuf, 'buffer', encoding);
      const n = tagbuf.byteLength;
      if (n < 1 || n > 16 || (n < 12 && n !== 4 && n !== 8 && !this._ccm)) {
        if (n < 1 || n > 16) throw codedError(TypeError, 'ERR_CRYPTO_INVALID_AUTH_TAG', `Invalid authentication tag length: ${n}`);
      }
      if (!native().cipherSetAuthTag(this[kHandle], tagbuf)) throw new ERR_CRYPTO_INVALID_STATE('setAuthTag');
      return this;
    };
    function createCipheriv(cipher, key, iv, options) {
      return new Cipheriv(cipher, key, iv, options);
    }
    function createDecipheriv(cipher, key, iv, options) {
      return new Decipheriv(cipher, key, iv, options);
    }
    function getCipherInfo(nameOrNid, options) {
      if (typeof nameOrNid !== 'string' && typeof nameOrNid !== 'number') {
        throw new ERR_INVALID_ARG_TYPE('nameOrNid', ['string', 'number'], nameOrNid);
      }
      if (typeof nameOrNid === 'number') validateInt32(nameOrNid, 'nameOrNid');
      let keyLength, ivLength;
      if (options !== undefined) {
        validateObject(options, 'options');
        ({ keyLength, ivLength } = options);
        if (keyLength !== undefined) validateInt32(keyLength, 'options.keyLength');
        if (ivLength !== undefined) validateInt32(ivLength, 'options.ivLength');
      }
      if (typeof nameOrNid === 'number') return undefined;
      const info = native().cipherInfo(nameOrNid);
      if (info === undefined) return undefined;
      if (keyLength !== undefined && keyLength !== info.keyLength) return undefined;
      if (ivLength !== undefined && ivLength !== info.ivLength) return undefined;
      return info;
    }

    // ---- keys (lib/internal/crypto/keys.js) -----------------------------------------------------
    const kKeyType = Symbol('kKeyType');
    const kAsymmetricKeyDetails = Symbol('kAsymmetricKeyDetails');
    const kConsumePublic = 0;
    const kConsumePrivate = 1;
    const kCreatePublic = 2;
    const kCreatePrivate = 3;
    const kPublic = 0;
    const kPrivate = 1;
    /** Handles are plain objects: `{ data }` for secrets, `{ kind, der }` otherwise. */
    function isKeyObject(obj) {
      return obj != null && obj[kKeyType] !== undefined;
    }

    class KeyObject {
      constructor(type, handle) {
        if (type !== 'secret' && type !== 'public' && type !== 'private') throw new ERR_INVALID_ARG_VALUE('type', type);
        if (typeof handle !== 'object' || handle === null || !handlesMade.has(handle)) {
          throw new ERR_INVALID_ARG_TYPE('handle', 'object', handle);
        }
        this[kKeyType] = type;
        Object.defineProperty(this, kHandle, { value: handle, enumerable: false, configurable: false, writable: false });
      }
      get type() {
        return this[kKeyType];
      }
      static from(key) {
        throw new ERR_INVALID_ARG_TYPE('key', 'CryptoKey', key);
      }
      equals(otherKeyObject) {
        if (!isKeyObject(otherKeyObject)) throw new ERR_INVALID_ARG_TYPE('otherKeyObject', 'KeyObject', otherKeyObject);
        if (otherKeyObject.type !== this.type) return false;
        const a = this[kHandle];
        const b = otherKeyObject[kHandle];
        const x = a.data || a.der;
        const y = b.data || b.der;
        return x.length === y.length && timingSafeEqual(x, y);
      }
    }
    Object.defineProperty(KeyObject.prototype, Symbol.toStringTag, { configurable: true, value: 'KeyObject' });
    const handlesMade = new WeakSet();
    function makeHandle(fields) {
      handlesMade.add(fields);
      return fields;
    }

    class SecretKeyObject extends KeyObject {
      constructor(handle) {
        super('secret', handle);
      }
      get symmetricKeySize() {
        return this[kHandle].data.byteLength;
      }
      export(options) {
        if (options !== undefined) {
          validateObject(options, 'options');
          validateOneOf(options.format, 'options.format', [undefined, 'buffer', 'jwk']);
          if (options.format === 'jwk') return { kty: 'oct', k: Buffer.from(this[kHandle].data).toString('base64url') };
        }
        return Buffer.from(this[kHandle].data);
      }
    }

    class AsymmetricKeyObject extends KeyObject {
      get asymmetricKeyType() {
        return this[kHandle].details().type;
      }
      get asymmetricKeyDetails() {
        const type = this.asymmetricKeyType;
        if (type !== 'rsa' && type !== 'rsa-pss' && type !== 'dsa' && type !== 'ec') return {};
        if (this[kAsymmetricKeyDetails] === undefined) {
          const { type: _, publicExponent, ...rest } = this[kHandle].details();
          this[kAsymmetricKeyDetails] = publicExponent === undefined ? rest : { ...rest, publicExponent: BigInt(publicExponent) };
        }
        return this[kAsymmetricKeyDetails];
      }
    }
    function exportJwk(handle) {
      const details = handle.details();
      if (!['rsa', 'ec', 'ed25519', 'ed448', 'x25519', 'x448'].includes(details.type)) {
        throw codedError(Error, 'ERR_CRYPTO_JWK_UNSUPPORTED_KEY_TYPE', 'Unsupported JWK Key Type.');
      }
      return native().keyJwk(handle.kind, handle.der);
    }
    class PublicKeyObject extends AsymmetricKeyObject {
      constructor(handle) {
        super('public', handle);
      }
      export(options) {
        if (options && options.format === 'jwk') return exportJwk(this[kHandle]);
        const { format, type } = parseKeyEncoding(options, this.asymmetricKeyType, true);
        return native().keyExport(kPublic, this[kHandle].der, format, type, null, null, alloc);
      }
    }
    class PrivateKeyObject extends AsymmetricKeyObject {
      constructor(handle) {
        super('private', handle);
      }
      export(options) {
        if (options && options.format === 'jwk') {
          if (options.passphrase !== undefined) throw new ERR_CRYPTO_INCOMPATIBLE_KEY_OPTIONS('jwk', 'does not support encryption');
          return exportJwk(this[kHandle]);
        }
        const { format, type, cipher, passphrase } = parseKeyEncoding(options, this.asymmetricKeyType, false);
        return native().keyExport(kPrivate, this[kHandle].der, format, type, cipher === undefined ? null : cipher, passphrase === undefined ? null : passphrase, alloc);
      }
    }

    function asymmetricHandle(kind, der) {
      let details;
      return makeHandle({
        kind,
        der,
        details: () => details || (details = native().keyDetails(kind, der)),
      });
    }
    function secretHandle(data) {
      return makeHandle({ data: Buffer.from(data) });
    }

    function option(name, objName) {
      return objName === undefined ? `options.${name}` : `options.${objName}.${name}`;
    }
    function parseKeyFormat(formatStr, defaultFormat, optionName) {
      if (formatStr === undefined && defaultFormat !== undefined) return defaultFormat;
      if (formatStr === 'pem' || formatStr === 'der' || formatStr === 'jwk') return formatStr;
      throw new ERR_INVALID_ARG_VALUE(optionName, formatStr);
    }
    function parseKeyType(typeStr, required, keyType, isPublic, optionName) {
      if (typeStr === undefined && !required) return undefined;
      if (typeStr === 'pkcs1') {
        if (keyType !== undefined && keyType !== 'rsa') throw new ERR_CRYPTO_INCOMPATIBLE_KEY_OPTIONS(typeStr, 'can only be used for RSA keys');
        return typeStr;
      }
      if (typeStr === 'spki' && isPublic !== false) return typeStr;
      if (typeStr === 'pkcs8' && isPublic !== true) return typeStr;
      if (typeStr === 'sec1' && isPublic !== true) {
        if (keyType !== undefined && keyType !== 'ec') throw new ERR_CRYPTO_INCOMPATIBLE_KEY_OPTIONS(typeStr, 'can only be used for EC keys');
        return typeStr;
      }
      throw new ERR_INVALID_ARG_VALUE(optionName, typeStr);
    }
    function isStringOrBuffer(val) {
      return typeof val === 'string' || isArrayBufferView(val) || isAnyArrayBuffer(val);
    }
    function parseKeyEncoding(enc, keyType, isPublic, objName) {
      validateObject(enc, 'options');
      const isInput = keyType === undefined;
      const format = parseKeyFormat(enc.format, isInput ? 'pem' : undefined, option('format', objName));
      const isRequired = (!isInput || format === 'der') && format !== 'jwk';
      const type = parseKeyType(enc.type, isRequired, keyType, isPublic, option('type', objName));
      let cipher, passphrase, encoding;
      if (isPublic !== true) {
        ({ cipher, passphrase, encoding } = enc);
        if (!isInput) {
          if (cipher != null) {
            if (typeof cipher !== 'string') throw new ERR_INVALID_ARG_VALUE(option('cipher', objName), cipher);
            if (format === 'der' && (type === 'pkcs1' || type === 'sec1')) {
              throw new ERR_CRYPTO_INCOMPATIBLE_KEY_OPTIONS(type, 'does not support encryption');
            }
          } else if (passphrase !== undefined) {
            throw new ERR_INVALID_ARG_VALUE(option('cipher', objName), cipher);
          }
        }
        if ((isInput && passphrase !== undefined && !isStringOrBuffer(passphrase)) ||
            (!isInput && cipher != null && !isStringOrBuffer(passphrase))) {
          throw new ERR_INVALID_ARG_VALUE(option('passphrase', objName), passphrase);
        }
      }
      if (passphrase !== undefined) passphrase = getArrayBufferOrView(passphrase, 'key.passphrase', encoding);
      return { format, type, cipher, passphrase };
    }
    function getKeyTypes(allowKeyObject, bufferOnly = false) {
      const types = ['ArrayBuffer', 'Buffer', 'TypedArray', 'DataView', 'string', 'KeyObject', 'CryptoKey'];
      if (bufferOnly) return types.slice(0, 4);
      if (!allowKeyObject) return types.slice(0, 5);
      return types;
    }
    function getKeyObjectHandle(key, ctx) {
      if (ctx === kCreatePrivate) throw new ERR_INVALID_ARG_TYPE('key', ['string', 'ArrayBuffer', 'Buffer', 'TypedArray', 'DataView'], key);
      if (key.type !== 'private') {
        if (ctx === kConsumePrivate || ctx === kCreatePublic) throw new ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE(key.type, 'private');
        if (key.type !== 'public') throw new ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE(key.type, 'private or public');
      }
      return key[kHandle];
    }
    function b64(s) {
      return Buffer.from(s, 'base64');
    }
    function handleFromJwk(key, ctx) {
      validateObject(key, 'key');
      validateOneOf(key.kty, 'key.kty', ['RSA', 'EC', 'OKP']);
      const isPublic = ctx === kConsumePublic || ctx === kCreatePublic;
      let parts;
      let crv = '';
      if (key.kty === 'OKP') {
        validateString(key.crv, 'key.crv');
        validateOneOf(key.crv, 'key.crv', ['Ed25519', 'Ed448', 'X25519', 'X448']);
        validateString(key.x, 'key.x');
        if (!isPublic) validateString(key.d, 'key.d');
        const data = isPublic ? b64(key.x) : b64(key.d);
        const want = { Ed25519: 32, X25519: 32, Ed448: 57, X448: 56 }[key.crv];
        if (data.byteLength !== want) throw new ERR_CRYPTO_INVALID_JWK();
        crv = key.crv;
        parts = isPublic ? [data] : [b64(key.x), data];
      } else if (key.kty === 'EC') {
        validateString(key.crv, 'key.crv');
        validateOneOf(key.crv, 'key.crv', ['P-256', 'secp256k1', 'P-384', 'P-521']);
        validateString(key.x, 'key.x');
        validateString(key.y, 'key.y');
        if (!isPublic) validateString(key.d, 'key.d');
        crv = key.crv;
        parts = isPublic ? [b64(key.x), b64(key.y)] : [b64(key.x), b64(key.y), b64(key.d)];
      } else {
        validateString(key.n, 'key.n');
        validateString(key.e, 'key.e');
        parts = [b64(key.n), b64(key.e)];
        if (!isPublic) {
          for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
            validateString(key[m], `key.${m}`);
            parts.push(b64(key[m]));
          }
        }
      }
      const [kind, der] = native().keyFromJwk(key.kty, crv, !isPublic, parts, alloc);
      return asymmetricHandle(kind, der);
    }
    function prepareAsymmetricKey(key, ctx) {
      if (isKeyObject(key)) return { handle: getKeyObjectHandle(key, ctx) };
      if (isStringOrBuffer(key)) return { format: 'pem', data: getArrayBufferOrView(key, 'key') };
      if (typeof key === 'object' && key !== null) {
        const { key: data, encoding, format } = key;
        if (isKeyObject(data)) return { handle: getKeyObjectHandle(data, ctx) };
        if (format === 'jwk') {
          validateObject(data, 'key.key');
          return { handle: handleFromJwk(data, ctx) };
        }
        if (!isStringOrBuffer(data)) throw new ERR_INVALID_ARG_TYPE('key.key', getKeyTypes(ctx !== kCreatePrivate), data);
        const isPublic = ctx === kConsumePrivate || ctx === kCreatePrivate ? false : undefined;
        return { data: getArrayBufferOrView(data, 'key', encoding), ...parseKeyEncoding(key, undefined, isPublic) };
      }
      throw new ERR_INVALID_ARG_TYPE('key', getKeyTypes(ctx !== kCreatePrivate), key);
    }
    /** A prepared key as a handle: parsed by OpenSSL when it came as PEM or DER. */
    function toHandle(prepared, wantPublic) {
      if (prepared.handle) return prepared.handle;
      const [kind, der] = native().keyImport(prepared.data, prepared.format, prepared.type || '', wantPublic, prepared.passphrase === undefined ? null : prepared.passphrase, alloc);
      return asymmetricHandle(kind, der);
    }
    function prepareSecretKey(key, encoding, bufferOnly = false) {
      if (!bufferOnly && isKeyObject(key)) {
        if (key.type !== 'secret') throw new ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE(key.type, 'secret');
        return key[kHandle].data;
      }
      if (typeof key !== 'string' && !isArrayBufferView(key) && !isAnyArrayBuffer(key)) {
        throw new ERR_INVALID_ARG_TYPE('key', getKeyTypes(!bufferOnly, bufferOnly), key);
      }
      return getArrayBufferOrView(key, 'key', encoding);
    }
    function createSecretKey(key, encoding) {
      key = prepareSecretKey(key, encoding, true);
      return new SecretKeyObject(secretHandle(key));
    }
    function createPublicKey(key) {
      const prepared = prepareAsymmetricKey(key, kCreatePublic);
      let handle = toHandle(prepared, true);
      if (handle.kind === kPrivate) handle = asymmetricHandle(kPublic, native().keyPublic(handle.der, alloc));
      return new PublicKeyObject(handle);
    }
    function createPrivateKey(key) {
      const prepared = prepareAsymmetricKey(key, kCreatePrivate);
      return new PrivateKeyObject(toHandle(prepared, false));
    }

    // ---- sign / verify (lib/internal/crypto/sig.js) -------------------------------------------
    function getIntOption(name, options) {
      const value = options[name];
      if (value !== undefined) {
        if (value === value >> 0) return value;
        throw new ERR_INVALID_ARG_VALUE(`options.${name}`, value);
      }
      return undefined;
    }
    function getSaltLength(options) {
      let saltLength = getIntOption('saltLength', options);
      if (options.padding === constants.RSA_PKCS1_PSS_PADDING && saltLength === undefined) {
        saltLength = constants.RSA_PSS_SALTLEN_MAX_SIGN;
      }
      return saltLength;
    }
    function getDSASignatureEncoding(options) {
      if (typeof options === 'object') {
        const { dsaEncoding = 'der' } = options;
        if (dsaEncoding === 'der') return false;
        if (dsaEncoding === 'ieee-p1363') return true;
        throw new ERR_INVALID_ARG_VALUE('options.dsaEncoding', dsaEncoding);
      }
      return false;
    }
    function privateHandle(key) {
      return toHandle(prepareAsymmetricKey(key, kConsumePrivate), false);
    }
    function publicOrPrivateHandle(key) {
      return toHandle(prepareAsymmetricKey(key, kConsumePublic), true);
    }
    function nativeSign(algorithm, data, key) {
      const padding = getIntOption('padding', key);
      const saltLength = getSaltLength(key);
      const p1363 = getDSASignatureEncoding(key);
      const handle = privateHandle(key);
      if (handle.kind !== kPrivate) throw new ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE('public', 'private');
      return native().sign(algorithm == null ? null : algorithm, data, handle.der, padding, saltLength, p1363, alloc);
    }
    function nativeVerify(algorithm, data, key, signature) {
      const padding = getIntOption('padding', key);
      const saltLength = getSaltLength(key);
      const p1363 = getDSASignatureEncoding(key);
      const handle = publicOrPrivateHandle(key);
      return native().verify(algorithm == null ? null : algorithm, data, handle.kind, handle.der, signature, padding, saltLength, p1363);
    }
    function signOneShot(algorithm, data, key, callback) {
      if (algorithm != null) validateString(algorithm, 'algorithm');
      if (callback !== undefined) validateFunction(callback, 'callback');
      data = getArrayBufferOrView(data, 'data');
      if (!key) throw new ERR_CRYPTO_SIGN_KEY_REQUIRED();
      if (callback === undefined) return nativeSign(algorithm, data, key);
      let err = null;
      let sig;
      try {
        sig = nativeSign(algorithm, data, key);
      } catch (e) {
        err = e;
      }
      defer(() => (err ? callback(err) : callback(null, sig)));
    }
    function verifyOneShot(algorithm, data, key, signature, callback) {
      if (algorithm != null) validateString(algorithm, 'algorithm');
      if (callback !== undefined) validateFunction(callback, 'callback');
      data = getArrayBufferOrView(data, 'data');
      if (!isArrayBufferView(data)) throw new ERR_INVALID_ARG_TYPE('data', ['Buffer', 'TypedArray', 'DataView'], data);
      if (!isArrayBufferView(signature)) throw new ERR_INVALID_ARG_TYPE('signature', ['Buffer', 'TypedArray', 'DataView'], signature);
      if (callback === undefined) return nativeVerify(algorithm, data, key, signature);
      let err = null;
      let ok;
      try {
        ok = nativeVerify(algorithm, data, key, signature);
      } catch (e) {
        err = e;
      }
      defer(() => (err ? callback(err) : callback(null, ok)));
    }
    // Sign and Verify keep the data and sign it at the end (Node hashes as it goes; the
    // signature is the same).
    const kChunks = Symbol('kChunks');
    function Sign(algorithm, options) {
      if (!(this instanceof Sign)) return new Sign(algorithm, options);
      validateString(algorithm, 'algorithm');
      checkDigest(algorithm, false);
      this[kAlgorithm] = algorithm;
      this[kChunks] = [];
    }
    function signUpdate(data, encoding) {
      if (typeof data === 'string') {
        validateEncoding(data, encoding);
        data = Buffer.from(data, normalizeEncoding(encoding) ? encoding : 'utf8');
      } else if (!isArrayBufferView(data)) {
        throw new ERR_INVALID_ARG_TYPE('data', ['string', 'Buffer', 'TypedArray', 'DataView'], data);
      }
      if (this[kChunks] === null) throw codedError(Error, 'ERR_CRYPTO_INVALID_STATE', 'Invalid state for operation update');
      this[kChunks].push(Buffer.from(data.buffer, data.byteOffset, data.byteLength).slice());
      return this;
    }
    function takeData(self) {
      const chunks = self[kChunks];
      if (chunks === null) throw codedError(Error, 'ERR_CRYPTO_INVALID_STATE', 'Invalid state');
      self[kChunks] = null;
      return Buffer.concat(chunks);
    }
    Sign.prototype.update = signUpdate;
    Sign.prototype.sign = function sign(options, encoding) {
      if (!options) throw new ERR_CRYPTO_SIGN_KEY_REQUIRED();
      const ret = nativeSign(this[kAlgorithm], takeData(this), options);
      return encoding && encoding !== 'buffer' ? ret.toString(encoding) : ret;
    };
    function Verify(algorithm, options) {
      if (!(this instanceof Verify)) return new Verify(algorithm, options);
      validateString(algorithm, 'algorithm');
      checkDigest(algorithm, false);
      this[kAlgorithm] = algorithm;
      this[kChunks] = [];
    }
    Verify.prototype.update = signUpdate;
    Verify.prototype.verify = function verify(options, signature, sigEncoding) {
      signature = getArrayBufferOrView(signature, 'signature', sigEncoding);
      return nativeVerify(this[kAlgorithm], takeData(this), options, signature);
    };

    // ---- RSA encryption (lib/internal/crypto/cipher.js rsaFunctionFor) -------------------------
    function rsaFunctionFor(op, defaultPadding, keyType) {
      return (options, buffer) => {
        const handle = keyType === 'private' ? privateHandle(options) : publicOrPrivateHandle(options);
        const padding = options.padding || defaultPadding;
        const { oaepHash, encoding } = options;
        let { oaepLabel } = options;
        if (oaepHash !== undefined) validateString(oaepHash, 'key.oaepHash');
        if (oaepLabel !== undefined) oaepLabel = getArrayBufferOrView(oaepLabel, 'key.oaepLabel', encoding);
        buffer = getArrayBufferOrView(buffer, 'buffer', encoding);
        if (op === 1 && padding === constants.RSA_PKCS1_PADDING) {
          throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE', 'RSA_PKCS1_PADDING is no longer supported for private decryption, this can be reverted with --security-revert=CVE-2023-46809');
        }
        return native().rsaCrypt(op, handle.kind, handle.der, padding, oaepHash === undefined ? 'sha1' : oaepHash, oaepLabel === undefined ? null : oaepLabel, buffer, alloc);
      };
    }
    const publicEncrypt = rsaFunctionFor(0, constants.RSA_PKCS1_OAEP_PADDING, 'public');
    const privateDecrypt = rsaFunctionFor(1, constants.RSA_PKCS1_OAEP_PADDING, 'private');
    const privateEncrypt = rsaFunctionFor(2, constants.RSA_PKCS1_PADDING, 'private');
    const publicDecrypt = rsaFunctionFor(3, constants.RSA_PKCS1_PADDING, 'public');

    // ---- key generation (lib/internal/crypto/keygen.js) -----------------------------------------
    function parseKeyEncodings(options) {
      const { publicKeyEncoding, privateKeyEncoding } = options || {};
      let publicFormat;
      if (publicKeyEncoding == null) {
        publicFormat = null;
      } else if (typeof publicKeyEncoding === 'object') {
        publicFormat = parseKeyEncoding(publicKeyEncoding, options.__type, true, 'publicKeyEncoding');
      } else {
        throw new ERR_INVALID_ARG_VALUE('options.publicKeyEncoding', publicKeyEncoding);
      }
      let privateFormat;
      if (privateKeyEncoding == null) {
        privateFormat = null;
      } else if (typeof privateKeyEncoding === 'object') {
        privateFormat = parseKeyEncoding(privateKeyEncoding, options.__type, false, 'privateKeyEncoding');
      } else {
        throw new ERR_INVALID_ARG_VALUE('options.privateKeyEncoding', privateKeyEncoding);
      }
      return { publicFormat, privateFormat };
    }
    function generateKeyPairSync(type, options) {
      validateString(type, 'type');
      if (options !== undefined) validateObject(options, 'options');
      let a = '';
      let b = 65537;
      switch (type) {
        case 'rsa':
        case 'rsa-pss': {
          validateObject(options, 'options');
          const { modulusLength, publicExponent } = options;
          validateUint32(modulusLength, 'options.modulusLength');
          if (publicExponent !== undefined) validateUint32(publicExponent, 'options.publicExponent');
          if (type === 'rsa-pss') {
            const { hashAlgorithm, mgf1HashAlgorithm, saltLength } = options;
            if (saltLength !== undefined) validateInt32(saltLength, 'options.saltLength', 0);
            if (hashAlgorithm !== undefined) validateString(hashAlgorithm, 'options.hashAlgorithm');
            if (mgf1HashAlgorithm !== undefined) validateString(mgf1HashAlgorithm, 'options.mgf1HashAlgorithm');
          }
          a = modulusLength;
          b = publicExponent === undefined ? 65537 : publicExponent;
          break;
        }
        case 'dsa': {
          validateObject(options, 'options');
          const { modulusLength, divisorLength } = options;
          validateUint32(modulusLength, 'options.modulusLength');
          if (divisorLength != null) validateInt32(divisorLength, 'options.divisorLength', 0);
          a = modulusLength;
          break;
        }
        case 'ec': {
          validateObject(options, 'options');
          const { namedCurve, paramEncoding } = options;
          validateString(namedCurve, 'options.namedCurve');
          if (paramEncoding !== undefined && paramEncoding !== 'named' && paramEncoding !== 'explicit') {
            throw new ERR_INVALID_ARG_VALUE('options.paramEncoding', paramEncoding);
          }
          a = namedCurve;
          break;
        }
        case 'ed25519':
        case 'ed448':
        case 'x25519':
        case 'x448':
          break;
        case 'dh':
          throw new ERR_FEATURE_UNAVAILABLE_ON_PLATFORM("generateKeyPair('dh') in a keel code block");
        default:
          throw new ERR_INVALID_ARG_VALUE('type', type, 'must be a supported key type');
      }
      const { publicFormat, privateFormat } = parseKeyEncodings({ ...(options || {}), __type: type });
      const [spki, pkcs8] = native().generateKeyPair(type, a, b, 0, alloc);
      const publicKey = new PublicKeyObject(asymmetricHandle(kPublic, spki));
      const privateKey = new PrivateKeyObject(asymmetricHandle(kPrivate, pkcs8));
      return {
        publicKey: publicFormat ? publicKey.export(options.publicKeyEncoding) : publicKey,
        privateKey: privateFormat ? privateKey.export(options.privateKeyEncoding) : privateKey,
      };
    }
    function generateKeyPair(type, options, callback) {
      if (typeof options === 'function') {
        callback = options;
        options = undefined;
      }
      validateFunction(callback, 'callback');
      let err = null;
      let pair;
      try {
        pair = generateKeyPairSync(type, options);
      } catch (e) {
        if (e && typeof e.code === 'string' && (e.code === 'ERR_INVALID_ARG_TYPE' || e.code === 'ERR_INVALID_ARG_VALUE' || e.code === 'ERR_OUT_OF_RANGE')) throw e;
        err = e;
      }
      defer(() => (err ? callback(err) : callback(null, pair.publicKey, pair.privateKey)));
    }
    function generateKeySync(type, options) {
      validateString(type, 'type');
      validateObject(options, 'options');
      const { length } = options;
      switch (type) {
        case 'hmac':
          validateInteger(length, 'options.length', 8, 2 ** 31 - 1);
          break;
        case 'aes':
          validateOneOf(length, 'options.length', [128, 192, 256]);
          break;
        default:
          throw new ERR_INVALID_ARG_VALUE('type', type, "must be a supported key type");
      }
      return createSecretKey(randomBytes(Math.floor(length / 8)));
    }
    function generateKey(type, options, callback) {
      if (typeof options === 'function') {
        callback = options;
        options = undefined;
      }
      validateFunction(callback, 'callback');
      const key = generateKeySync(type, options);
      defer(() => callback(null, key));
    }

    function diffieHellman(options) {
      validateObject(options, 'options');
      const { privateKey, publicKey } = options;
      if (!(privateKey instanceof KeyObject)) throw new ERR_INVALID_ARG_VALUE('options.privateKey', privateKey);
      if (!(publicKey instanceof KeyObject)) throw new ERR_INVALID_ARG_VALUE('options.publicKey', publicKey);
      if (privateKey.type !== 'private') throw new ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE(privateKey.type, 'private');
      if (publicKey.type !== 'public' && publicKey.type !== 'private') {
        throw new ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE(publicKey.type, 'private or public');
      }
      const privateType = privateKey.asymmetricKeyType;
      const publicType = publicKey.asymmetricKeyType;
      if (privateType !== publicType || !['dh', 'ec', 'x448', 'x25519'].includes(privateType)) {
        throw codedError(Error, 'ERR_CRYPTO_INCOMPATIBLE_KEY', `Incompatible key types for Diffie-Hellman: ${privateType} and ${publicType}`);
      }
      const pub = publicKey.type === 'public' ? publicKey[kHandle].der : native().keyPublic(publicKey[kHandle].der, alloc);
      return native().derive(privateKey[kHandle].der, pub, alloc);
    }

    // ---- what keel leaves out -------------------------------------------------------------------
    function unavailable(name) {
      return function () {
        throw new ERR_FEATURE_UNAVAILABLE_ON_PLATFORM(`crypto.${name} in a keel code block`);
      };
    }

    // ---- Web Crypto (made apart, above; these are Node's wrappers of it) ------------------------
    const { crypto: webcrypto } = webCrypto();
    const subtle = webcrypto.subtle;
    function getRandomValues(array) {
      return webcrypto.getRandomValues(array);
    }

    const exports = {
      checkPrime: unavailable('checkPrime'),
      checkPrimeSync: unavailable('checkPrimeSync'),
      createCipheriv,
      createDecipheriv,
      createDiffieHellman: unavailable('createDiffieHellman'),
      createDiffieHellmanGroup: unavailable('createDiffieHellmanGroup'),
      createECDH: unavailable('createECDH'),
      createHash: (algorithm, options) => new Hash(algorithm, options),
      createHmac: (hmac, key, options) => new Hmac(hmac, key, options),
      createPrivateKey,
      createPublicKey,
      createSecretKey,
      createSign: (algorithm, options) => new Sign(algorithm, options),
      createVerify: (algorithm, options) => new Verify(algorithm, options),
      diffieHellman,
      generatePrime: unavailable('generatePrime'),
      generatePrimeSync: unavailable('generatePrimeSync'),
      getCiphers: () => ciphers.slice(),
      getCipherInfo,
      getCurves: () => curves.slice(),
      getDiffieHellman: unavailable('getDiffieHellman'),
      getHashes: () => hashes.slice(),
      hkdf,
      hkdfSync,
      pbkdf2,
      pbkdf2Sync,
      generateKeyPair,
      generateKeyPairSync,
      generateKey,
      generateKeySync,
      privateDecrypt,
      privateEncrypt,
      publicDecrypt,
      publicEncrypt,
      randomBytes,
      randomFill,
      randomFillSync,
      randomInt,
      randomUUID,
      scrypt,
      scryptSync,
      sign: signOneShot,
      setEngine: unavailable('setEngine'),
      timingSafeEqual,
      getFips: () => 0,
      setFips: unavailable('setFips'),
      verify: verifyOneShot,
      hash,
      Cipheriv,
      Decipheriv,
      Hash,
      Hmac,
      KeyObject,
      Sign,
      Verify,
      constants,
      webcrypto,
      subtle,
      getRandomValues,
      // Node's legacy aliases.
      pseudoRandomBytes: randomBytes,
      prng: randomBytes,
      rng: randomBytes,
    };
    return { exports };
  }
})(globalThis, globalThis.__keel_prelude);
