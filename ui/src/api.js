// The API client: the token of the session, JSON in and out, and the
// API's own error message on every refusal.

const KEY = 'flowg.token';

export function token() { return sessionStorage.getItem(KEY) || ''; }
export function setToken(t) { t ? sessionStorage.setItem(KEY, t) : sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(method, path, body) {
  const headers = {};
  if (token()) headers.Authorization = 'Bearer ' + token();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = text;
  try { data = text ? JSON.parse(text) : {}; } catch { /* not JSON */ }
  if (!r.ok) {
    if (r.status === 401 && !path.endsWith('/auth/login')) {
      setToken('');
      location.hash = '#/login?next=' + encodeURIComponent(location.hash);
    }
    throw new ApiError(r.status, (data && data.error) || r.statusText);
  }
  return data;
}

export const get = (path, params) => api('GET', params ? path + '?' + query(params) : path);

// query encodes the params that are set.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  return q.toString();
}

// tail opens a live tail (server-sent events read with fetch, which can
// send the token) and calls onEvent(name, data) per event until the
// signal aborts or the server ends it.
export async function tail(stream, filter, onEvent, signal) {
  const r = await fetch(`/api/v1/streams/${encodeURIComponent(stream)}/logs/watch?` + query({ filter }),
    { headers: { Authorization: 'Bearer ' + token() }, signal });
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error; } catch { /* keep the status */ }
    throw new ApiError(r.status, msg);
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}
