// Proves the testbed's parts are real: controller-manager creates pods, kube-scheduler binds them,
// kwok runs them on a Node that nobody but kwok keeps alive.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';

describe('testbed', () => {
  let c: Clients;
  let ns: string;
  const node = `smoke-${suffix()}`;

  beforeAll(async () => {
    c = clients();
    ns = await namespace(c, 'smoke');
  });
  afterAll(async () => {
    await c.core.deleteNamespace({ name: ns });
    await c.core.deleteNode({ name: node }).catch(() => {});
  });

  it('serves the pinned Kubernetes release over authenticated TLS', async () => {
    const version = await c.kc.makeApiClient((await import('@kubernetes/client-node')).VersionApi).getCode();
    expect(version.gitVersion).toBe('v1.35.4');
    const { CoreV1Api, KubeConfig } = await import('@kubernetes/client-node');
    const anonymous = new KubeConfig();
    anonymous.loadFromOptions({
      clusters: [{ name: 'c', server: c.kc.getCurrentCluster()!.server, caFile: c.kc.getCurrentCluster()!.caFile! }],
      users: [{ name: 'nobody' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'nobody' }],
      currentContext: 'x',
    });
    await expect(anonymous.makeApiClient(CoreV1Api).listNamespace()).rejects.toMatchObject({ code: 403 });
  });

  it('runs a Deployment: controller-manager creates pods, the scheduler binds them, kwok runs them', async () => {
    await c.core.createNode({
      body: {
        metadata: { name: node, labels: { smoke: node }, annotations: { 'kwok.x-k8s.io/node': 'fake' } },
        spec: {},
      },
    });
    await eventually('kwok to make the node Ready', async () => {
      const n = await c.core.readNode({ name: node });
      expect(n.status?.conditions?.find((x) => x.type === 'Ready')?.status).toBe('True');
    });
    await c.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { nodeSelector: { smoke: node }, containers: [{ name: 'nginx', image: 'nginx' }] },
          },
        },
      },
    });
    const pods = await eventually(
      '2 running pods on the kwok node',
      async () => {
        const list = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' });
        expect(list.items).toHaveLength(2);
        for (const p of list.items) {
          expect(p.spec?.nodeName).toBe(node);
          expect(p.status?.phase).toBe('Running');
          expect(p.status?.podIP).toBeTruthy();
        }
        return list.items;
      },
      90_000,
    );
    // Bound by the real scheduler (it records the PodScheduled condition), owned via a ReplicaSet.
    for (const p of pods) {
      expect(p.status?.conditions?.find((x) => x.type === 'PodScheduled')?.status).toBe('True');
      expect(p.metadata?.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
    }
  });
});
