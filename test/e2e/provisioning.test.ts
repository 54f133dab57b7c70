// The affinity-less loop end to end on the real testbed: the original project's Deployment `foo`
// (only the ipp-class label) plus a second class, through the real webhook, apiserver, scheduler,
// controller-manager and kwok, with the simulated provider.
import { pinnedNodeOf } from '../../src/api/pods.ts';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import { allowIsolationViolations } from './support/invariant.ts';
import { createClass, listInstances, useIppEnvironment } from './support/ipp.ts';
import { GATE, NODE_CLASS_LABEL, NODE_INSTANCE_LABEL } from '../../src/api/names.ts';
import { isDaemonSetPod } from '../../src/api/pods.ts';

const fooDeployment = (ns: string, cls: string, replicas: number) => ({
  metadata: { name: 'foo', namespace: ns, labels: { app: 'foo', 'ipp-class': cls } },
  spec: {
    replicas,
    selector: { matchLabels: { app: 'foo' } },
    template: {
      metadata: { labels: { app: 'foo', 'ipp-class': cls } },
      spec: { containers: [{ name: 'nginx', image: 'nginx:alpine' }] },
    },
  },
});

const barDeployment = (ns: string, cls: string, replicas: number) => ({
  metadata: { name: 'bar', namespace: ns },
  spec: {
    replicas,
    selector: { matchLabels: { app: 'bar' } },
    template: {
      metadata: { labels: { app: 'bar', 'ipp-class': cls } },
      spec: { containers: [{ name: 'postfix', image: 'postfix' }] },
    },
  },
});

/** The isolation invariant over the whole cluster: on every ipp node, only its class and DaemonSets. */
async function assertIsolation(c: Clients): Promise<void> {
  const nodes = (await c.core.listNode({ labelSelector: NODE_CLASS_LABEL })).items;
  const pods = (await c.core.listPodForAllNamespaces()).items;
  for (const n of nodes) {
    const cls = n.metadata!.labels![NODE_CLASS_LABEL];
    for (const p of pods.filter((x) => x.spec?.nodeName === n.metadata!.name)) {
      if (isDaemonSetPod(p)) continue;
      expect(
        p.metadata?.labels?.['ipp-class'],
        `pod ${p.metadata?.namespace}/${p.metadata?.name} on ${n.metadata!.name} (class ${cls})`,
      ).toBe(cls);
    }
  }
}

describe('provisioning with the simulated provider', () => {
  const env = useIppEnvironment('prov');
  let c: Clients;
  let ns: string;
  /** The node agents' namespace: DaemonSets are trusted on ipp nodes only from listed namespaces. */
  let agents: string;
  const { cluster } = env;
  const class0 = `class0-${suffix()}`;
  const class1 = `class1-${suffix()}`;

  beforeAll(async () => {
    ({ c, ns } = env);
    env.classes.push(class0, class1);
    await createClass(c, class0, { instanceTypes: ['sim.small'], idleTimeout: '4s', simulated: { bootDelay: '1s' } });
    await createClass(c, class1, { instanceTypes: ['sim.medium'], idleTimeout: '4s', simulated: { bootDelay: '1s' } });
    agents = await namespace(c, 'prov-agents');
    allowIsolationViolations(agents); // trusted by this controller (below), like kube-system
    await env.start({ extraArgs: [`--trusted-daemonset-namespaces=kube-system,${agents}`] });
  });
  afterAll(async () => {
    if (agents) await c.core.deleteNamespace({ name: agents }).catch(() => {});
  });

  it('gives every pod of two classes a dedicated node; DaemonSets run there; nothing else does', async () => {
    await c.apps
      .createNamespacedDaemonSet({
        namespace: agents,
        body: {
          metadata: { name: 'node-agent' },
          spec: {
            selector: { matchLabels: { app: 'node-agent' } },
            template: {
              metadata: { labels: { app: 'node-agent' } },
              spec: {
                tolerations: [{ operator: 'Exists' }],
                nodeSelector: { [NODE_CLASS_LABEL + '-e2e']: cluster },
                containers: [{ name: 'agent', image: 'busybox' }],
              },
            },
          },
        },
      })
      .catch(() => {});
    await c.apps.createNamespacedDeployment({ namespace: ns, body: fooDeployment(ns, class0, 3) });
    await c.apps.createNamespacedDeployment({ namespace: ns, body: barDeployment(ns, class1, 2) });

    const running = await eventually(
      '5 ipp pods running on dedicated nodes',
      async () => {
        const pods = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'ipp-class' })).items;
        expect(pods).toHaveLength(5);
        for (const p of pods) {
          expect(p.status?.phase, `${p.metadata?.name}: ${JSON.stringify(p.status?.conditions)}`).toBe('Running');
        }
        return pods;
      },
      90_000,
    );

    const nodes = new Map<string, V1Node>();
    for (const n of (await c.core.listNode({ labelSelector: NODE_CLASS_LABEL })).items) nodes.set(n.metadata!.name!, n);
    const used = new Set<string>();
    for (const p of running) {
      const node = nodes.get(p.spec!.nodeName!);
      expect(node, `node of ${p.metadata!.name}`).toBeDefined();
      expect(used.has(p.spec!.nodeName!), `${p.spec!.nodeName} hosts two pods`).toBe(false);
      used.add(p.spec!.nodeName!);
      expect(node!.metadata!.labels![NODE_CLASS_LABEL]).toBe(p.metadata!.labels!['ipp-class']);
      expect(node!.spec!.taints).toContainEqual({
        key: NODE_CLASS_LABEL,
        value: p.metadata!.labels!['ipp-class'],
        effect: 'NoSchedule',
      });
      // Pinned by one patch: the gate is gone and a required node affinity names the node itself.
      expect(p.spec!.schedulingGates ?? []).not.toContainEqual({ name: GATE });
      expect(pinnedNodeOf(p)).toBe(node!.metadata!.name);
      expect(p.metadata!.annotations!['ipp.dev/instance']).toBe(node!.metadata!.labels![NODE_INSTANCE_LABEL]);
    }
    const instances = await listInstances(c);
    expect(instances.filter((i) => i.spec.class === class0 && i.status?.phase === 'Ready')).toHaveLength(3);
    expect(instances.filter((i) => i.spec.class === class1 && i.status?.phase === 'Ready')).toHaveLength(2);
    await assertIsolation(c);
  });

  it('runs DaemonSet pods on ipp nodes without keeping them alive, and tears idle nodes down', async () => {
    // Label the ipp nodes so the DaemonSet (which tolerates everything) targets them.
    const nodes = (await c.core.listNode({ labelSelector: NODE_CLASS_LABEL })).items.filter((n) =>
      [class0, class1].includes(n.metadata!.labels![NODE_CLASS_LABEL]!),
    );
    expect(nodes).toHaveLength(5);
    for (const n of nodes) {
      await c.core.patchNode({
        name: n.metadata!.name!,
        body: [
          { op: 'add', path: `/metadata/labels/${(NODE_CLASS_LABEL + '-e2e').replace('/', '~1')}`, value: cluster },
        ],
      });
    }
    await eventually(
      'DaemonSet pods running on every ipp node',
      async () => {
        const ds = (await c.core.listNamespacedPod({ namespace: agents, labelSelector: 'app=node-agent' })).items;
        expect(ds.filter((p: V1Pod) => p.status?.phase === 'Running').length).toBe(nodes.length);
      },
      60_000,
    );
    await assertIsolation(c);

    await c.apps.patchNamespacedDeploymentScale({
      name: 'foo',
      namespace: ns,
      body: [{ op: 'replace', path: '/spec/replicas', value: 0 }],
    });
    await c.apps.patchNamespacedDeploymentScale({
      name: 'bar',
      namespace: ns,
      body: [{ op: 'replace', path: '/spec/replicas', value: 0 }],
    });
    await eventually(
      'every Instance and ipp node gone after idleTimeout',
      async () => {
        expect((await listInstances(c)).filter((i) => [class0, class1].includes(i.spec.class))).toEqual([]);
        const left = (await c.core.listNode({ labelSelector: NODE_CLASS_LABEL })).items.filter((n) =>
          [class0, class1].includes(n.metadata!.labels![NODE_CLASS_LABEL]!),
        );
        expect(left.map((n) => n.metadata!.name)).toEqual([]);
        // The simulated cloud holds no instance of this cluster any more.
        const cloud = (
          await c.core.listNamespacedConfigMap({ namespace: env.system, labelSelector: `ipp.dev/cluster=${cluster}` })
        ).items;
        expect(cloud.map((x) => x.metadata!.name)).toEqual([]);
      },
      90_000,
    );
  });
});
