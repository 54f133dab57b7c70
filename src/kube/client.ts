// How the controller talks to the API server: one pool of kept-alive HTTP/1.1 connections per API
// server and identity, and a client-side rate limit like client-go's (QPS and burst), in which the
// writes that place a waiting pod go first (lanes.ts).
//
// client-node 2.x builds a new undici Agent for every request (KubeConfig.createDispatcher), so every
// request opens a new TCP connection and TLS handshake: measured as a quarter of the controller's
// CPU in a burst and over a thousand open sockets. Here the Agent is built once per (cluster, user,
// TLS material) and reused; a changed certificate (rotated files) gets a new Agent and the old one
// is closed.
import tls from 'node:tls';
import { HttpMethod, KubeConfig, RequestContext, type Cluster, type User } from '@kubernetes/client-node';
import { Agent, type Dispatcher } from 'undici';
import { recheckFence } from './fence.ts';
import { laneOfCaller, LaneLimiter, type RateLimit } from './lanes.ts';

export type { RateLimit } from './lanes.ts';

/**
 * client-go's defaults are 5/10, controller-runtime's 20/30; Karpenter's 200/300 are taken here. A pod
 * cost the controller ~11 requests in a burst (`npm run bench -- burst` counts them by verb: its
 * claim and pin, an Instance create and ~3.5 status writes, 4 Events, a share of the class status),
 * so the former 50/100 capped a burst at ~4 pods/s however fast the rest was: 3.2 pods/s measured
 * for 1,000 pods. The placement lane (lanes.ts) still puts the writes a waiting pod needs first.
 */
export const DEFAULT_RATE_LIMIT: RateLimit = { qps: 200, burst: 300 };

interface Closable {
  close(): Promise<void>;
}
type CreateDispatcher = (cluster: Cluster | null, agentOptions: Record<string, unknown>) => Closable | undefined;
type CreateDispatcherOptions = (
  cluster: Cluster | null,
  agentOptions: Record<string, unknown>,
) => { type: string; connect?: Record<string, unknown> };

/**
 * `VERB resource[/subresource]` of a request, as the API server's apiserver_request_total names it
 * (GET of a collection is LIST, with watch=true WATCH; DELETE of a collection DELETECOLLECTION), for
 * counting what the controller sends: `npm run bench -- burst` prints it per pod.
 */
export function requestKey(method: string, url: string): string {
  // Read from the text: a URL object per request was ~0.6 % of a profiled burst's controller time.
  const scheme = url.indexOf('://');
  if (scheme < 0) return `${method} ?`;
  const pathAt = url.indexOf('/', scheme + 3);
  const queryAt = url.indexOf('?');
  const path =
    pathAt < 0 || (queryAt >= 0 && queryAt < pathAt) ? '' : url.slice(pathAt, queryAt < 0 ? undefined : queryAt);
  const query = queryAt < 0 ? '' : url.slice(queryAt + 1);
  const parts = path.split('/').filter(Boolean);
  // /api/v1/... or /apis/<group>/<version>/...
  let rest = parts[0] === 'api' ? parts.slice(2) : parts[0] === 'apis' ? parts.slice(3) : parts;
  const group = parts[0] === 'apis' ? parts[1] : '';
  if (rest[0] === 'watch') rest = rest.slice(1);
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const [resource = '', name, sub] = rest;
  const what = `${group && !group.endsWith('.k8s.io') && group.includes('.') ? `${resource}.${group}` : resource}${sub ? `/${sub}` : ''}`;
  let verb = method.toUpperCase();
  if (verb === 'GET' && !name)
    verb = query.split('&').includes('watch=true') || parts.includes('watch') ? 'WATCH' : 'LIST';
  if (verb === 'DELETE' && !name) verb = 'DELETECOLLECTION';
  return `${verb} ${what}`;
}

/**
 * How long one request's credentials (headers and connection pool) serve the next ones. client-node
 * rebuilds them for every request: decodes the CA and client certificate, reads token and
 * certificate files, asks the auth provider: 0.17 ms a request, 5 % of the controller's CPU in a
 * burst. Reused for a second, a rotated token or certificate file is still read within a second
 * (client-go re-reads a token file once a minute), and an exec or provider token is asked for again
 * as often; a reloaded kubeconfig (a new cluster or user object) is read at once.
 */
export const AUTH_REUSE_MS = 1_000;

/** Lease renewals skip the rate limit: a controller busy with its own writes must never lose the lease to its own limiter. */
const exempt = (url: string) => url.includes('/apis/coordination.k8s.io/');

/**
 * Would these options build the same pool as `before`? Compared field by field (certificates as
 * bytes) on every request: a JSON copy and a SHA-256 of the certificates per request was 4 % of the
 * controller's CPU in a burst.
 */
function sameOptions(
  before: DispatcherInputs,
  cluster: Cluster | null,
  agentOptions: Record<string, unknown>,
): boolean {
  if (before.name !== cluster?.name || before.server !== cluster?.server || before.proxyUrl !== cluster?.proxyUrl)
    return false;
  const keys = Object.keys(agentOptions);
  if (keys.length !== Object.keys(before.agentOptions).length) return false;
  return keys.every((k) => {
    const a = agentOptions[k];
    const b = before.agentOptions[k];
    return Buffer.isBuffer(a) && Buffer.isBuffer(b) ? a.equals(b) : a === b;
  });
}

interface DispatcherInputs {
  cluster: Cluster | null;
  name: string | undefined;
  server: string | undefined;
  proxyUrl: string | undefined;
  agentOptions: Record<string, unknown>;
}

/**
 * A KubeConfig whose every client (generated APIs, watches, the informers' own requests) shares one
 * connection pool per API server and one rate limit. Build it with `apiClientConfig`.
 */
export class ApiClientConfig extends KubeConfig {
  private readonly limiter: LaneLimiter;
  private readonly dispatchers = new Map<string, { inputs: DispatcherInputs; dispatcher: Closable }>();
  private readonly fresh: CreateDispatcher;
  /** Total time requests waited for the rate limit, in ms (for metrics and benchmarks). */
  throttledMs = 0;
  /** Requests sent since start, by requestKey() (for the shutdown log and benchmarks). */
  readonly requests = new Map<string, number>();
  /** The last request's credentials and pool, reused for AUTH_REUSE_MS. */
  private auth?: {
    cluster: Cluster | null;
    user: User | null;
    at: number;
    headers: Record<string, string>;
    dispatcher: ReturnType<RequestContext['getDispatcher']>;
  };

  constructor(limit: RateLimit = DEFAULT_RATE_LIMIT) {
    super();
    this.limiter = new LaneLimiter(limit);
    // createDispatcher and createDispatcherOptions are private in client-node's typings, but the one
    // place every request's Agent comes from; test/unit/kube/client.test.ts fails if a client-node
    // upgrade moves them.
    const self = this as unknown as {
      createDispatcher: CreateDispatcher;
      createDispatcherOptions: CreateDispatcherOptions;
    };
    const built = self.createDispatcher.bind(this);
    // HTTP/1.1 connections, not the one HTTP/2 connection undici negotiates with the API server. On
    // HTTP/2 every watch and write shares one TCP connection and its flow-control windows (256 KiB a
    // stream, 512 KiB the connection): in a 1,000-pod burst kube-apiserver closed the controller's pod
    // and node watches 10–20 times for not keeping up, and node Ready → pin answered took p50 0.5–3.3 s,
    // p99 1.3–6.7 s; on HTTP/1.1, no watch closed, p50 0.09–0.18 s, p99 0.43–0.47 s, and 10–15 % less
    // CPU per pod (`npm run bench -- burst`, docs/benchmarks.md). Watches then hold a connection each;
    // writes share the kept-alive rest. A proxy (proxy-url in the kubeconfig) keeps client-node's own
    // agent, and whatever it negotiates through the tunnel.
    // Kept alive for 30 s (undici's default is 4 s, and kube-apiserver sends no Keep-Alive hint), so
    // a write after a quiet spell does not pay a new TLS handshake. No cap on connections: a cap below
    // the number of watches would starve every write.
    this.fresh = (cluster, agentOptions) => {
      const o = self.createDispatcherOptions.call(this, cluster, agentOptions);
      const http1 = { allowH2: false, keepAliveTimeout: 30_000 };
      if (o.type === 'agent') return new Agent({ ...http1, connect: sharedContext(o.connect ?? {}) });
      // No TLS settings (a public CA, token or exec credentials): client-node would use undici's
      // global dispatcher, which negotiates HTTP/2.
      if (o.type === 'none') return new Agent(http1);
      return built(cluster, agentOptions);
    };
    self.createDispatcher = (cluster, agentOptions) => {
      const key = `${cluster?.name ?? ''}|${this.getCurrentUser()?.name ?? ''}`;
      const cached = this.dispatchers.get(key);
      if (cached && sameOptions(cached.inputs, cluster, agentOptions)) return cached.dispatcher;
      const dispatcher = this.fresh(cluster, agentOptions);
      if (!dispatcher) return undefined;
      const inputs = {
        cluster,
        name: cluster?.name,
        server: cluster?.server,
        proxyUrl: cluster?.proxyUrl,
        agentOptions,
      };
      this.dispatchers.set(key, { inputs, dispatcher });
      // In-flight requests on the old pool finish; close() only refuses new ones.
      void cached?.dispatcher.close().catch(() => {});
      return dispatcher;
    };
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    const auth = await this.credentials(context.getHttpMethod(), context.getUrl());
    for (const [k, v] of Object.entries(auth.headers)) context.setHeaderParam(k, v);
    if (auth.dispatcher) context.setDispatcher(auth.dispatcher);
  }

  /**
   * One request's credentials (headers) and connection pool, after its turn in the rate limit, and
   * counted: what applySecurityAuthentication gives client-node's RequestContext, for the
   * controller's own requests (request.ts) without building one (a URL parse per request).
   */
  async credentials(
    method: string,
    url: string,
  ): Promise<{ headers: Record<string, string>; dispatcher?: Dispatcher }> {
    const key = requestKey(method, url);
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    if (!exempt(url)) {
      const t0 = performance.now();
      await this.limiter.acquire(laneOfCaller());
      this.throttledMs += performance.now() - t0;
      // The wait may have outlived the leadership term of the write it is for.
      recheckFence(`${method} ${url}`);
    }
    const cluster = this.getCurrentCluster();
    const user = this.getCurrentUser();
    const now = performance.now();
    let auth = this.auth;
    if (!auth || auth.cluster !== cluster || auth.user !== user || now - auth.at >= AUTH_REUSE_MS) {
      const scratch = new RequestContext(url, method as HttpMethod);
      await super.applySecurityAuthentication(scratch);
      auth = { cluster, user, at: now, headers: scratch.getHeaders(), dispatcher: scratch.getDispatcher() };
      this.auth = auth;
    }
    return auth;
  }

  /**
   * Connections of the caller's own to the API server the shared pool `shared` reaches, with its TLS
   * material: for the lease's renewals, which drop their connections after a timeout (they may be
   * half-dead) without closing everyone else's. Undefined for a pool this config did not build.
   */
  ownConnections(shared: unknown): Closable | undefined {
    for (const { inputs, dispatcher } of this.dispatchers.values())
      if (dispatcher === shared) return this.fresh(inputs.cluster, inputs.agentOptions);
    return undefined;
  }

  /** Closes the pooled connections (in-flight requests finish). */
  async close(): Promise<void> {
    const all = [...this.dispatchers.values()];
    this.dispatchers.clear();
    await Promise.all(all.map((d) => d.dispatcher.close().catch(() => {})));
  }
}

/**
 * The pool's TLS options with the CA and client certificate parsed once, into one context every
 * connection shares. Given the PEM itself, Node builds a context per connection: a burst opens tens
 * of connections (one per request in flight), and parsing was about two fifths of their cost in a
 * profiled 100-pod burst. Material Node refuses is left as it was, for the connection to report.
 */
function sharedContext(connect: Record<string, unknown>): Record<string, unknown> {
  const { ca, cert, key, pfx, passphrase, ...rest } = connect;
  const material = Object.fromEntries(
    Object.entries({ ca, cert, key, pfx, passphrase }).filter(([, v]) => v !== undefined),
  );
  try {
    return { ...rest, secureContext: tls.createSecureContext(material) };
  } catch {
    return connect;
  }
}

/** Loads a kubeconfig file (or the in-cluster config when `path` is undefined) into an ApiClientConfig. */
export function apiClientConfig(path: string | undefined, limit: RateLimit = DEFAULT_RATE_LIMIT): ApiClientConfig {
  const kc = new ApiClientConfig(limit);
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  return kc;
}
