// The controller's API client against the real apiserver: client-node's own KubeConfig opens a new
// TCP+TLS connection per request; the controller's keeps its connections and reuses them.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { CoreV1Api, KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiClientConfig } from '../../src/kube/client.ts';
import { describeError, isAlreadyExists, isNotFound, isStale } from '../../src/kube/errors.ts';
import { ApiError, send, sendJson } from '../../src/kube/request.ts';
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

  it('speaks HTTP/1.1 to the API server, which offers HTTP/2 (what client-node negotiates)', async () => {
    const protocols: unknown[] = [];
    const port = new URL(c.kc.getCurrentCluster()!.server).port;
    const connected = (m: unknown) => {
      const { socket, connectParams } = m as {
        socket?: { alpnProtocol?: string | false };
        connectParams?: { port?: string };
      };
      if (connectParams?.port === port) protocols.push(socket?.alpnProtocol);
    };
    subscribe('undici:client:connected', connected);
    try {
      const plain = new KubeConfig();
      plain.loadFromString(c.kc.exportConfig());
      await plain.makeApiClient(CoreV1Api).listNamespace({ limit: 1 });
      const kc = new ApiClientConfig({ qps: 0, burst: 1 });
      kc.loadFromString(c.kc.exportConfig());
      await sendJson(kc, { method: 'GET', path: '/api/v1/namespaces?limit=1' });
      await kc.close();
    } finally {
      unsubscribe('undici:client:connected', connected);
    }
    expect(protocols).toEqual(['h2', 'http/1.1']);
  });
});

describe('plain JSON writes (request.ts)', () => {
  it('write, and refuse as client-node does: a stale guard is stale, a missing object not found, a second create AlreadyExists', async () => {
    const c = clients();
    const kc = new ApiClientConfig({ qps: 0, burst: 1 });
    kc.loadFromString(c.kc.exportConfig());
    const name = `json-${Date.now().toString(36)}`;
    const path = '/api/v1/namespaces/default/configmaps';
    const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { a: '1' } };
    try {
      const made = await sendJson<V1ConfigMap>(kc, { method: 'POST', path, body });
      expect(made.metadata?.resourceVersion).toBeTruthy();
      // The answer is JSON as the API server sent it (no client-side model: timestamps stay strings),
      // but for the managedFields it always carries, left out as it is parsed (decode.ts).
      expect(typeof made.metadata?.creationTimestamp).toBe('string');
      expect(made.metadata).not.toHaveProperty('managedFields');
      expect(made.metadata?.uid).toBeTruthy();
      const again = await sendJson(kc, { method: 'POST', path, body }).catch((e: unknown) => e);
      expect(again).toBeInstanceOf(ApiError);
      expect(isAlreadyExists(again)).toBe(true);

      const guarded = (rv: string) => [
        { op: 'test', path: '/metadata/resourceVersion', value: rv },
        { op: 'replace', path: '/data/a', value: '2' },
      ];
      const patched = await sendJson<V1ConfigMap>(kc, {
        method: 'PATCH',
        path: `${path}/${name}`,
        body: guarded(made.metadata!.resourceVersion!),
      });
      expect(patched.data).toEqual({ a: '2' });
      const stale = await sendJson(kc, {
        method: 'PATCH',
        path: `${path}/${name}`,
        body: guarded(made.metadata!.resourceVersion!),
      }).catch((e: unknown) => e);
      expect(isStale(stale)).toBe(true);
      const merged = await sendJson<V1ConfigMap>(kc, {
        method: 'PATCH',
        path: `${path}/${name}`,
        body: { data: { b: '3' } },
        patch: 'merge',
      });
      expect(merged.data).toEqual({ a: '2', b: '3' });

      // For its effect only: nothing parsed, refusals as for sendJson.
      expect(await send(kc, { method: 'DELETE', path: `${path}/${name}` })).toBeUndefined();
      const gone = await send(kc, { method: 'DELETE', path: `${path}/${name}` }).catch((e: unknown) => e);
      expect(isNotFound(gone)).toBe(true);
      expect(describeError(gone)).toContain('HTTP 404 NotFound');
      // Counted and rate-limited like every other request of the client.
      expect(kc.requests.get('POST configmaps')).toBe(2);
    } finally {
      await kc.close();
    }
  });
});
