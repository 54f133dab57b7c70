// The controller's writes as plain JSON requests. client-node's generated APIs send every body and read
// every answer through its ObjectSerializer (a walk of the whole object against the OpenAPI models,
// dates turned into Date objects) and its fetch through web streams: in a 1,000-pod burst that was
// ~6 s of the controller's CPU in client-node and ~9 s in undici's fetch, for answers the writers
// mostly drop. Here a write is JSON.stringify, undici's request() on the same pooled connection, rate
// limit and credentials (ApiClientConfig), and JSON.parse.
import { HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { request } from 'undici';
import { ApiClientConfig } from './client.ts';
import { parseLean } from './decode.ts';

/** The Status an API server's refusal carries, or the start of whatever text came instead. */
export function statusOf(text: string): { reason?: string; message?: string } {
  try {
    return JSON.parse(text) as { reason?: string; message?: string };
  } catch {
    return { message: text.slice(0, 300) };
  }
}

/**
 * The API server refused a request. Shaped as client-node's ApiException (`code`, and the Status as
 * raw JSON in `body`), so errors.ts reads both alike.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: number;
  readonly body: string;
  constructor(method: string, path: string, code: number, body: string) {
    super(`${method} ${path}: HTTP ${code}: ${statusOf(body).message ?? body.slice(0, 300)}`);
    this.code = code;
    this.body = body;
  }
}

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/**
 * One request through the client's rate limit, request count, credentials and pooled connection
 * (client.ts); the answer as undici gives it, whatever its status. Writes (sendJson) and the
 * informers' lists and watches both go through here.
 */
export async function requestWithClient(
  kc: KubeConfig,
  method: Method,
  url: string,
  init: { headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {},
) {
  // ApiClientConfig hands out its credentials without client-node's RequestContext (a URL parse per request).
  const auth = kc instanceof ApiClientConfig ? await kc.credentials(method, url) : await viaContext(kc, method, url);
  return request(url, {
    method,
    headers: { ...auth.headers, ...init.headers },
    body: init.body,
    signal: init.signal,
    dispatcher: auth.dispatcher,
  });
}

/** Credentials and pool of any other KubeConfig, as client-node gives them to a request. */
async function viaContext(kc: KubeConfig, method: Method, url: string) {
  const ctx = new RequestContext(url, HttpMethod[method]);
  await kc.applySecurityAuthentication(ctx);
  return { headers: ctx.getHeaders(), dispatcher: ctx.getDispatcher() };
}

export type PatchType = 'json' | 'merge' | 'strategic';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export interface JsonRequest {
  method: Method;
  /** The path below the server, e.g. /api/v1/namespaces/a/pods/b. */
  path: string;
  body?: unknown;
  /** For PATCH: which kind of patch `body` is (default JSON Patch). */
  patch?: PatchType;
}

/** Sends one request and resolves to the parsed answer; a status of 300 or more rejects with ApiError. */
export async function sendJson<T = unknown>(kc: KubeConfig, r: JsonRequest): Promise<T> {
  const text = await exchange(kc, r);
  return (text ? parseLean(text) : undefined) as T;
}

/**
 * Sends one request for its effect: the answer is read to its end (the connection goes back to the
 * pool) but not parsed. Parsing the objects writes return was 0.7 s of a profiled 1,000-pod burst's
 * 37.7 s, and most writers (pins, Events, creates) have no use for them.
 */
export async function send(kc: KubeConfig, r: JsonRequest): Promise<void> {
  await exchange(kc, r, false);
}

/**
 * A successful answer is read to its end whatever its size (one object: etcd takes at most 1.5 MiB);
 * past this the connection is closed instead.
 */
const DISCARD_LIMIT_BYTES = 8 << 20;

/**
 * The answer's text, or '' when `read` is false and it succeeded (read to its end and dropped, never
 * decoded or joined); a status of 300 or more rejects with ApiError.
 */
async function exchange(kc: KubeConfig, r: JsonRequest, read = true): Promise<string> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error(`cannot ${r.method} ${r.path}: the kubeconfig names no current cluster`);
  const url = `${server.replace(/\/+$/, '')}${r.path}`;
  const contentType = r.method === 'PATCH' ? PATCH_CONTENT_TYPE[r.patch ?? 'json'] : 'application/json';
  const res = await requestWithClient(kc, r.method, url, {
    headers: { accept: 'application/json', ...(r.body === undefined ? {} : { 'content-type': contentType }) },
    body: r.body === undefined ? undefined : JSON.stringify(r.body),
  });
  if (res.statusCode >= 300) throw new ApiError(r.method, r.path, res.statusCode, await res.body.text());
  if (read) return res.body.text();
  await res.body.dump({ limit: DISCARD_LIMIT_BYTES });
  return '';
}
