// Calls to the server. The session lives in an HttpOnly cookie the page never sees;
// every state-changing call carries the session's CSRF token in X-CSRF-Token.

export class ApiError extends Error {
  constructor(status, message, body = {}) {
    super(message);
    this.status = status;
    this.body = body;
  }

  // google.rpc.BadRequest field violations, as {field: description}
  get fields() {
    const out = {};
    for (const detail of this.body.details || []) {
      for (const v of detail.fieldViolations || []) out[v.field] = v.description;
    }
    return out;
  }
}

export const session = {
  info: null, // {user, csrfToken, expiresAt, zones, defaultZone, s3Endpoint, actions, maxKeyDuration}
  onEnded: null, // called with a message when the server says the session is gone
};

function csrfHeaders(method) {
  const headers = {};
  if (!["GET", "HEAD"].includes(method) && session.info && session.info.csrfToken) {
    headers["X-CSRF-Token"] = session.info.csrfToken;
  }
  return headers;
}

async function readError(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  const message = body.message || `${response.status} ${response.statusText || "error"}`;
  return new ApiError(response.status, message, body);
}

export async function api(method, path, body = undefined, { signIn = false } = {}) {
  // The console asks for Coffer's extension fields (key scopes, last use); see docs/api.md.
  const headers = { Accept: "application/json", "X-Coffer-Extensions": "*", ...csrfHeaders(method) };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `The server could not be reached (${err.message}).`);
  }
  if (!response.ok) {
    const error = await readError(response);
    if (response.status === 401 && !signIn && session.onEnded) {
      session.onEnded("Your session has ended. Sign in again to continue.");
    }
    throw error;
  }
  const text = await response.text();
  return text ? JSON.parse(text) : {};
}

// A raw upload with progress (fetch cannot report upload progress; XMLHttpRequest can).
export function upload(method, path, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    for (const [k, v] of Object.entries(csrfHeaders(method))) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Content-Type", blob.type || "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded);
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText || "{}");
      } catch {
        body = {};
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(blob.size);
        resolve(body);
      } else {
        if (xhr.status === 401 && session.onEnded) session.onEnded("Your session has ended. Sign in again to continue.");
        reject(new ApiError(xhr.status, body.message || `${xhr.status} ${xhr.statusText}`, body));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "The upload was interrupted: the server could not be reached.")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "The upload was cancelled.")));
    xhr.send(blob);
  });
}

export function q(params) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") search.set(k, v);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
