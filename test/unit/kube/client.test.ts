// The API client's connection pool and rate limit.
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ApiClientConfig, TokenBucket } from '../../../src/kube/client.ts';

const config = (ca: string) => `
apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: 'https://127.0.0.1:6443', certificate-authority-data: ${Buffer.from(ca).toString('base64')} } }]
users: [{ name: u, user: { token: secret } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`;

async function dispatcherOf(kc: KubeConfig, path = '/api/v1/pods') {
  const ctx = new RequestContext(`https://127.0.0.1:6443${path}`, HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getDispatcher();
}

describe('TokenBucket', () => {
  it('lets a burst through at once, then spaces requests at the QPS, in arrival order', () => {
    let now = 0;
    const b = new TokenBucket({ qps: 10, burst: 3 }, () => now);
    expect([b.reserve(), b.reserve(), b.reserve()]).toEqual([0, 0, 0]);
    expect(b.reserve()).toBeCloseTo(100);
    expect(b.reserve()).toBeCloseTo(200);
    now = 1_000; // 10 tokens' worth of time: the two debts are paid, the bucket refills to its burst
    expect(b.reserve()).toBe(0);
  });

  it('never limits with QPS 0', () => {
    const b = new TokenBucket({ qps: 0, burst: 1 });
    for (let i = 0; i < 1_000; i++) expect(b.reserve()).toBe(0);
  });
});

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
});
