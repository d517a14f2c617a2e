// HTTP calls to keel's control listener. The browser holds a session cookie (HttpOnly, set
// at login); writes add the session's CSRF token, which lives only in this module's memory
// and is fetched again from GET /api/v1/session after a reload.

let csrf = null;

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-Keel-CSRF'] = csrf;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'keel is not reachable');
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!resp.ok) {
    const err = data && data.error;
    throw new ApiError(resp.status, err?.type || 'http', err?.message || `${resp.status} ${resp.statusText}`);
  }
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body ?? {});
export const patch = (path, body) => call('PATCH', path, body ?? {});
export const del = (path) => call('DELETE', path);

/** The current session, or null when the cookie is missing or expired. */
export async function session() {
  try {
    const s = await get('/api/v1/session');
    csrf = s.csrf_token;
    return s;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function login(token) {
  const s = await post('/api/v1/session', { token });
  csrf = s.csrf_token;
  return s;
}

export async function logout() {
  try { await del('/api/v1/session'); } finally { csrf = null; }
}
