// An HTTPS proxy in front of the testbed's kube-apiserver that a test can tell to refuse some
// requests (the status a real apiserver or load balancer would give: 403, 429, 503; for a watch,
// 410 is given the way the apiserver's watch cache gives it, as an ERROR event), rewrite a request on
// its way, or drop every connection. A real 410 needs the watch cache to have moved past a
// resourceVersion, which takes minutes of churn; the injected one is byte-for-byte the same answer. Everything it forwards is answered by the real apiserver. It serves the
// apiserver's own certificate, so clients keep the testbed CA; credentials pass through untouched.
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export interface ProxiedRequest {
  method: string;
  url: URL;
}

export class ApiProxy {
  /** Return a status to answer a request with it instead of forwarding it. */
  refuse: (r: ProxiedRequest) => number | undefined = () => undefined;
  /** Changes a request before it is forwarded (mutate r.url). */
  rewrite: (r: ProxiedRequest) => void = () => {};
  readonly seen: ProxiedRequest[] = [];
  /** TLS connections clients opened to the proxy. */
  connections = 0;
  port = 0;
  private server!: Server;
  private readonly sockets = new Set<Socket>();
  private readonly upstream: URL;
  private readonly ca: Buffer;
  private readonly pki: string;

  constructor(upstream: string, caFile: string, testbedDir: string) {
    this.upstream = new URL(upstream);
    this.ca = readFileSync(caFile);
    this.pki = join(testbedDir, 'pki');
  }

  async start(): Promise<void> {
    this.server = createServer(
      { cert: readFileSync(join(this.pki, 'apiserver.crt')), key: readFileSync(join(this.pki, 'apiserver.key')) },
      (req, res) => this.handle(req, res),
    );
    this.server.on('secureConnection', (s) => {
      this.connections++;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
  }

  /** A copy of `kc` that talks to the apiserver through this proxy. */
  kubeconfig(kc: KubeConfig): KubeConfig {
    const out = new KubeConfig();
    out.loadFromString(kc.exportConfig());
    const name = out.getCurrentCluster()!.name;
    out.clusters = out.clusters.map((c) => (c.name === name ? { ...c, server: `https://127.0.0.1:${this.port}` } : c));
    return out;
  }

  /** Drops every open connection, watches included (what an apiserver restart does). */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const r: ProxiedRequest = { method: req.method ?? 'GET', url: new URL(req.url ?? '/', this.upstream) };
    this.seen.push(r);
    const refused = this.refuse(r);
    if (refused === 410 && r.url.searchParams.get('watch') === 'true') {
      // What kube-apiserver's watch cache answers for a resourceVersion it no longer holds: the
      // watch is accepted, then ends with one ERROR event carrying 410 Expired.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          type: 'ERROR',
          object: {
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            code: 410,
            reason: 'Expired',
            message: `too old resource version: ${r.url.searchParams.get('resourceVersion')} (injected by the test proxy)`,
          },
        }) + '\n',
      );
      return;
    }
    if (refused) {
      res.writeHead(refused, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          code: refused,
          reason: 'InjectedByTestProxy',
          message: `refused by the test proxy: ${r.method} ${r.url.pathname}`,
        }),
      );
      return;
    }
    this.rewrite(r);
    const up = request(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: r.method,
        path: r.url.pathname + r.url.search,
        headers: { ...req.headers, host: this.upstream.host },
        ca: this.ca,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  }
}
