// The HTTPS endpoint the apiserver calls. Thin on purpose: parse and check the AdmissionReview, hand
// the request to a pure rule (mutate.ts, enforce.ts), write the answer. Anything malformed gets a
// 4xx with a reason and the server keeps serving; it never trusts a body it has not bounded.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.ts';
import type { AdmissionResult, Metrics } from '../metrics/metrics.ts';
import type { V1Pod } from '@kubernetes/client-node';
import {
  isRecord,
  type AdmissionRequest,
  type ClassLookup,
  type Decision,
  type NodeLookup,
  type PlacementMode,
} from './admission.ts';
import { enforcePod, type EnforceContext } from './enforce.ts';
import { mutatePod, requestedClass } from './mutate.ts';

export const MUTATE_PATH = '/mutate-pods';
export const ENFORCE_PATH = '/enforce-pods';
export const HEALTH_PATH = '/healthz';

/** PEM strings or buffers, as node:tls takes them. */
export interface ServingCertificate {
  key: string | Buffer;
  cert: string | Buffer;
}

export interface WebhookServerOptions {
  tls: ServingCertificate;
  /** 0 picks a free port (tests). */
  port: number;
  /** Default: all interfaces. */
  host?: string;
  placement: PlacementMode;
  classes: ClassLookup;
  nodes: NodeLookup;
  /** The controller's own username(s), allowed to place pods on ipp nodes (see enforce.ts). */
  controllerUsernames?: readonly string[];
  daemonSetCreators?: readonly string[];
  schedulers?: readonly string[];
  /** Default 4 MiB: an UPDATE review carries object and oldObject, each up to etcd's 1.5 MiB. */
  maxBodyBytes?: number;
  logger?: Logger;
  /** Counts and times every admission review (ipp_webhook_requests_total, ipp_webhook_request_duration_seconds). */
  metrics?: Pick<Metrics, 'observeAdmission'>;
}

export interface WebhookServer {
  port: number;
  /** Swap the serving certificate for new connections (rotation without restart). */
  setSecureContext(tls: ServingCertificate): void;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const log = opts.logger?.child({ component: 'webhook' });
  const enforceCtx: EnforceContext = {
    nodes: opts.nodes,
    ...(opts.controllerUsernames ? { controllerUsernames: opts.controllerUsernames } : {}),
    ...(opts.daemonSetCreators ? { daemonSetCreators: opts.daemonSetCreators } : {}),
    ...(opts.schedulers ? { schedulers: opts.schedulers } : {}),
  };
  const rules: Record<string, (r: AdmissionRequest, classes: ClassLookup) => Decision> = {
    [MUTATE_PATH]: (r, classes) => mutatePod(r, { mode: opts.placement, classes }),
    [ENFORCE_PATH]: (r) => enforcePod(r, enforceCtx),
  };

  /** The class lookup for one request: a cache miss for the pod's class is read from the API once. */
  async function classesFor(review: AdmissionRequest): Promise<ClassLookup> {
    const cls = isRecord(review.object) ? requestedClass(review.object as V1Pod) : undefined;
    if (typeof cls !== 'string' || opts.classes.get(cls) || !opts.classes.fetch) return opts.classes;
    const fetched = await opts.classes.fetch(cls).catch((e: unknown) => {
      log?.warn({ err: e, class: cls }, 'could not read InstanceClass; deciding from the cache');
      return undefined;
    });
    return { get: (name) => (name === cls ? fetched : opts.classes.get(name)) };
  }

  const server: Server = createServer({ key: opts.tls.key, cert: opts.tls.cert, minVersion: 'TLSv1.2' }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      // Only reachable if writing the response itself failed; the socket may already be gone.
      log?.warn({ err: e }, 'webhook response failed');
      if (!res.headersSent) send(res, 500, { message: 'internal error' });
      else res.destroy();
    });
  });
  // Aligned with controller-runtime's webhook server; slowloris-style clients are cut off.
  server.keepAliveTimeout = 90_000;
  server.headersTimeout = 32_000;
  server.requestTimeout = 30_000;
  server.on('clientError', (_e, socket) => socket.destroy());
  server.on('tlsClientError', () => {
    /* handshake failures are the client's problem; nothing to do */
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path === HEALTH_PATH) {
      send(res, 200, { status: 'ok' });
      return;
    }
    const rule = rules[path];
    if (!rule) {
      send(res, 404, { message: `no webhook at ${path}; use ${MUTATE_PATH} or ${ENFORCE_PATH}` });
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      send(res, 405, { message: 'admission webhooks take POST' });
      return;
    }
    const started = performance.now();
    let result: AdmissionResult = 'error';
    res.once('finish', () =>
      opts.metrics?.observeAdmission(
        path === MUTATE_PATH ? 'mutate' : 'enforce',
        result,
        (performance.now() - started) / 1000,
      ),
    );
    let review: AdmissionRequest;
    try {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > maxBody) throw new HttpError(413, `body larger than ${maxBody} bytes`);
      review = parseReview(await readBody(req, maxBody));
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 400;
      if (status === 413) res.setHeader('Connection', 'close');
      send(res, status, { message: e instanceof Error ? e.message : String(e) });
      // Stop reading a body we refused; closing after the answer keeps the connection from lingering.
      if (status === 413) res.on('finish', () => req.destroy());
      return;
    }

    let decision: Decision;
    try {
      decision = rule(review, path === MUTATE_PATH ? await classesFor(review) : opts.classes);
      result = decision.allowed ? 'allowed' : 'denied';
    } catch (e) {
      if (e instanceof TypeError) {
        send(res, 400, { message: `malformed AdmissionReview: ${e.message}` });
        return;
      }
      log?.error({ err: e, uid: review.uid }, 'admission rule failed');
      decision = {
        allowed: false,
        code: 500,
        reason: 'InternalError',
        message: `ipp webhook internal error: ${String(e)}`,
      };
    }
    const fields = {
      path,
      uid: review.uid,
      operation: review.operation,
      namespace: review.namespace,
      name: review.name,
      dryRun: review.dryRun ?? false,
    };
    // Denials are what an operator gets asked about; allowed requests are the noise.
    if (decision.allowed) log?.debug({ ...fields, patched: !!decision.patch?.length }, 'admitted');
    else log?.info({ ...fields, user: review.userInfo?.username, reason: decision.message }, 'denied');
    send(res, 200, {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: toResponse(review.uid, decision),
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log?.info({ port, placement: opts.placement }, 'webhook server listening');

  return {
    port,
    setSecureContext(tls) {
      server.setSecureContext({ key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) {
        done = true;
        req.pause();
        reject(new HttpError(413, `body larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) {
        done = true;
        resolve(Buffer.concat(chunks));
      }
    });
    req.on('error', (e) => {
      if (!done) {
        done = true;
        reject(new HttpError(400, `reading the body failed: ${e.message}`));
      }
    });
  });
}

/** Checks the envelope and the request fields the rules rely on; throws HttpError(400) with the first problem. */
export function parseReview(body: Buffer): AdmissionRequest {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `body is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const bad = (what: string) => new HttpError(400, `not an admission.k8s.io/v1 AdmissionReview: ${what}`);
  if (!isRecord(doc)) throw bad('expected a JSON object');
  if (doc.apiVersion !== 'admission.k8s.io/v1')
    throw bad(
      `apiVersion must be admission.k8s.io/v1 (admissionReviewVersions: [v1]), got ${JSON.stringify(doc.apiVersion)}`,
    );
  if (doc.kind !== 'AdmissionReview') throw bad(`kind must be AdmissionReview, got ${JSON.stringify(doc.kind)}`);
  const r = doc.request;
  if (!isRecord(r)) throw bad('request is missing');
  if (typeof r.uid !== 'string' || r.uid === '') throw bad('request.uid must be a non-empty string');
  if (!isRecord(r.kind) || typeof r.kind.kind !== 'string') throw bad('request.kind.kind must be a string');
  if (typeof r.operation !== 'string') throw bad('request.operation must be a string');
  for (const f of ['name', 'namespace', 'subResource'] as const) {
    if (r[f] !== undefined && typeof r[f] !== 'string') throw bad(`request.${f} must be a string`);
  }
  if (r.resource !== undefined && (!isRecord(r.resource) || typeof r.resource.resource !== 'string'))
    throw bad('request.resource.resource must be a string');
  if (r.dryRun !== undefined && typeof r.dryRun !== 'boolean') throw bad('request.dryRun must be a boolean');
  if (
    r.userInfo !== undefined &&
    (!isRecord(r.userInfo) || (r.userInfo.username !== undefined && typeof r.userInfo.username !== 'string'))
  ) {
    throw bad('request.userInfo.username must be a string');
  }
  return r as unknown as AdmissionRequest;
}

function toResponse(uid: string, d: Decision): Record<string, unknown> {
  if (!d.allowed) return { uid, allowed: false, status: { code: d.code, reason: d.reason, message: d.message } };
  const out: Record<string, unknown> = { uid, allowed: true };
  if (d.patch && d.patch.length > 0) {
    out.patchType = 'JSONPatch';
    out.patch = Buffer.from(JSON.stringify(d.patch)).toString('base64');
  }
  if (d.warnings && d.warnings.length > 0) out.warnings = d.warnings;
  return out;
}
