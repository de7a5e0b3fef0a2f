// The management API as the console calls it: every request carries the
// bearer token, which reaches the page in the URL fragment and is kept in
// this tab's sessionStorage only.

const tokenKey = 'ferry.token';

// takeTokenFromFragment moves #token=… into sessionStorage and removes it
// from the address bar, so it is not bookmarked or shared by accident.
export function takeTokenFromFragment() {
  const hash = location.hash.startsWith('#') ? location.hash.slice(1) : '';
  const tok = new URLSearchParams(hash).get('token');
  if (tok) {
    sessionStorage.setItem(tokenKey, tok.trim());
    history.replaceState(null, '', location.pathname + location.search);
  }
}

export function hasToken() {
  return Boolean(sessionStorage.getItem(tokenKey));
}

export function setToken(tok) {
  sessionStorage.setItem(tokenKey, tok.trim());
}

// APIError is an answer that is not a success; status 0 means no answer.
export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const headers = { Authorization: 'Bearer ' + (sessionStorage.getItem(tokenKey) || '') };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new APIError(0, 'ferry up did not answer (' + err.message + ')');
  }
  if (!resp.ok) {
    let msg = resp.status + ' ' + resp.statusText;
    try {
      const j = await resp.json();
      if (j && j.error) msg = j.error;
    } catch (_) { /* not JSON: keep the status line */ }
    throw new APIError(resp.status, msg);
  }
  return resp;
}

export async function getJSON(path) {
  return (await call('GET', path)).json();
}

export async function getText(path) {
  return (await call('GET', path)).text();
}

export async function postJSON(path, body) {
  return (await call('POST', path, body)).json();
}

// postText sends text as it is (a JSON document the user wrote) and
// returns the answer's status, headers and text.
export async function postText(path, text) {
  const resp = await call('POST', path, text);
  return { status: resp.status, headers: resp.headers, text: await resp.text() };
}

// servicePath is the API path of one InferenceService (and a sub-resource).
export function servicePath(ns, name, sub) {
  let p = '/api/v1/namespaces/' + encodeURIComponent(ns) + '/inferenceservices/' + encodeURIComponent(name);
  if (sub) p += '/' + sub;
  return p;
}
