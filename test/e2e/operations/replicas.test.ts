// Two replicas of the real controller (separate processes, leader election on a Lease with
// client-go's 15 s / 10 s / 2 s) on the real testbed, in bind placement mode: only the leader
// reconciles; SIGKILL of the leader in the middle of provisioning → the standby takes over within
// the lease duration and nothing is provisioned twice; SIGTERM → the lease is released and the
// standby leads within seconds. Both replicas serve the webhook; the configuration points at one.
import { CoordinationV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, NODE_INSTANCE_LABEL, POD_INSTANCE_ANNOTATION, VERSION } from '../../../src/api/names.ts';
import { clients, eventually, namespace, suffix, type Clients } from '../support/cluster.ts';
import {
  createClass,
  deleteClasses,
  installCrds,
  listInstances,
  metric,
  pointWebhookAt,
  removeWebhookConfiguration,
  startIpp,
  type Ipp,
} from '../support/ipp.ts';
import { cloudInstances, expectEvent, ippEvents, ippPod, logLines } from './helpers.ts';

const LEASE_MS = 15_000;
const RETRY_MS = 2_000;
const LEASE_NAME = 'ipp-controller';

describe('two controller replicas', () => {
  let c: Clients;
  let ns: string;
  let system: string;
  const cluster = `ha-${suffix()}`;
  const cls = `ha-${suffix()}`;
  const replicas = new Map<string, Ipp>();
  /** The replica leading / standing by, as the tests hand over. */
  let leader: { id: string; ipp: Ipp };
  let standby: { id: string; ipp: Ipp };

  const start = async (id: string, installWebhookConfiguration: boolean) => {
    const ipp = await startIpp({
      clients: c,
      clusterName: cluster,
      namespace: system,
      placement: 'bind',
      leaderElect: true,
      identity: id,
      installWebhookConfiguration,
    });
    replicas.set(id, ipp);
    return ipp;
  };
  const leads = async (r: { id: string; ipp: Ipp }) => metric(r.ipp, 'ipp_leader', { identity: r.id });
  const lease = async () =>
    (await c.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: LEASE_NAME, namespace: system })).spec!;
  const podsOf = async (prefix: string) =>
    (await c.core.listNamespacedPod({ namespace: ns })).items.filter((p) => p.metadata!.name!.startsWith(prefix));
  const createPods = async (prefix: string, n: number) => {
    for (let i = 0; i < n; i++)
      await c.core.createNamespacedPod({ namespace: ns, body: ippPod(`${prefix}-${i}`, cls) });
  };
  const allRunning = (prefix: string, n: number) =>
    eventually(
      `${n} ${prefix} pods bound and running`,
      async () => {
        const pods = await podsOf(prefix);
        expect(pods).toHaveLength(n);
        for (const p of pods) expect(p.status?.phase, `${p.metadata!.name} on ${p.spec?.nodeName}`).toBe('Running');
        return pods;
      },
      90_000,
    );

  /**
   * Nothing provisioned twice: one Instance per pod, one node per Instance, one cloud instance per
   * Instance, and every pod on the node of the Instance it claims.
   */
  async function assertOneInstancePerPod(pods: V1Pod[]) {
    const instances = await listInstances(c, cls);
    expect(instances).toHaveLength(pods.length);
    const byName = new Map(instances.map((i) => [i.metadata.name!, i]));
    const nodes = new Set<string>();
    for (const p of pods) {
      const claimed = p.metadata?.annotations?.[POD_INSTANCE_ANNOTATION];
      expect(claimed, `${p.metadata!.name} claims an Instance`).toBeDefined();
      const inst = byName.get(claimed!);
      expect(inst, `Instance ${claimed} of ${p.metadata!.name}`).toBeDefined();
      expect(inst!.status?.nodeName).toBe(p.spec!.nodeName);
      const node = await c.core.readNode({ name: p.spec!.nodeName! });
      expect(node.metadata!.labels![NODE_INSTANCE_LABEL]).toBe(claimed);
      nodes.add(p.spec!.nodeName!);
    }
    expect(nodes.size).toBe(pods.length);
    const cloud = await cloudInstances(c, system, cluster, cls);
    expect(cloud.map((x) => x.instance).sort()).toEqual([...byName.keys()].sort());
    // Nothing had to be cleaned up either: no leaked cloud instance, no Instance torn down.
    expect(
      (await ippEvents(c, 'default')).filter((e) => byName.has(e.regarding!.name!) && e.reason === 'Terminated'),
    ).toEqual([]);
  }

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'ha');
    system = await namespace(c, 'ipp-ha');
    // A boot long enough that the SIGKILL below lands while instances are launching.
    await createClass(c, cls, { instanceTypes: ['sim.small'], idleTimeout: '10m', simulated: { bootDelay: '6s' } });
    // a installs the webhook configuration; b serves the webhook too, but leaves it pointing at a.
    await start('ipp-a', true);
    await start('ipp-b', false);
  });

  afterAll(async () => {
    // Let the surviving leader tear its instances down, so no Instance outlives this file.
    await c.core.deleteCollectionNamespacedPod({ namespace: ns, gracePeriodSeconds: 0 }).catch(() => {});
    await c.custom
      .patchClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'instanceclasses',
        name: cls,
        body: [{ op: 'replace', path: '/spec/idleTimeout', value: '1s' }],
      })
      .catch(() => {});
    await eventually(
      'Instances of the class torn down',
      async () => expect(await listInstances(c, cls)).toEqual([]),
      60_000,
    ).catch(() => {});
    for (const r of replicas.values()) await r.stop();
    await removeWebhookConfiguration(c, cluster);
    await c.core.deleteNamespace({ name: ns }).catch(() => {});
    await c.core.deleteNamespace({ name: system }).catch(() => {});
    await deleteClasses(c, [cls]);
  });

  it('elects one leader, and only the leader reconciles', async () => {
    const [a, b] = [
      { id: 'ipp-a', ipp: replicas.get('ipp-a')! },
      { id: 'ipp-b', ipp: replicas.get('ipp-b')! },
    ];
    [leader, standby] = await eventually(
      'exactly one replica reports ipp_leader 1',
      async () => {
        const [la, lb] = [await leads(a), await leads(b)];
        expect([la, lb].sort()).toEqual([0, 1]);
        return la === 1 ? [a, b] : [b, a];
      },
      30_000,
    );
    expect((await lease()).holderIdentity).toBe(leader.id);

    await createPods('first', 2);
    const pods = await allRunning('first', 2);
    await assertOneInstancePerPod(pods);
    for (const p of pods) {
      const bound = await expectEvent(c, {
        namespace: ns,
        kind: 'Pod',
        name: p.metadata!.name!,
        reason: 'Bound',
        type: 'Normal',
      });
      expect(bound.reportingInstance).toBe(leader.id);
    }
    // Every Event of ours, about pods and Instances alike, came from the leader.
    const ours = [
      ...(await ippEvents(c, ns)),
      ...(await ippEvents(c, 'default')).filter((e) => e.regarding?.kind === 'Instance'),
    ];
    expect(ours.length).toBeGreaterThan(0);
    expect(ours.filter((e) => e.reportingInstance === standby.id)).toEqual([]);

    // The standby has caches and a webhook, but has not reconciled anything.
    expect(logLines(leader.ipp).some((l) => l.msg === 'leading: reconciling')).toBe(true);
    expect(logLines(standby.ipp).some((l) => l.msg === 'leading: reconciling')).toBe(false);
    expect(
      logLines(standby.ipp).filter((l) => l.msg === 'pod given an instance' || l.msg === 'instance launched'),
    ).toEqual([]);
    expect(await metric(standby.ipp, 'ipp_reconcile_total')).toBeUndefined();
    expect(await metric(leader.ipp, 'ipp_reconcile_total', { controller: 'provisioning' })).toBeGreaterThan(0);
    expect(await leads(standby)).toBe(0);
  });

  it('SIGKILL of the leader mid-provisioning: the standby takes over within the lease duration, nothing provisioned twice', async () => {
    await createPods('second', 3);
    // The leader has begun: at least one Instance written for the new pods, none of them bound yet.
    await eventually(
      'the leader to start provisioning the new pods',
      async () => {
        const claimed = (await podsOf('second')).filter((p) => p.metadata?.annotations?.[POD_INSTANCE_ANNOTATION]);
        expect(claimed.length).toBeGreaterThan(0);
        expect((await listInstances(c, cls)).length).toBeGreaterThan(2);
      },
      30_000,
      100,
    );
    expect((await podsOf('second')).filter((p) => p.spec?.nodeName)).toEqual([]);

    // In a cluster the webhook Service stops routing to a dead pod; here the configuration names one
    // replica, so it moves to the survivor first (the bindings of the new leader pass through it).
    await pointWebhookAt(c, cluster, standby.ipp);
    const killedAt = Date.now();
    await leader.ipp.kill();
    await eventually('the standby to lead', async () => expect(await leads(standby)).toBe(1), LEASE_MS + 10_000, 100);
    const takeoverMs = Date.now() - killedAt;
    console.log(`takeover after SIGKILL of ${leader.id}: ${takeoverMs} ms`);
    // Nobody released the lease: the standby waited for it to expire, counted from the last renewal
    // it saw (at most one retry period, ×1.2 jitter, before the kill), plus one retry to notice.
    expect(takeoverMs).toBeLessThanOrEqual(LEASE_MS + 2 * 1.2 * RETRY_MS + 1_000);
    expect(takeoverMs).toBeGreaterThanOrEqual(LEASE_MS - 1.2 * RETRY_MS - 1_000);
    expect((await lease()).holderIdentity).toBe(standby.id);
    [leader, standby] = [standby, leader];

    const pods = await allRunning('second', 3);
    await assertOneInstancePerPod([...(await podsOf('first')), ...pods]);
    expect(await metric(leader.ipp, 'ipp_leaked_instances_collected_total')).toBeUndefined();
    // The new leader finished what the old one began: some of the bindings are its own.
    const bound = await Promise.all(
      pods.map((p) => expectEvent(c, { namespace: ns, kind: 'Pod', name: p.metadata!.name!, reason: 'Bound' })),
    );
    expect(bound.map((e) => e.reportingInstance)).toEqual(pods.map(() => leader.id));
  });

  it('SIGTERM of the leader releases the lease: the standby leads within seconds', async () => {
    // The killed replica comes back, as a Deployment would restart it, and becomes the standby; the
    // webhook configuration moves to it so that admission outlives the leader's shutdown.
    const restarted = { id: 'ipp-c', ipp: await start('ipp-c', false) };
    await pointWebhookAt(c, cluster, restarted.ipp);
    standby = restarted;
    await eventually('the restarted replica to stand by', async () => expect(await leads(standby)).toBe(0), 10_000);
    const before = await lease();
    expect(before.holderIdentity).toBe(leader.id);

    const stoppedAt = Date.now();
    const stopping = leader.ipp.stop();
    await eventually('the standby to lead', async () => expect(await leads(standby)).toBe(1), LEASE_MS + 10_000, 100);
    const handoverMs = Date.now() - stoppedAt;
    console.log(`handover after SIGTERM of ${leader.id}: ${handoverMs} ms`);
    await stopping;
    expect(leader.ipp.process.exitCode).toBe(0);
    expect(logLines(leader.ipp).some((l) => l.msg === 'released lease')).toBe(true);
    // Well under the 15 s a crash costs: one retry period after the release.
    expect(handoverMs).toBeLessThan(LEASE_MS - 5_000);
    const after = await lease();
    expect(after.holderIdentity).toBe(standby.id);
    expect(after.leaseTransitions).toBe((before.leaseTransitions ?? 0) + 1);
    [leader, standby] = [standby, leader];

    // The new leader provisions.
    await createPods('third', 1);
    const pods = await allRunning('third', 1);
    const bound = await expectEvent(c, { namespace: ns, kind: 'Pod', name: pods[0]!.metadata!.name!, reason: 'Bound' });
    expect(bound.reportingInstance).toBe(leader.id);
    await assertOneInstancePerPod([...(await podsOf('first')), ...(await podsOf('second')), ...pods]);
  });
});
