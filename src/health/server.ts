// The operations endpoint: /metrics for Prometheus, /healthz for the liveness probe, /readyz for the
// readiness probe. It runs on every replica, leader or not, so a standby is scraped and probed too.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/metrics.ts';

export interface Check {
  (): { ok: boolean; reason?: string };
}

export interface OpsServerOptions {
  port: number;
  host?: string;
  metrics: Metrics;
  /** Liveness: false only when a restart would help (process wedged, informers stalled). */
  healthy: Check;
  /** Readiness: caches synced and able to serve (webhook) / reconcile. */
  ready: Check;
  logger: Logger;
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

export function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const log = opts.logger.child({ component: 'ops-server' });

  const probe = (res: ServerResponse, head: boolean, name: string, check: Check) => {
    let result: { ok: boolean; reason?: string };
    try {
      result = check();
    } catch (e) {
      // A throwing check is a failing check, not a crashed server.
      result = { ok: false, reason: `${name} check threw: ${e instanceof Error ? e.message : String(e)}` };
    }
    const body = result.ok ? 'ok\n' : `${result.reason ?? 'not ok'}\n`;
    if (!result.ok) log.debug({ probe: name, reason: result.reason }, 'probe failing');
    res.writeHead(result.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(head ? undefined : body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return;
    }
    switch (path) {
      case '/metrics': {
        const text = await opts.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': opts.metrics.registry.contentType });
        res.end(head ? undefined : text);
        return;
      }
      case '/healthz':
      case '/livez':
        probe(res, head, 'healthz', opts.healthy);
        return;
      case '/readyz':
        probe(res, head, 'readyz', opts.ready);
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('not found: try /metrics, /healthz or /readyz\n');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log.error({ err: e, path: req.url }, 'ops endpoint failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('internal error\n');
    });
  });
  // Probes and scrapes are short; don't let a stuck client hold a socket (or shutdown) forever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      server.on('error', (e) => log.error({ err: e }, 'ops server error'));
      const port = (server.address() as AddressInfo).port;
      log.info({ port, host: opts.host ?? '::' }, 'serving /metrics, /healthz and /readyz');
      resolve({
        port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((e) => (e ? fail(e) : done()));
            // Prometheus keeps its scrape connection alive; without this close() waits for it to idle out.
            server.closeAllConnections();
          }),
      });
    });
  });
}
