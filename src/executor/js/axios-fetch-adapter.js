// An axios adapter on top of keel's global `fetch` (implemented in Rust, subject to the
// executor's network policy). axios' own adapters need XMLHttpRequest, Node's http module, or
// the full WHATWG fetch/Request/ReadableStream surface; keel provides only `fetch`, so this
// adapter maps an axios request config onto one fetch call and the result back onto an
// axios response (status validation and AxiosError codes as axios' own adapters do).
'use strict';

module.exports = function makeFetchAdapter(axios) {
  const { AxiosError, AxiosHeaders } = axios;

  return function keelFetchAdapter(config) {
    const url = axios.getUri(config);
    const headers = AxiosHeaders.from(config.headers).normalize().toJSON();
    if (config.auth) {
      const user = config.auth.username || '';
      const pass = config.auth.password || '';
      headers.Authorization = 'Basic ' + btoa(unescape(encodeURIComponent(user + ':' + pass)));
    }
    let body = config.data;
    if (body !== undefined && body !== null && typeof body !== 'string') {
      body = typeof body.toString === 'function' ? body.toString() : String(body);
    }
    const method = (config.method || 'get').toUpperCase();
    const init = { method, headers, timeout: config.timeout || 0 };
    if (body !== undefined && body !== null && method !== 'GET' && method !== 'HEAD') {
      init.body = body;
    }
    if (config.maxRedirects === 0) init.redirect = 'manual';

    return fetch(url, init).then(
      (res) =>
        res.text().then((text) => {
          const response = {
            data: text,
            status: res.status,
            statusText: res.statusText,
            headers: AxiosHeaders.from(res.headers.toJSON()),
            config,
            request: { url: res.url },
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
        const timedOut = err && err.name === 'TimeoutError';
        throw new AxiosError(
          err && err.message ? err.message : String(err),
          timedOut ? AxiosError.ECONNABORTED : AxiosError.ERR_NETWORK,
          config,
          {}
        );
      }
    );
  };
};
