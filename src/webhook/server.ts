// The HTTPS endpoint the apiserver calls. Thin on purpose: parse and check the AdmissionReview, hand
// the request to a pure rule (mutate.ts, enforce.ts), write the answer. A malformed envelope gets a
// 4xx; a rule that cannot decide denies (never allows); every request is bounded (limits.ts).
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1Node } from '@kubernetes/client-node';
import { NODE_CLASS_LABEL } from '../api/names.ts';
import type { Logger } from '../log.ts';
import type { AdmissionResult, Metrics } from '../metrics/metrics.ts';
import type { V1Pod } from '@kubernetes/client-node';
import {
  isRecord,
  type AdmissionRequest,
  type ClassLookup,
  type DaemonSetTrust,
  type Decision,
  type NodeLookup,
  type PlacementMode,
} from './admission.ts';
import { enforcePod, nodeNamedBy, type EnforceContext } from './enforce.ts';
import {
  Admittance,
  DEFAULT_LIMITS,
  guardConnections,
  HttpError,
  readBody,
  type Limits,
  type RequestTracker,
} from './limits.ts';
import { mutatePod, requestedClass } from './mutate.ts';

export const MUTATE_PATH = '/mutate-pods';
const ORDINARY_NODE_MS = 10_000;
const ORDINARY_NODES_MAX = 10_000;
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
  /** Pods by namespace and name, to check the controller's own bindings (see enforce.ts). */
  pods?: EnforceContext['pods'];
  /** Instances by name, to match the node of the Instance a pod claims by providerID (see enforce.ts). */
  instances?: EnforceContext['instances'];
  /** The controller's own username(s), allowed to place pods on ipp nodes (see enforce.ts). */
  controllerUsernames?: readonly string[];
  /** Which DaemonSet pods are node agents (admission.ts); default kube-system's, made by kube-controller-manager. */
  trust?: DaemonSetTrust;
  schedulers?: readonly string[];
  /** Default 4 MiB: an UPDATE review carries object and oldObject, each up to etcd's 1.5 MiB. */
  maxBodyBytes?: number;
  /** Connection, concurrency and time bounds (limits.ts); defaults in DEFAULT_LIMITS. */
  limits?: Partial<Limits>;
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

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const limits: Limits = {
    ...DEFAULT_LIMITS,
    ...opts.limits,
    ...(opts.maxBodyBytes ? { maxBodyBytes: opts.maxBodyBytes } : {}),
  };
  const maxBody = limits.maxBodyBytes;
  const admittance = new Admittance(limits);
  const log = opts.logger?.child({ component: 'webhook' });
  const trust = opts.trust ?? {};
  const enforceCtx = (nodes: Pick<EnforceContext, 'nodes' | 'nodeExists'>): EnforceContext => ({
    ...nodes,
    ...trust,
    ...(opts.controllerUsernames ? { controllerUsernames: opts.controllerUsernames } : {}),
    ...(opts.schedulers ? { schedulers: opts.schedulers } : {}),
    ...(opts.pods ? { pods: opts.pods } : {}),
    ...(opts.instances ? { instances: opts.instances } : {}),
  });
  const rules: Record<string, (r: AdmissionRequest) => Promise<Decision>> = {
    [MUTATE_PATH]: async (r) => mutatePod(r, { ...trust, mode: opts.placement, classes: await classesFor(r) }),
    [ENFORCE_PATH]: async (r) => enforcePod(r, enforceCtx(await nodesFor(r))),
  };

  // Ordinary nodes (the cache holds ipp nodes only) the API server said exist, for a few seconds: a
  // scheduler of its own binds pods to them all day, and each binding would otherwise cost a read.
  // Briefly enough that a name deleted and registered again as an ipp node meanwhile is no door.
  const ordinary = new Map<string, number>();

  /**
   * The node facts for one request: the node a created pod names or a binding targets (nodeNamedBy),
   * when the cache (ipp nodes only) does not hold it, is read from the API, so a node registered a
   * moment ago, or one that does not exist yet, is judged by what the apiserver knows.
   */
  async function nodesFor(review: AdmissionRequest): Promise<Pick<EnforceContext, 'nodes' | 'nodeExists'>> {
    const name = nodeNamedBy(review);
    if (name === undefined) return { nodes: opts.nodes };
    if (opts.nodes.get(name)) return { nodes: opts.nodes, nodeExists: () => true };
    const until = ordinary.get(name);
    if (until !== undefined && performance.now() < until) return { nodes: opts.nodes, nodeExists: () => true };
    if (!opts.nodes.fetch) return { nodes: opts.nodes };
    let fetched: V1Node | undefined;
    let known = true;
    try {
      fetched = await opts.nodes.fetch(name);
    } catch (e) {
      log?.warn({ err: e, node: name }, 'could not read Node; refusing pods that name it until it can be read');
      known = false;
    }
    if (fetched && !fetched.metadata?.labels?.[NODE_CLASS_LABEL]) {
      if (ordinary.size >= ORDINARY_NODES_MAX) ordinary.clear();
      ordinary.set(name, performance.now() + ORDINARY_NODE_MS);
    }
    return {
      nodes: { get: (n) => (n === name ? fetched : opts.nodes.get(n)) },
      nodeExists: (n) => (n !== name ? undefined : known ? fetched !== undefined : undefined),
    };
  }

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

  const server: Server = createServer(
    {
      key: opts.tls.key,
      cert: opts.tls.cert,
      minVersion: 'TLSv1.2',
      // How often Node enforces headersTimeout and requestTimeout; its default (30 s) would let them slip.
      connectionsCheckingInterval: 1_000,
      handshakeTimeout: limits.headersTimeoutMs,
    },
    (req, res) => {
      handle(req, res, track(req, res)).catch((e: unknown) => {
        // Only reachable if writing the response itself failed; the socket may already be gone.
        log?.warn({ err: e }, 'webhook response failed');
        if (!res.headersSent) send(res, 500, { message: 'internal error' });
        else res.destroy();
      });
    },
  );
  const track = guardConnections(server, limits);
  server.on('clientError', (_e, socket) => socket.destroy());
  server.on('tlsClientError', () => {
    /* handshake failures are the client's problem; nothing to do */
  });

  async function handle(req: IncomingMessage, res: ServerResponse, tracker: RequestTracker): Promise<void> {
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
    let done: () => void;
    const body = (() => {
      try {
        return admittance.body(Number(req.headers['content-length'] ?? 0));
      } catch (e) {
        return e as HttpError;
      }
    })();
    try {
      if (body instanceof HttpError) throw body;
      try {
        review = parseReview(await readBody(req, maxBody, body.growTo));
      } finally {
        body.release();
      }
      tracker.answering();
      done = admittance.decide();
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 400;
      // Stop reading a body we refused; closing after the answer keeps the connection from lingering.
      const unread = status === 413 || status === 503;
      if (unread) res.setHeader('Connection', 'close');
      send(res, status, { message: e instanceof Error ? e.message : String(e) });
      if (unread) res.on('finish', () => req.destroy());
      return;
    }

    let decision: Decision;
    try {
      decision = await rule(review);
      result = decision.allowed ? 'allowed' : 'denied';
    } catch (e) {
      // Fail closed: an HTTP error would let the apiserver apply failurePolicy, and Ignore would
      // admit the pod unchecked. A review the rules cannot read is refused instead.
      const malformed = e instanceof TypeError;
      log?.error({ err: e, uid: review.uid }, malformed ? 'admission request malformed' : 'admission rule failed');
      decision = {
        allowed: false,
        code: 500,
        reason: 'InternalError',
        message: malformed
          ? `ipp could not check this request and refuses it: ${e.message}`
          : `ipp webhook internal error, request refused: ${String(e)}`,
      };
    } finally {
      done();
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
