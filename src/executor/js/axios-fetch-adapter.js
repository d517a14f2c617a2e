// An axios adapter on top of keel's global `fetch` (implemented in Rust, subject to the
// executor's network policy). axios' own adapters need XMLHttpRequest or Node's http module;
// this one maps an axios request config onto one fetch call and the answer back onto an
// axios response, with axios' status validation, `responseType`s (bytes stay bytes:
// 'arraybuffer' is a Buffer where one exists, else an ArrayBuffer, as in the browser),
// cancellation (`signal`, `cancelToken`) and error codes.
'use strict';

module.exports = function makeFetchAdapter(axios) {
  const { AxiosError, AxiosHeaders, CanceledError } = axios;

  /** Bodies fetch takes as they are; anything else is sent as its string. */
  function passThrough(body) {
    return (
      typeof body === 'string' ||
      body instanceof ArrayBuffer ||
      ArrayBuffer.isView(body) ||
      body instanceof Blob ||
      body instanceof FormData ||
      body instanceof URLSearchParams ||
      body instanceof ReadableStream
    );
  }

  function responseData(res, type) {
    switch (type) {
      case 'arraybuffer':
        return res.arrayBuffer().then((ab) => (typeof Buffer === 'function' && typeof Buffer.from === 'function' ? Buffer.from(ab) : ab));
      case 'blob':
        return res.blob();
      case 'stream':
        return Promise.resolve(res.body);
      default:
        return res.text();
    }
  }

  return function keelFetchAdapter(config) {
    const url = axios.getUri(config);
    const headers = AxiosHeaders.from(config.headers).normalize();
    if (config.auth) {
      const user = config.auth.username || '';
      const pass = config.auth.password ? unescape(encodeURIComponent(config.auth.password)) : '';
      headers.set('Authorization', 'Basic ' + btoa(user + ':' + pass));
    }
    let body = config.data;
    if (body !== undefined && body !== null && !passThrough(body)) body = String(body);
    if (body instanceof FormData) {
      // fetch writes the multipart content type with its boundary.
      const type = headers.getContentType();
      if (!type || !/boundary=/i.test(String(type))) headers.delete('Content-Type');
    }
    const method = (config.method || 'get').toUpperCase();
    const controller = new AbortController();
    const init = { method, headers: headers.toJSON(), timeout: config.timeout || 0, signal: controller.signal };
    if (body !== undefined && body !== null && method !== 'GET' && method !== 'HEAD') init.body = body;
    if (config.maxRedirects === 0) init.redirect = 'manual';

    let unsubscribe = () => {};
    const canceled = new Promise((resolve) => {
      if (config.signal) {
        if (config.signal.aborted) resolve(null);
        else config.signal.addEventListener('abort', () => resolve(null), { once: true });
      }
      if (config.cancelToken) {
        const onCancel = (cancel) => resolve(cancel);
        config.cancelToken.subscribe(onCancel);
        unsubscribe = () => config.cancelToken.unsubscribe(onCancel);
      }
    }).then((cancel) => {
      controller.abort();
      throw !cancel || cancel.type ? new CanceledError(null, config, {}) : cancel;
    });

    const request = fetch(url, init).then(
      (res) =>
        responseData(res, config.responseType).then((data) => {
          const flat = {};
          res.headers.forEach((v, k) => {
            if (k === 'set-cookie') (flat[k] = flat[k] || []).push(v);
            else flat[k] = v;
          });
          const response = {
            data,
            status: res.status,
            statusText: res.statusText,
            headers: AxiosHeaders.from(flat),
            config,
            request: { url: res.url, responseURL: res.url },
          };
          const validate = config.validateStatus;
          if (!res.status || !validate || validate(res.status)) {
            return response;
          }
          throw new AxiosError(
            'Request failed with status code ' + res.status,
            [AxiosError.ERR_BAD_REQUEST, AxiosError.ERR_BAD_RESPONSE][Math.floor(res.status / 100) - 4],
            config,
            response.request,
            response
          );
        }),
      (err) => {
        if (err instanceof AxiosError) throw err;
        if (err && err.name === 'TimeoutError') {
          const msg = config.timeoutErrorMessage || (config.timeout ? `timeout of ${config.timeout}ms exceeded` : 'timeout exceeded');
          throw new AxiosError(msg, AxiosError.ECONNABORTED, config, {});
        }
        throw new AxiosError(err && err.message ? err.message : String(err), AxiosError.ERR_NETWORK, config, {});
      }
    );
    const settled = Promise.race([request, canceled]);
    settled.then(unsubscribe, unsubscribe);
    // The loser of the race never rejects unobserved.
    canceled.catch(() => {});
    return settled;
  };
};
