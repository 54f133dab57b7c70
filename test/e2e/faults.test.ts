// Faults the controller must survive without destroying what it cannot see (issue "Faults"): a Node
// deleted under a running pod, and a pinned pod the scheduler can never place on its node.
import { EventsV1Api, type V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, suffix, type Clients } from './support/cluster.ts';
import { createClass, listInstances, useIppEnvironment } from './support/ipp.ts';
import { INSTANCE_AVAILABLE } from '../../src/controllers/provisioning/condition.ts';
import { pinnedNodeOf } from '../../src/api/pods.ts';
import type { InstanceClassSpec } from '../../src/api/types.ts';

const pod = (name: string, cls: string, extra: Partial<V1Pod['spec']> = {}): V1Pod => ({
  metadata: { name, labels: { 'ipp-class': cls } },
  spec: { containers: [{ name: 'main', image: 'postfix' }], ...extra },
});

describe('faults', () => {
  const env = useIppEnvironment('faults');
  let c: Clients;
  let ns: string;
  const newClass = async (prefix: string, spec: Partial<InstanceClassSpec>) => {
    const name = `${prefix}-${suffix()}`;
    await createClass(c, name, { instanceTypes: ['sim.small'], simulated: { bootDelay: '500ms' }, ...spec });
    env.classes.push(name);
    return name;
  };

  beforeAll(async () => {
    ({ c, ns } = env);
    await env.start({ extraArgs: ['--stranded-after', '5s'] });
  });

  it('a Node deleted under a running pod (it re-registers): the pod and its instance survive', async () => {
    // A short registrationTimeout: a controller that mistakes the missing node for a registration
    // failure replaces the instance at once.
    const cls = await newClass('blink', { registrationTimeout: '5s', idleTimeout: '10m' });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('relay', cls) });
    const running = await eventually(
      'relay Running',
      async () => {
        const p = await c.core.readNamespacedPod({ name: 'relay', namespace: ns });
        expect(p.status?.phase).toBe('Running');
        return p;
      },
      60_000,
    );
    const [inst] = await listInstances(c, cls);
    await new Promise((r) => setTimeout(r, 6_000)); // past registrationTimeout
    await c.core.deleteNode({ name: running.spec!.nodeName! });

    // Watch for a while: the node comes back (its kubelet re-registers), nothing is torn down.
    const until = Date.now() + 15_000;
    while (Date.now() < until) {
      const instances = await listInstances(c, cls);
      expect(instances.map((i) => [i.metadata.uid, !!i.metadata.deletionTimestamp])).toEqual([
        [inst!.metadata.uid, false],
      ]);
      const p = await c.core.readNamespacedPod({ name: 'relay', namespace: ns });
      expect(p.metadata!.uid).toBe(running.metadata!.uid);
      expect(p.metadata!.deletionTimestamp).toBeUndefined();
      await new Promise((r) => setTimeout(r, 1_000));
    }
    await c.core.readNode({ name: running.spec!.nodeName! });
  });

  it('a pinned pod the scheduler cannot place on its node is told so, and deleted when a controller recreates it', async () => {
    const cls = await newClass('unfit', {});
    // Its own node affinity excludes every node: the pin adds the node's name, the scheduler still says no.
    const impossible = {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone-e2e', operator: 'In', values: ['mars'] }] }],
          },
        },
      },
    };
    await c.core.createNamespacedPod({ namespace: ns, body: pod('bare', cls, impossible) });
    await c.apps.createNamespacedReplicaSet({
      namespace: ns,
      body: {
        metadata: { name: 'owned' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'owned' } },
          template: { metadata: { labels: { app: 'owned', 'ipp-class': cls } }, spec: pod('x', cls, impossible).spec! },
        },
      },
    });
    const firstOwned = await eventually(
      'the ReplicaSet pod pinned and unschedulable',
      async () => {
        const [p] = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=owned' })).items;
        expect(pinnedNodeOf(p!)).toBeDefined();
        expect(p!.status?.conditions?.find((x) => x.type === 'PodScheduled')?.reason).toBe('Unschedulable');
        return p!;
      },
      60_000,
    );
    await eventually(
      'the stranded ReplicaSet pod deleted (and recreated by its controller), the bare pod told',
      async () => {
        const owned = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=owned' })).items;
        expect(owned.map((p) => p.metadata!.uid)).not.toContain(firstOwned.metadata!.uid);
        const events = (await c.kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns })).items;
        const stranded = events.filter((e) => e.reason === 'Stranded').map((e) => e.regarding?.name);
        expect(stranded).toContain('bare');
        expect(stranded).toContain(firstOwned.metadata!.name);
        const note = events.find((e) => e.reason === 'Stranded' && e.regarding?.name === 'bare')!.note!;
        expect(note).toContain("didn't match Pod's node affinity");
        // The bare pod is left for its owner: no controller would bring it back. It says why on itself.
        const bare = await c.core.readNamespacedPod({ name: 'bare', namespace: ns });
        expect(bare.status?.conditions?.find((x) => x.type === INSTANCE_AVAILABLE)).toMatchObject({
          status: 'False',
          reason: 'Stranded',
          message: expect.stringContaining("didn't match Pod's node affinity"),
        });
      },
      60_000,
    );
    await c.apps.deleteNamespacedReplicaSet({ name: 'owned', namespace: ns });
  });
});
