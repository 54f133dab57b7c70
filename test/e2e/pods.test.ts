// PodWriter's bind and eviction against the real apiserver: each acts on the pod it read, never on a
// pod of the same name created since (a StatefulSet recreates its pods under their old names).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeError } from '../../src/kube/errors.ts';
import { PodWriter } from '../../src/kube/pods.ts';
import { clients, namespace, type Clients } from './support/cluster.ts';

describe('binding a pod on a real apiserver', () => {
  let c: Clients;
  let ns: string;
  // Another scheduler's: kube-scheduler leaves it alone.
  const body = {
    metadata: { name: 'db-0' },
    spec: { schedulerName: 'ipp', containers: [{ name: 'c', image: 'postgres' }] },
  };
  beforeAll(async () => {
    c = clients();
    ns = await namespace(c, 'bind');
  });
  afterAll(() => c.core.deleteNamespace({ name: ns }));

  it('refuses to bind a pod recreated under the same name since it was read (409), and binds the one read', async () => {
    const writer = new PodWriter(c.kc);
    const old = await c.core.createNamespacedPod({ namespace: ns, body });
    await c.core.deleteNamespacedPod({ name: 'db-0', namespace: ns, gracePeriodSeconds: 0 });
    const recreated = await c.core.createNamespacedPod({ namespace: ns, body });
    const refused = await writer.bind(old, 'node-of-the-old-claim').catch((e: unknown) => e);
    expect(kubeError(refused)?.code).toBe(409);
    expect((await c.core.readNamespacedPod({ name: 'db-0', namespace: ns })).spec?.nodeName).toBeUndefined();
    await writer.bind(recreated, 'node-of-its-claim');
    expect((await c.core.readNamespacedPod({ name: 'db-0', namespace: ns })).spec?.nodeName).toBe('node-of-its-claim');
  });

  it('does not evict a pod recreated under the same name since the drain read it', async () => {
    const writer = new PodWriter(c.kc);
    const web = {
      metadata: { name: 'web-0' },
      spec: { schedulerName: 'ipp', containers: [{ name: 'c', image: 'nginx' }] },
    };
    const old = await c.core.createNamespacedPod({ namespace: ns, body: web });
    await c.core.deleteNamespacedPod({ name: 'web-0', namespace: ns, gracePeriodSeconds: 0 });
    const recreated = await c.core.createNamespacedPod({ namespace: ns, body: web });
    await writer.evict(old);
    const now = await c.core.readNamespacedPod({ name: 'web-0', namespace: ns });
    expect(now.metadata?.uid).toBe(recreated.metadata?.uid);
    expect(now.metadata?.deletionTimestamp).toBeUndefined();
    await writer.evict(recreated);
    await expect(c.core.readNamespacedPod({ name: 'web-0', namespace: ns })).rejects.toMatchObject({ code: 404 });
  });
});
