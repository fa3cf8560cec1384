// The API as the console calls it: the operator's key from sessionStorage as a bearer token,
// errors as ApiError with the API's own message. The console has no other way in: a key sees
// exactly what its scopes allow anywhere else.

const KEY = "vantage.console.key";
export const ROOT = document.querySelector('meta[name="vantage-root"]')?.content ?? "";

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (key) => sessionStorage.setItem(KEY, key);
export const clearKey = () => sessionStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export async function api(method, path, { query, body } = {}) {
  const url = new URL(ROOT + path, location.origin);
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const headers = { Authorization: `Bearer ${getKey() ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data?.error ?? {};
    throw new ApiError(res.status, e.code ?? "error", e.message ?? res.statusText, e.details);
  }
  return data;
}

// The calling key: {auth_enabled, key: {key_id, name, scopes, ...} | null, scopes}, where
// `scopes` is what it may do (admin expanded to every scope). Any valid key may ask; an
// unknown or revoked one is refused (401) with the API's message.
export const whoAmI = () => api("GET", "/v1/auth/me");

// What the OpenAPI schema (public) states: the configured surfaces and the largest `limit`.
let schema = null;
export async function serviceInfo() {
  schema ??= fetch(`${ROOT}/openapi.json`).then((r) => r.json());
  const doc = await schema;
  const params = doc.paths?.["/v1/recommendations"]?.get?.parameters ?? [];
  const find = (name) => params.find((p) => p.name === name)?.schema ?? {};
  const branches = (s) => s.anyOf ?? [s];
  const surfaces = branches(find("surface")).flatMap((s) => s.enum ?? []);
  const maxLimit = branches(find("limit")).map((s) => s.maximum).find(Number.isFinite);
  return { surfaces, maxLimit: maxLimit ?? 100 };
}
