// The ops server over real HTTP on an ephemeral port: probe answers follow the checks, /metrics is
// the registry's text exposition, and close() does not hang on a scraper's keep-alive connection.
import { Agent, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startOpsServer, type OpsServer } from '../../../src/health/server.ts';
import { createLogger } from '../../../src/log.ts';
import { Metrics } from '../../../src/metrics/metrics.ts';

describe('startOpsServer', () => {
  let server: OpsServer | undefined;
  afterEach(async () => {
    await server?.close().catch(() => {});
    server = undefined;
  });

  const start = async (
    health: { ok: boolean; reason?: string },
    ready: () => { ok: boolean; reason?: string },
    metrics = new Metrics(),
  ) => {
    server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      metrics,
      healthy: () => health,
      ready,
      logger: createLogger('silent'),
    });
    return `http://127.0.0.1:${server.port}`;
  };

  it('answers /healthz and /readyz with 200 or 503 and the reason, as the checks say at the time of the request', async () => {
    const health = { ok: true } as { ok: boolean; reason?: string };
    let ready: { ok: boolean; reason?: string } = { ok: false, reason: 'informer pods not synced' };
    const url = await start(health, () => ready);
    expect(server!.port).toBeGreaterThan(0);

    let r = await fetch(`${url}/healthz`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('ok\n');
    r = await fetch(`${url}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.text()).toBe('informer pods not synced\n');

    ready = { ok: true };
    health.ok = false;
    health.reason = 'informer nodes stalled for 300 s';
    r = await fetch(`${url}/readyz`);
    expect(r.status).toBe(200);
    r = await fetch(`${url}/healthz`);
    expect(r.status).toBe(503);
    expect(await r.text()).toBe('informer nodes stalled for 300 s\n');
    expect(r.headers.get('cache-control')).toBe('no-store');
  });

  it('turns a throwing check into a 503 instead of a crash', async () => {
    const url = await start({ ok: true }, () => {
      throw new Error('cache not built');
    });
    const r = await fetch(`${url}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.text()).toContain('cache not built');
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('serves the registry at /metrics in the Prometheus text format', async () => {
    const m = new Metrics();
    m.idleNodes.set({ class: 'postfix' }, 2);
    const url = await start({ ok: true }, () => ({ ok: true }), m);
    const r = await fetch(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    expect(text).toContain('# TYPE ipp_idle_nodes gauge');
    expect(text).toContain('ipp_idle_nodes{class="postfix"} 2');
    expect(text).toContain('process_cpu_seconds_total');
  });

  it('answers HEAD without a body, 404 elsewhere and 405 to other methods', async () => {
    const url = await start({ ok: true }, () => ({ ok: true }));
    const head = await fetch(`${url}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    const post = await fetch(`${url}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('fails to start with the listen error when the port is taken', async () => {
    await start({ ok: true }, () => ({ ok: true }));
    await expect(
      startOpsServer({
        port: server!.port,
        host: '127.0.0.1',
        metrics: new Metrics(),
        healthy: () => ({ ok: true }),
        ready: () => ({ ok: true }),
        logger: createLogger('silent'),
      }),
    ).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('closes promptly even with an idle keep-alive connection open, and stops listening', async () => {
    const url = await start({ ok: true }, () => ({ ok: true }));
    // A scraper's persistent connection: one request, then the socket stays open.
    await new Promise<void>((resolve, reject) => {
      const req = request(`${url}/metrics`, { agent: new Agent({ keepAlive: true }) }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    const s = server!;
    server = undefined;
    await s.close();
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
