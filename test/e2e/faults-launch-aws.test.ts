// Exactly one live cloud instance per Instance across a lost launch answer, a class edit and a new
// controller process (issue "Faults", problem 5), on EC2 (moto): the first RunInstances takes effect
// but its answer never arrives (the controller is killed while the proxy holds it); the class is then
// edited so that a fresh launch would pick another instance type (another ClientToken); a new
// process takes over. It must find the instance by its Instance's tag and adopt it, because neither
// the token nor any process-local state (offering, grouping) can tell it about the first one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION } from '../../src/api/names.ts';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import { installCrds, listInstances, type Ipp } from './support/ipp.ts';
import { closeEc2World, ec2World, type Ec2World } from './support/ec2-world.ts';

describe('a launch retried after a class edit and a new controller process (EC2 on moto)', () => {
  let c: Clients;
  let ns: string;
  let system: string;
  let world: Ec2World;
  let ipp: Ipp;
  const cluster = `relaunch-${suffix()}`;
  const cls = `relaunch-${suffix()}`;
  const start = () => world.start({ clients: c, clusterName: cluster, namespace: system });

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'relaunch');
    system = await namespace(c, 'ipp-system');
    world = await ec2World();
    ipp = await start();
  });

  afterAll(async () => {
    await ipp?.stop();
    await closeEc2World(c, world, { cluster, namespaces: [ns, system], classes: [cls] });
  });

  it('one live EC2 instance for the Instance, the first one, adopted', async () => {
    await world.awsClass(c, cls, { instanceTypes: ['m5.metal'] });
    world.proxy.inject({ action: 'RunInstances', holdMs: 120_000, times: 1 });
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'relay', labels: { 'ipp-class': cls } },
        spec: { containers: [{ name: 'main', image: 'postfix' }] },
      },
    });
    const first = await eventually(
      'the first launch took effect in EC2',
      async () => {
        const live = await world.live({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls });
        expect(live).toHaveLength(1);
        return live[0]!;
      },
      60_000,
      100,
    );
    await ipp.kill();
    const [inst] = await listInstances(c, cls);
    expect(inst!.status?.providerID).toBeUndefined();
    // A fresh launch would now try c5.metal first: another offering, another ClientToken.
    await c.custom.patchClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'instanceclasses',
      name: cls,
      body: [{ op: 'replace', path: '/spec/instanceTypes', value: ['c5.metal', 'm5.metal'] }],
    });
    ipp = await start();
    await eventually(
      'the Instance records the first instance',
      async () => {
        const [now] = await listInstances(c, cls);
        expect(now?.metadata.uid).toBe(inst!.metadata.uid);
        expect(now?.status?.providerID).toBe(`aws:///${first.Placement!.AvailabilityZone}/${first.InstanceId}`);
      },
      60_000,
    );
    await new Promise((r) => setTimeout(r, 3_000));
    const live = await world.live({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls });
    expect(live.map((i) => [i.InstanceId, i.InstanceType])).toEqual([[first.InstanceId, 'm5.metal']]);
    await c.core.deleteNamespacedPod({ name: 'relay', namespace: ns });
  });
});
