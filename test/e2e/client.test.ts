// The controller's API client against the real apiserver: client-node's own KubeConfig opens a new
// TCP+TLS connection per request; the controller's keeps its connections and reuses them.
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiClientConfig } from '../../src/kube/client.ts';
import { ApiProxy } from './support/api-proxy.ts';
import { clients, type Clients } from './support/cluster.ts';

describe('API connections', () => {
  let c: Clients;
  let proxy: ApiProxy;

  beforeAll(async () => {
    c = clients();
    proxy = new ApiProxy(c.kc.getCurrentCluster()!.server, inject('testbedDir') + '/pki/ca.crt', inject('testbedDir'));
    await proxy.start();
  });
  afterAll(async () => proxy?.stop());

  async function connectionsFor(kc: KubeConfig, requests: number): Promise<number> {
    const core = kc.makeApiClient(CoreV1Api);
    const before = proxy.connections;
    for (let i = 0; i < requests; i++) await core.listNamespace({ limit: 1 });
    // Ten at once, as a reconcile burst does: a pool opens a few more, not one each time again.
    await Promise.all(Array.from({ length: 10 }, () => core.listNamespace({ limit: 1 })));
    for (let i = 0; i < requests; i++) await core.listNamespace({ limit: 1 });
    return proxy.connections - before;
  }

  it("client-node's KubeConfig opens a connection per request", async () => {
    const kc = proxy.kubeconfig(c.kc);
    expect(await connectionsFor(kc, 10)).toBeGreaterThanOrEqual(30);
  });

  it('the controller’s reuses a kept-alive pool', async () => {
    const kc = new ApiClientConfig({ qps: 0, burst: 1 });
    kc.loadFromString(proxy.kubeconfig(c.kc).exportConfig());
    // One for the sequential requests, at most one more per request of the burst, none after it.
    expect(await connectionsFor(kc, 10)).toBeLessThanOrEqual(11);
    await kc.close();
  });
});
