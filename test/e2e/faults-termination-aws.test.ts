// Out-of-band termination on EC2 (moto) (issue "Faults"): someone terminates the instance in the
// console, its kubelet goes silent and the Node turns Unknown. ipp asks EC2 about that one instance
// at once and, told it is terminated, tears the Instance down and deletes the dead pod, so that its
// ReplicaSet recreates it onto a fresh instance, within seconds: not after repairAfter (ten minutes)
// and not from the garbage collector's poll (ten minutes here). A node that turns Unknown while
// EC2 says its instance runs keeps the grace.
import { TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_INSTANCE_LABEL } from '../../src/api/names.ts';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import { installCrds, listInstances, type Ipp } from './support/ipp.ts';
import { closeEc2World, ec2World, type Ec2World } from './support/ec2-world.ts';
import { expectEvent } from './operations/helpers.ts';

describe('out-of-band termination (EC2 on moto)', () => {
  let c: Clients;
  let ns: string;
  let system: string;
  let world: Ec2World;
  let ipp: Ipp;
  const cluster = `oobaws-${suffix()}`;
  const classes: string[] = [];

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'oobaws');
    system = await namespace(c, 'ipp-system');
    world = await ec2World();
    ipp = await world.start({ clients: c, clusterName: cluster, namespace: system, extraArgs: ['--gc-interval=10m'] });
  });

  afterAll(async () => {
    await ipp?.stop();
    await closeEc2World(c, world, { cluster, namespaces: [ns, system], classes: classes });
  });

  const podsOf = async (app: string) =>
    (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items.filter(
      (p) => !p.metadata!.deletionTimestamp,
    );
  const replicaSet = (name: string, cls: string) =>
    c.apps.createNamespacedReplicaSet({
      namespace: ns,
      body: {
        metadata: { name },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name, 'ipp-class': cls } },
            spec: { containers: [{ name: 'main', image: 'postfix' }] },
          },
        },
      },
    });
  /** The pod of `app` Running on a node the test joined for its Instance's EC2 instance. */
  const runningOnJoinedNode = async (app: string, cls: string) => {
    const inst = await eventually('the Instance launched', async () => {
      const all = (await listInstances(c, cls)).filter((i) => !i.metadata.deletionTimestamp && i.status?.providerID);
      expect(all).toHaveLength(1);
      return all[0]!;
    });
    const [i] = await world.live({ 'ipp.dev/cluster': cluster, 'ipp.dev/instance': inst.metadata.name! });
    const node = await world.join(c, i!);
    const pod = await eventually(
      `the ${app} pod Running on ${node}`,
      async () => {
        const [p] = await podsOf(app);
        expect(p?.spec?.nodeName).toBe(node);
        expect(p?.status?.phase).toBe('Running');
        return p!;
      },
      60_000,
    );
    return { inst, instanceId: i!.InstanceId!, node, pod };
  };

  it('an instance terminated in the console is replaced within seconds of its node turning Unknown', async () => {
    const cls = `oob-${suffix()}`;
    classes.push(cls);
    await world.awsClass(c, cls);
    await replicaSet('relay', cls);
    const first = await runningOnJoinedNode('relay', cls);

    await world.moto.send(new TerminateInstancesCommand({ InstanceIds: [first.instanceId] }));
    const diedAt = Date.now();
    await world.kill(c, first.node);

    await eventually(
      'the Instance torn down, the dead pod deleted and recreated onto a new Instance',
      async () => {
        const instances = await listInstances(c, cls);
        expect(instances.map((i) => i.metadata.name)).not.toContain(first.inst.metadata.name);
        const [p] = await podsOf('relay');
        expect(p).toBeDefined();
        expect(p!.metadata!.uid).not.toBe(first.pod.metadata!.uid);
        expect(p!.metadata!.annotations?.[NODE_INSTANCE_LABEL]).toBeDefined();
        expect(p!.metadata!.annotations?.[NODE_INSTANCE_LABEL]).not.toBe(first.inst.metadata.name);
      },
      45_000,
      500,
    );
    const tookMs = Date.now() - diedAt;
    expect(tookMs).toBeLessThan(45_000);
    console.log(
      `EC2 out-of-band termination: dead pod replaced by a new claim ${tookMs} ms after its node turned Unknown`,
    );
    const told = await expectEvent(c, {
      namespace: ns,
      kind: 'Pod',
      name: first.pod.metadata!.name!,
      reason: 'InstanceTerminated',
    });
    expect(told.note).toContain(first.instanceId);
    // The dead node is gone; the replacement runs once its instance joins.
    await expect(c.core.readNode({ name: first.node })).rejects.toThrow();
    await runningOnJoinedNode('relay', cls);
    await c.apps.deleteNamespacedReplicaSet({ name: 'relay', namespace: ns });
  });

  it('a node that turns Unknown while EC2 says its instance runs keeps the repairAfter grace', async () => {
    const cls = `grace-${suffix()}`;
    classes.push(cls);
    await world.awsClass(c, cls);
    await replicaSet('steady', cls);
    const first = await runningOnJoinedNode('steady', cls);
    const describesBefore = world.proxy.count('DescribeInstances');
    await world.kill(c, first.node);
    // Asked at once, and then left alone: the pod and its instance stay.
    await eventually('EC2 asked about the instance', async () =>
      expect(world.proxy.count('DescribeInstances')).toBeGreaterThan(describesBefore),
    );
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const [inst] = await listInstances(c, cls);
      expect(inst?.metadata.uid).toBe(first.inst.metadata.uid);
      expect(inst?.metadata.deletionTimestamp).toBeUndefined();
      const [p] = await podsOf('steady');
      expect(p?.metadata!.uid).toBe(first.pod.metadata!.uid);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    expect((await world.live({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls })).map((i) => i.InstanceId)).toEqual([
      first.instanceId,
    ]);
    await c.apps.deleteNamespacedReplicaSet({ name: 'steady', namespace: ns });
  });
});
