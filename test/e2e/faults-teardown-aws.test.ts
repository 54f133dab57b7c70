// A teardown wave on EC2 (moto) (issue "Faults", problem 6): each Instance torn down looks for copies
// of its instance with DescribeInstances filtered by its own tag or by id, never with a paginated
// DescribeInstances of the whole cluster per Instance. Garbage collection, which does list the
// cluster, runs every ten minutes here, so any cluster-wide describe in the wave is a teardown's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxiedRequest } from '../testbed/ec2-fault-proxy.ts';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import { installCrds, listInstances, type Ipp } from './support/ipp.ts';
import { closeEc2World, ec2World, type Ec2World } from './support/ec2-world.ts';

const WAVE = 4;

/** Does this DescribeInstances ask about particular Instances (by id, Instance tag or launch group)? */
const targeted = (r: ProxiedRequest) => {
  const keys = [...r.params.keys()];
  if (keys.some((k) => k.startsWith('InstanceId.'))) return true;
  const names = keys.filter((k) => /^Filter\.\d+\.Name$/.test(k)).map((k) => r.params.get(k));
  return names.includes('tag:ipp.dev/instance') || names.includes('tag:ipp.dev/launch-group');
};

describe('a teardown wave on EC2', () => {
  let c: Clients;
  let ns: string;
  let system: string;
  let world: Ec2World;
  let ipp: Ipp;
  const cluster = `ec2wave-${suffix()}`;
  const cls = `wave-${suffix()}`;

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'ec2wave');
    system = await namespace(c, 'ipp-system');
    world = await ec2World();
    ipp = await world.start({ clients: c, clusterName: cluster, namespace: system, extraArgs: ['--gc-interval=10m'] });
  });

  afterAll(async () => {
    await ipp?.stop();
    await closeEc2World(c, world, { cluster, namespaces: [ns, system], classes: [cls] });
  });

  it(`${WAVE} Instances torn down at once: no DescribeInstances of the whole cluster`, async () => {
    await world.awsClass(c, cls, { idleTimeout: '3s' });
    await c.apps.createNamespacedReplicaSet({
      namespace: ns,
      body: {
        metadata: { name: 'wave' },
        spec: {
          replicas: WAVE,
          selector: { matchLabels: { app: 'wave' } },
          template: {
            metadata: { labels: { app: 'wave', 'ipp-class': cls } },
            spec: { containers: [{ name: 'main', image: 'postfix' }] },
          },
        },
      },
    });
    const launched = await eventually(
      `${WAVE} instances launched`,
      async () => {
        const live = await world.live({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls });
        expect(live).toHaveLength(WAVE);
        return live;
      },
      90_000,
    );
    for (const i of launched) await world.join(c, i);
    await eventually(
      `${WAVE} pods Running`,
      async () => {
        const pods = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=wave' })).items;
        expect(pods.filter((p) => p.status?.phase === 'Running')).toHaveLength(WAVE);
      },
      90_000,
    );
    const before = world.proxy.requests.length;
    await c.apps.deleteNamespacedReplicaSet({ name: 'wave', namespace: ns });
    await eventually(
      'every Instance torn down and its EC2 instance terminated',
      async () => {
        expect(await listInstances(c, cls)).toEqual([]);
        expect(await world.live({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls })).toEqual([]);
      },
      90_000,
    );
    const describes = world.proxy.requests.slice(before).filter((r) => r.action === 'DescribeInstances');
    const wholeCluster = describes.filter((r) => !targeted(r));
    console.log(
      `EC2 teardown wave of ${WAVE}: ${describes.length} DescribeInstances, ${wholeCluster.length} of the whole cluster`,
    );
    expect(describes.length).toBeGreaterThan(0);
    expect(wholeCluster).toEqual([]);
  });
});
