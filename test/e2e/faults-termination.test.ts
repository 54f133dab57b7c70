// Out-of-band termination on the simulated cloud (issue "Faults"): a cloud instance terminated behind
// ipp's back is noticed from its Node within seconds, by asking the cloud about that one instance,
// not by the garbage collector's poll (set to ten minutes here, so only the fast path can pass) nor
// after repairAfter (ten minutes by default). The pod that ran there is replaced onto a fresh
// instance by its ReplicaSet. The same on EC2 (moto), with the Node turned NotReady as a dead
// kubelet leaves it, is in faults-termination-aws.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, suffix, type Clients } from './support/cluster.ts';
import { createClass, listInstances, useIppEnvironment } from './support/ipp.ts';
import { cloudInstances, expectEvent } from './operations/helpers.ts';

describe('out-of-band termination (simulated cloud)', () => {
  const env = useIppEnvironment('oob');
  let c: Clients;
  let ns: string;

  beforeAll(async () => {
    ({ c, ns } = env);
    await env.start({ extraArgs: ['--gc-interval=10m'] });
  });

  const podsOf = async (app: string) =>
    (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items.filter(
      (p) => !p.metadata!.deletionTimestamp,
    );

  it('an instance terminated outside ipp is replaced within seconds, and its pod recreated on a fresh one', async () => {
    const cls = `oob-${suffix()}`;
    env.classes.push(cls);
    await createClass(c, cls, { instanceTypes: ['sim.small'], idleTimeout: '10m', simulated: { bootDelay: '500ms' } });
    await c.apps.createNamespacedReplicaSet({
      namespace: ns,
      body: {
        metadata: { name: 'relay' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'relay' } },
          template: {
            metadata: { labels: { app: 'relay', 'ipp-class': cls } },
            spec: { containers: [{ name: 'main', image: 'postfix' }] },
          },
        },
      },
    });
    const first = await eventually(
      'the relay pod Running',
      async () => {
        const [p] = await podsOf('relay');
        expect(p?.status?.phase).toBe('Running');
        return p!;
      },
      90_000,
    );
    const [inst] = await listInstances(c, cls);
    const [cloud] = await cloudInstances(c, env.system, env.cluster, cls);
    expect(cloud?.instance).toBe(inst!.metadata.name);

    // Terminated behind ipp's back: the simulated cloud's node-lifecycle then deletes its Node.
    const terminatedAt = Date.now();
    await c.core.deleteNamespacedConfigMap({ name: cloud!.id, namespace: env.system });

    await eventually(
      'the Instance torn down and the pod replaced by one Running on a fresh instance',
      async () => {
        const instances = await listInstances(c, cls);
        expect(instances.map((i) => i.metadata.name)).not.toContain(inst!.metadata.name);
        const pods = await podsOf('relay');
        expect(pods.map((p) => p.metadata!.uid)).not.toContain(first.metadata!.uid);
        expect(pods[0]?.status?.phase).toBe('Running');
        expect(pods[0]!.spec!.nodeName).not.toBe(first.spec!.nodeName);
      },
      45_000,
      500,
    );
    const tookMs = Date.now() - terminatedAt;
    // GC runs every ten minutes and repairAfter is ten minutes: only the direct check could do this.
    expect(tookMs).toBeLessThan(45_000);
    const told = await expectEvent(c, {
      namespace: ns,
      kind: 'Pod',
      name: first.metadata!.name!,
      reason: 'InstanceTerminated',
    });
    expect(told.type).toBe('Warning');
    expect(told.note).toContain('outside ipp');
    await expectEvent(c, {
      namespace: 'default',
      kind: 'Instance',
      name: inst!.metadata.name!,
      reason: 'InstanceTerminated',
    });
    console.log(`out-of-band termination: pod replaced and Running ${tookMs} ms after the cloud instance was deleted`);
    await c.apps.deleteNamespacedReplicaSet({ name: 'relay', namespace: ns });
  });
});
