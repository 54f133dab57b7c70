// The controller's writes as plain JSON requests. client-node's generated APIs send every body and read
// every answer through its ObjectSerializer (a walk of the whole object against the OpenAPI models,
// dates turned into Date objects) and its fetch through web streams: in a 1,000-pod burst that was
// ~6 s of the controller's CPU in client-node and ~9 s in undici's fetch, for answers the writers
// mostly drop. Here a write is JSON.stringify, undici's request() on the same pooled connection, rate
// limit and credentials (ApiClientConfig), and JSON.parse.
import { HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { request } from 'undici';

/**
 * The API server refused a request. Shaped as client-node's ApiException (`code`, and the Status as
 * raw JSON in `body`), so errors.ts reads both alike.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: number;
  readonly body: string;
  constructor(method: string, path: string, code: number, body: string) {
    let message = body.slice(0, 300);
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? message;
    } catch {
      /* not a Status: the text as it came */
    }
    super(`${method} ${path}: HTTP ${code}: ${message}`);
    this.code = code;
    this.body = body;
  }
}

export type PatchType = 'json' | 'merge' | 'strategic';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export interface JsonRequest {
  method: 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** The path below the server, e.g. /api/v1/namespaces/a/pods/b. */
  path: string;
  body?: unknown;
  /** For PATCH: which kind of patch `body` is (default JSON Patch). */
  patch?: PatchType;
}

/** Sends one request and resolves to the parsed answer; a status of 300 or more rejects with ApiError. */
export async function sendJson<T = unknown>(kc: KubeConfig, r: JsonRequest): Promise<T> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error(`cannot ${r.method} ${r.path}: the kubeconfig names no current cluster`);
  const url = `${server.replace(/\/+$/, '')}${r.path}`;
  const ctx = new RequestContext(url, HttpMethod[r.method]);
  // The rate limit, the request count, credentials and the pooled connection (client.ts).
  await kc.applySecurityAuthentication(ctx);
  const contentType = r.method === 'PATCH' ? PATCH_CONTENT_TYPE[r.patch ?? 'json'] : 'application/json';
  const res = await request(url, {
    method: r.method,
    headers: { ...ctx.getHeaders(), accept: 'application/json', 'content-type': contentType },
    body: r.body === undefined ? undefined : JSON.stringify(r.body),
    dispatcher: ctx.getDispatcher(),
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new ApiError(r.method, r.path, res.statusCode, text);
  return (text ? JSON.parse(text) : undefined) as T;
}
