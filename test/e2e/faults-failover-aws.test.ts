// A leader paused mid-launch (issue "Faults", problems 4 and 5), on EC2 (moto): two replicas; the
// leader's RunInstances reaches EC2 (the instance exists, tagged for its Instance) but the answer is
// held by the fault proxy, and the leader is frozen (SIGSTOP) right then, as a long GC pause or a
// stalled node would. Its lease expires, the standby takes over and adopts the instance the frozen
// leader launched, instead of launching another. Then the old leader thaws and gets its answer
// late: it must write nothing. Exactly one live EC2 instance for the Instance, and its
// status.providerID, once set, never changes (every value the Instance ever had is recorded).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import { installCrds, listInstances, metric, pointWebhookAt, type Ipp } from './support/ipp.ts';
import { closeEc2World, ec2World, type Ec2World } from './support/ec2-world.ts';

describe('a leader paused mid-launch (EC2 on moto)', () => {
  let c: Clients;
  let ns: string;
  let system: string;
  let world: Ec2World;
  let a: Ipp;
  let b: Ipp;
  const cluster = `pause-${suffix()}`;
  const cls = `pause-${suffix()}`;

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'pause');
    system = await namespace(c, 'ipp-system');
    world = await ec2World();
    const common = { clients: c, clusterName: cluster, namespace: system, leaderElect: true };
    a = await world.start({ ...common, identity: 'ipp-a' });
    await eventually('ipp-a leads', async () => expect(await metric(a, 'ipp_leader', { identity: 'ipp-a' })).toBe(1));
    b = await world.start({ ...common, identity: 'ipp-b', installWebhookConfiguration: false });
  });

  afterAll(async () => {
    if (a?.process.pid && a.process.exitCode === null) a.process.kill('SIGCONT');
    await a?.stop();
    await b?.stop();
    await closeEc2World(c, world, { cluster, namespaces: [ns, system], classes: [cls] });
  });

  it('one EC2 instance, adopted by the new leader; the providerID never rewritten by the old one', async () => {
    await world.awsClass(c, cls);
    // Admission keeps working while ipp-a is frozen: the webhook goes to ipp-b.
    await pointWebhookAt(c, cluster, b);
    // The launch takes effect in EC2 at once; its answer reaches the leader 25 s later.
    world.proxy.inject({ action: 'RunInstances', holdMs: 25_000, times: 1 });
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'relay', labels: { 'ipp-class': cls } },
        spec: { containers: [{ name: 'main', image: 'postfix' }] },
      },
    });
    const launched = await eventually(
      'the leader launched (EC2 has the instance)',
      async () => {
        const live = await world.live({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls });
        expect(live).toHaveLength(1);
        return live[0]!;
      },
      60_000,
      100,
    );
    a.process.kill('SIGSTOP');
    const [inst] = await listInstances(c, cls);
    const name = inst!.metadata.name!;

    // Every providerID the Instance ever shows, from now until the end.
    const seen: (string | undefined)[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const [now] = (await listInstances(c, cls)).filter((i) => i.metadata.name === name);
        const id = now?.status?.providerID;
        if (seen.at(-1) !== id) seen.push(id);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    await eventually(
      'ipp-b leads and records the instance ipp-a launched',
      async () => {
        expect(await metric(b, 'ipp_leader', { identity: 'ipp-b' })).toBe(1);
        const [now] = await listInstances(c, cls);
        expect(now?.status?.providerID).toBe(`aws:///${launched.Placement!.AvailabilityZone}/${launched.InstanceId}`);
      },
      60_000,
    );
    a.process.kill('SIGCONT');
    // The old leader thaws, gets its late answer, finds it no longer leads, and exits.
    await eventually(
      'ipp-a exits',
      async () => expect(a.process.exitCode ?? a.process.signalCode).not.toBeNull(),
      60_000,
    );
    await new Promise((r) => setTimeout(r, 3_000));
    watching = false;
    await watch;

    const live = await world.live({ 'ipp.dev/cluster': cluster, 'ipp.dev/instance': name });
    expect(live.map((i) => i.InstanceId)).toEqual([launched.InstanceId]);
    const ids = seen.filter((x) => x !== undefined);
    expect(new Set(ids).size, `providerIDs seen: ${JSON.stringify(seen)}`).toBe(1);
    console.log(`paused leader: providerID values seen ${JSON.stringify(seen)}; live instances ${live.length}`);
    await c.core.deleteNamespacedPod({ name: 'relay', namespace: ns });
  });
});
