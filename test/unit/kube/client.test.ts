// The API client's connection pool and rate limit.
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { CoreV1Api, HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import { describe, expect, it, vi } from 'vitest';
import { ApiClientConfig, AUTH_REUSE_MS, requestKey } from '../../../src/kube/client.ts';
import { inPlacementLane } from '../../../src/kube/lanes.ts';
import { renewIfNeeded } from '../../../src/webhook/certificates.ts';
import { kubeconfigText } from './kubeconfig.ts';

const config = (ca: string) => kubeconfigText({ ca });

async function dispatcherOf(kc: KubeConfig, path = '/api/v1/pods') {
  const ctx = new RequestContext(`https://127.0.0.1:6443${path}`, HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getDispatcher();
}

describe('ApiClientConfig', () => {
  it("reuses one connection pool for every request (client-node's own KubeConfig makes one per request)", async () => {
    const plain = new KubeConfig();
    plain.loadFromString(config('ca-1'));
    expect(await dispatcherOf(plain)).not.toBe(await dispatcherOf(plain));

    const kc = new ApiClientConfig({ qps: 0, burst: 1 });
    kc.loadFromString(config('ca-1'));
    const first = await dispatcherOf(kc);
    expect(first).toBeDefined();
    expect(await dispatcherOf(kc, '/api/v1/nodes')).toBe(first);
    await kc.close();
  });

  it('builds its own pool for a cluster without TLS settings too (client-node falls back to the global, HTTP/2 dispatcher)', async () => {
    const noTls = kubeconfigText();
    const plain = new KubeConfig();
    plain.loadFromString(noTls);
    expect(await dispatcherOf(plain)).toBeUndefined();
    const kc = new ApiClientConfig({ qps: 0, burst: 1 });
    kc.loadFromString(noTls);
    const pool = await dispatcherOf(kc);
    expect(pool).toBeInstanceOf(Agent);
    expect(await dispatcherOf(kc, '/api/v1/nodes')).toBe(pool);
    await kc.close();
  });

  it('makes a new pool when the TLS material changes (rotated certificate files)', async () => {
    const kc = new ApiClientConfig({ qps: 0, burst: 1 });
    kc.loadFromString(config('ca-1'));
    const first = await dispatcherOf(kc);
    kc.loadFromString(config('ca-2'));
    const second = await dispatcherOf(kc);
    expect(second).not.toBe(first);
    expect(await dispatcherOf(kc)).toBe(second);
    await kc.close();
  });

  it("reuses one request's credentials for a second, and reads them again after it or after a reload", async () => {
    const built = vi.spyOn(KubeConfig.prototype, 'applySecurityAuthentication');
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      const kc = new ApiClientConfig({ qps: 0, burst: 1 });
      kc.loadFromString(config('ca-1'));
      const authorization = async () => {
        const ctx = new RequestContext('https://127.0.0.1:6443/api/v1/pods', HttpMethod.GET);
        await kc.applySecurityAuthentication(ctx);
        return ctx.getHeaders()['Authorization'];
      };
      for (let i = 0; i < 5; i++) expect(await authorization()).toBe('Bearer secret');
      expect(built).toHaveBeenCalledTimes(1);
      vi.advanceTimersByTime(AUTH_REUSE_MS);
      expect(await authorization()).toBe('Bearer secret');
      expect(built).toHaveBeenCalledTimes(2);
      // A reloaded kubeconfig (another token) is used at once, not a second later.
      kc.loadFromString(config('ca-1').replace('token: secret', 'token: rotated'));
      expect(await authorization()).toBe('Bearer rotated');
      expect(built).toHaveBeenCalledTimes(3);
      await kc.close();
    } finally {
      vi.useRealTimers();
      built.mockRestore();
    }
  });

  it('parses its TLS material once for every connection of the pool, and still verifies the server with it', async () => {
    const server = (await renewIfNeeded(undefined, { dnsNames: [], ipAddresses: ['127.0.0.1'] }, new Date()))!;
    const stranger = (await renewIfNeeded(undefined, { dnsNames: [], ipAddresses: ['127.0.0.1'] }, new Date()))!;
    // Each answer waits for all: the requests in flight together need a connection each.
    const waiting: (() => void)[] = [];
    const https = createServer({ cert: server.cert, key: server.key }, (_req, res) => {
      waiting.push(() => res.end('{}'));
      if (waiting.length === 4) for (const answer of waiting.splice(0)) answer();
    });
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(https.address() as AddressInfo).port}/api/v1/pods`;
    const load = (ca: string) => {
      const kc = new ApiClientConfig({ qps: 0, burst: 1 });
      kc.loadFromString(config(ca).replace('https://127.0.0.1:6443', url.replace('/api/v1/pods', '')));
      return kc;
    };
    const contexts = vi.spyOn(tls, 'createSecureContext');
    try {
      const kc = load(server.caBundle);
      const answers = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const { dispatcher } = await kc.credentials('GET', url);
          const res = await request(url, { dispatcher: dispatcher! });
          await res.body.text();
          return res.statusCode;
        }),
      );
      expect(answers).toEqual([200, 200, 200, 200]);
      // Four connections, one TLS context: a context per connection re-parses the CA and the client key.
      expect(contexts).toHaveBeenCalledTimes(1);
      await kc.close();
      // The one context still trusts only the kubeconfig's CA.
      const wrong = load(stranger.caBundle);
      const { dispatcher } = await wrong.credentials('GET', url);
      await expect(request(url, { dispatcher: dispatcher! })).rejects.toThrow(
        /self-signed|unable to verify|signature/i,
      );
      await wrong.close();
    } finally {
      contexts.mockRestore();
      https.closeAllConnections();
      await new Promise((r) => https.close(r));
    }
  });

  it('holds requests to the rate limit, but never lease renewals', async () => {
    const kc = new ApiClientConfig({ qps: 20, burst: 1 });
    kc.loadFromString(config('ca-1'));
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) await dispatcherOf(kc, '/api/v1/pods');
    // At least 2 × 50 ms after the first (a loaded machine only makes it longer).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    expect(kc.throttledMs).toBeGreaterThan(0);
    // Lease renewals never wait for a token: the time held does not grow while they go out.
    const held = kc.throttledMs;
    for (let i = 0; i < 5; i++)
      await dispatcherOf(kc, '/apis/coordination.k8s.io/v1/namespaces/ipp-system/leases/ipp-controller');
    expect(kc.throttledMs).toBe(held);
    await kc.close();
  });

  it('sends a placement write made through a generated API client ahead of ordinary requests already waiting', async () => {
    // Nothing listens on port 1: each request fails as soon as the limiter lets it go, in that order.
    const kc = new ApiClientConfig({ qps: 20, burst: 1 });
    kc.loadFromString(config('ca-1').replace('127.0.0.1:6443', '127.0.0.1:1'));
    const core = kc.makeApiClient(CoreV1Api);
    const order: string[] = [];
    const settle = (name: string, p: Promise<unknown>) =>
      p.then(
        () => order.push(name),
        () => order.push(name),
      );
    const all = [
      settle('list-1', core.listNode()),
      settle('list-2', core.listNode()),
      settle('list-3', core.listNode()),
      settle(
        'pin',
        inPlacementLane(() => core.patchNamespacedPod({ name: 'p', namespace: 'n', body: [] })),
      ),
    ];
    await Promise.all(all);
    expect(order.indexOf('pin')).toBeLessThan(order.indexOf('list-2'));
    await kc.close();
  });
});

describe('requestKey', () => {
  const s = 'https://10.0.0.1:6443';
  it('names requests as the API server counts them: verb, resource, subresource', () => {
    expect(requestKey('PATCH', `${s}/api/v1/namespaces/a/pods/p`)).toBe('PATCH pods');
    expect(requestKey('PATCH', `${s}/api/v1/namespaces/a/pods/p/status`)).toBe('PATCH pods/status');
    expect(requestKey('POST', `${s}/api/v1/namespaces/a/pods/p/binding`)).toBe('POST pods/binding');
    expect(requestKey('GET', `${s}/api/v1/namespaces/a/pods?labelSelector=x`)).toBe('LIST pods');
    expect(requestKey('GET', `${s}/api/v1/pods?watch=true`)).toBe('WATCH pods');
    expect(requestKey('GET', `${s}/api/v1/nodes/n`)).toBe('GET nodes');
    expect(requestKey('DELETE', `${s}/api/v1/namespaces/a/pods`)).toBe('DELETECOLLECTION pods');
    expect(requestKey('POST', `${s}/apis/events.k8s.io/v1/namespaces/a/events`)).toBe('POST events');
    expect(requestKey('PATCH', `${s}/apis/ipp.dev/v1alpha1/instances/i/status`)).toBe('PATCH instances.ipp.dev/status');
    expect(requestKey('PUT', `${s}/apis/coordination.k8s.io/v1/namespaces/a/leases/l`)).toBe('PUT leases');
  });

  it('counts every request an ApiClientConfig sends', async () => {
    const kc = new ApiClientConfig({ qps: 0, burst: 1 });
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: s, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    await kc.applySecurityAuthentication(new RequestContext(`${s}/api/v1/namespaces/a/pods/p`, HttpMethod.PATCH));
    await kc.applySecurityAuthentication(new RequestContext(`${s}/api/v1/namespaces/a/pods/q`, HttpMethod.PATCH));
    expect(kc.requests.get('PATCH pods')).toBe(2);
    await kc.close();
  });
});
