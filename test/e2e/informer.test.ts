// The self-healing informer against the real apiserver, reached through a TCP proxy that the test
// can cut (watch connections drop) and take down (the API is unreachable, so lists and watches fail
// and client-node's ListWatch used to stop): the cache must catch up with everything that happened.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clients, eventually, namespace, type Clients } from './support/cluster.ts';
import { Informer } from '../../src/kube/informer.ts';

class FlakyProxy {
  private readonly sockets = new Set<Socket>();
  private server!: Server;
  down = false;
  port = 0;
  private readonly target: URL;

  constructor(target: string) {
    this.target = new URL(target);
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.down) return client.destroy();
      const upstream = connect(Number(this.target.port), this.target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Drops every open connection (what a load balancer or apiserver restart does). */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}

describe('informer', () => {
  let c: Clients;
  let ns: string;
  let proxy: FlakyProxy;
  let informer: Informer<V1ConfigMap>;
  const seen: string[] = [];

  beforeAll(async () => {
    c = clients();
    ns = await namespace(c, 'informer');
    proxy = new FlakyProxy(c.kc.getCurrentCluster()!.server);
    await proxy.start();
    const kc = new KubeConfig();
    kc.loadFromString(c.kc.exportConfig());
    kc.clusters[0] = { ...kc.clusters[0]!, server: `https://127.0.0.1:${proxy.port}` };
    informer = new Informer<V1ConfigMap>({
      kubeconfig: kc,
      resource: 'configmaps',
      path: `/api/v1/namespaces/${ns}/configmaps`,
      pageSize: 2,
      logger: pino({ level: 'silent' }),
      onChange: (cm, kind) => seen.push(`${kind}:${cm.metadata!.name}`),
    });
    await informer.start();
  });

  afterAll(async () => {
    await informer?.stop();
    await proxy?.stop();
    await c.core.deleteNamespace({ name: ns }).catch(() => {});
  });

  // kube-root-ca.crt is published into every namespace by controller-manager.
  const names = () =>
    informer
      .list(ns)
      .map((x) => x.metadata!.name!)
      .filter((n) => n !== 'kube-root-ca.crt')
      .sort();
  const create = (name: string) => c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name } } });

  it('lists, then follows the watch', async () => {
    expect(informer.hasSynced()).toBe(true);
    await create('a');
    await eventually('a in the cache', async () => expect(names()).toContain('a'));
  });

  it('reconnects after its connection is cut', async () => {
    const watches = informer.watches();
    proxy.cut();
    await create('b');
    await eventually('b in the cache after the cut', async () => expect(names()).toEqual(['a', 'b']), 60_000);
    // Counted (ipp_informer_watches_total): a watch opened again.
    expect(informer.watches()).toBeGreaterThan(watches);
  });

  it('recovers after the API was unreachable, catching up on what it missed', async () => {
    proxy.down = true;
    proxy.cut();
    await create('c');
    await c.core.deleteNamespacedConfigMap({ name: 'a', namespace: ns });
    // Long enough for the watch to fail and client-node's ListWatch to give up on its own.
    await new Promise((r) => setTimeout(r, 4_000));
    proxy.down = false;
    await eventually('the cache to match the server again', async () => expect(names()).toEqual(['b', 'c']), 60_000);
    expect(seen).toContain('delete:a');
    expect(informer.silentForMs()).toBeLessThan(60_000);
  });
});
