// Instance lifecycle decisions on the real testbed: Class isolation packing, reuse of idle
// instances (same class only), capacity fallback, and API-server validation of InstanceClass.
import { EventsV1Api, type V1Pod } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, suffix, type Clients } from './support/cluster.ts';
import { createClass, getClass, listInstances, metric, useIppEnvironment } from './support/ipp.ts';
import { API_VERSION, GROUP, NODE_CLASS_LABEL, VERSION } from '../../src/api/names.ts';
import { claimOf } from '../../src/api/pods.ts';
import type { InstanceClassSpec } from '../../src/api/types.ts';

const pod = (name: string, cls: string, cpu = '100m'): V1Pod => ({
  metadata: { name, labels: { 'ipp-class': cls } },
  spec: { containers: [{ name: 'main', image: 'busybox', resources: { requests: { cpu, memory: '64Mi' } } }] },
});

async function running(c: Clients, ns: string, name: string): Promise<V1Pod> {
  return eventually(
    `pod ${name} running`,
    async () => {
      const p = await c.core.readNamespacedPod({ name, namespace: ns });
      expect(p.status?.phase).toBe('Running');
      return p;
    },
    60_000,
  );
}

describe('instance lifecycle', () => {
  const env = useIppEnvironment('life');
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
    await env.start();
  });

  it('Class isolation packs pods of one class onto shared instances up to their capacity', async () => {
    // sim.small has 2 CPUs: three 600m pods fit, a fourth does not.
    const cls = await newClass('packed', { isolation: 'Class' });
    for (let i = 0; i < 5; i++)
      await c.core.createNamespacedPod({ namespace: ns, body: pod(`packed-${i}`, cls, '600m') });
    const pods = await eventually(
      '5 packed pods running',
      async () => {
        const list = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `ipp-class=${cls}` })).items;
        expect(list.filter((p) => p.status?.phase === 'Running')).toHaveLength(5);
        return list;
      },
      90_000,
    );
    const perNode = new Map<string, number>();
    for (const p of pods) perNode.set(p.spec!.nodeName!, (perNode.get(p.spec!.nodeName!) ?? 0) + 1);
    expect([...perNode.values()].sort()).toEqual([2, 3]);
    expect(await listInstances(c, cls)).toHaveLength(2);
    // The simulated kubelet registers each node with its type's capacity, which kube-scheduler checks too.
    // It registers the labels a kubelet does, so kube-controller-manager has none to add (it read and
    // patched every simulated node for the beta OS and arch labels).
    for (const name of perNode.keys()) {
      const node = await c.core.readNode({ name });
      expect(node.status?.allocatable).toMatchObject({ cpu: '2', pods: '110' });
      const byController = (node.metadata?.managedFields ?? []).filter((f) => f.manager === 'kube-controller-manager');
      expect(JSON.stringify(byController.map((f) => f.fieldsV1))).not.toContain('beta.kubernetes.io');
    }
  });

  it('reuses an idle instance for the next pod of the same class, never for another class', async () => {
    const a = await newClass('reuse-a', { idleTimeout: '10m' });
    const b = await newClass('reuse-b', { idleTimeout: '10m' });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('first', a) });
    const first = await running(c, ns, 'first');
    // Deleted as a user deletes: its kubelet (kwok, as a kubelet does) ends it before it goes.
    await c.core.deleteNamespacedPod({ name: 'first', namespace: ns });
    await eventually('the instance of class a to be idle', async () => {
      const [inst] = await listInstances(c, a);
      expect(inst?.status?.idleSince).toBeTruthy();
    });

    await c.core.createNamespacedPod({ namespace: ns, body: pod('other', b) });
    const other = await running(c, ns, 'other');
    expect(other.spec!.nodeName).not.toBe(first.spec!.nodeName);

    await c.core.createNamespacedPod({ namespace: ns, body: pod('second', a) });
    const second = await running(c, ns, 'second');
    expect(second.spec!.nodeName).toBe(first.spec!.nodeName);
    expect(await listInstances(c, a)).toHaveLength(1);
    expect(await listInstances(c, b)).toHaveLength(1);
  });

  it('never hands on a node whose pod was force-deleted (it may still run there): its instance goes, the next pod gets its own', async () => {
    const cls = await newClass('forced', { idleTimeout: '10m' });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('forced-1', cls) });
    const first = await running(c, ns, 'forced-1');
    const taken = claimOf(first)!;
    // Grace period 0: gone from the API at once, while a kubelet may still be stopping its containers.
    await c.core.deleteNamespacedPod({ name: 'forced-1', namespace: ns, gracePeriodSeconds: 0 });
    await eventually('its instance terminated, and told why', async () => {
      const live = (await listInstances(c, cls)).filter((i) => !i.metadata.deletionTimestamp);
      expect(live.map((i) => i.metadata.name)).not.toContain(taken);
      const told = (await c.kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: 'default' })).items;
      expect(told.find((e) => e.regarding?.name === taken)?.reason).toBe('PodLeftUnconfirmed');
    });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('forced-2', cls) });
    const second = await running(c, ns, 'forced-2');
    expect(claimOf(second)).not.toBe(taken);
    expect(second.spec!.nodeName).not.toBe(first.spec!.nodeName);
  });

  it('keeps the instance of a pod given a DaemonSet owner after its placement: the next pod gets a node of its own', async () => {
    const cls = await newClass('forged', { idleTimeout: '10m' });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('holder', cls) });
    const holder = await running(c, ns, 'holder');
    // Whoever may update the pod may write this. apps/v1beta2 is no longer served, so the garbage
    // collector cannot look the owner up and leaves the pod be.
    const owner = {
      apiVersion: 'apps/v1beta2',
      kind: 'DaemonSet',
      name: 'forged',
      uid: randomUUID(),
      controller: true,
    };
    await c.core.patchNamespacedPod({
      name: 'holder',
      namespace: ns,
      body: [{ op: 'add', path: '/metadata/ownerReferences', value: [owner] }],
    });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('next', cls) });
    const next = await running(c, ns, 'next');
    expect(next.spec!.nodeName, 'the next pod of the class').not.toBe(holder.spec!.nodeName);
    expect(await listInstances(c, cls)).toHaveLength(2);
    const [inst] = (await listInstances(c, cls)).filter((i) => i.status?.nodeName === holder.spec!.nodeName);
    expect(inst?.status?.idleSince, "the holder's instance is not idle").toBeFalsy();
  });

  it('launches nothing for a pod another scheduling gate holds, and provisions it once that gate is lifted', async () => {
    const cls = await newClass('queued', {});
    const queued = pod('queued', cls);
    queued.spec!.schedulingGates = [{ name: 'example.com/queue' }];
    await c.core.createNamespacedPod({ namespace: ns, body: queued });
    const gates = async () =>
      (await c.core.readNamespacedPod({ name: 'queued', namespace: ns })).spec?.schedulingGates?.map((g) => g.name);
    expect(await gates()).toEqual(['example.com/queue', 'ipp.dev/provision']);
    // Long enough for a pass to have claimed and launched (it takes well under a second here).
    const QUEUED_MS = 6_000;
    await new Promise((r) => setTimeout(r, QUEUED_MS));
    expect(await listInstances(c, cls), 'no instance for a pod its queue has not admitted').toEqual([]);
    expect(await metric(env.ipp!, 'ipp_pending_pods', { class: cls }), 'not pending while queued').toBe(0);
    await c.core.patchNamespacedPod({
      name: 'queued',
      namespace: ns,
      body: [{ op: 'remove', path: '/spec/schedulingGates/0' }],
    });
    await running(c, ns, 'queued');
    expect(await listInstances(c, cls)).toHaveLength(1);
    // Its wait for ipp began when the queue let it go: the time in the queue is not ipp's.
    const waited = await metric(env.ipp!, 'ipp_pod_pin_duration_seconds_sum', { class: cls, mode: 'pin' });
    expect(waited).toBeGreaterThan(0);
    expect(waited).toBeLessThan(QUEUED_MS / 1000);
  });

  it('does not reuse when the class says reuse: false', async () => {
    const cls = await newClass('noreuse', { idleTimeout: '10m', reuse: false });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('nr-1', cls) });
    const one = await running(c, ns, 'nr-1');
    await c.core.deleteNamespacedPod({ name: 'nr-1', namespace: ns, gracePeriodSeconds: 0 });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('nr-2', cls) });
    const two = await running(c, ns, 'nr-2');
    expect(two.spec!.nodeName).not.toBe(one.spec!.nodeName);
  });

  it('launches the next instance type when the first has no capacity', async () => {
    const cls = await newClass('fallback', {
      instanceTypes: ['sim.large', 'sim.medium'],
      simulated: { bootDelay: '500ms', unavailableInstanceTypes: ['sim.large'] },
    });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('fb', cls) });
    const p = await running(c, ns, 'fb');
    const node = await c.core.readNode({ name: p.spec!.nodeName! });
    expect(node.metadata!.labels!['node.kubernetes.io/instance-type']).toBe('sim.medium');
    expect(node.metadata!.labels![NODE_CLASS_LABEL]).toBe(cls);
    const [inst] = await listInstances(c, cls);
    expect(inst!.status!.instanceType).toBe('sim.medium');
  });

  it('reports a class its provider cannot serve in the class status', async () => {
    const cls = await newClass('badtype', { instanceTypes: ['sim.nonexistent'] });
    await eventually('Ready=False with the reason', async () => {
      const got = await getClass(c, cls);
      const ready = got.status?.conditions?.find((x) => x.type === 'Ready');
      expect(ready?.status).toBe('False');
      expect(ready?.message).toMatch(/spec.instanceTypes\[0\]: unknown simulated instance type "sim.nonexistent"/);
    });
  });

  it.each([
    [{ instanceTypes: [], simulated: {} }, /spec.instanceTypes/],
    [{ instanceTypes: ['sim.small'] }, /exactly one provider/],
    [{ instanceTypes: ['sim.small'], simulated: {}, aws: { ami: { id: 'ami-1' } } }, /exactly one provider/],
    [{ instanceTypes: ['sim.small'], simulated: {}, isolation: 'Node' }, /spec.isolation/],
    [{ instanceTypes: ['sim.small'], simulated: {}, idleTimeout: 'five minutes' }, /spec.idleTimeout/],
    [{ instanceTypes: ['sim.small'], simulated: {}, maxInstances: -1 }, /spec.maxInstances/],
    [{ instanceTypes: ['a', 'a'], simulated: {} }, /instance types must not repeat/],
    [{ instanceTypes: ['sim.small'], aws: { ami: { id: 'ami-1' }, tags: { 'ipp.dev/class': 'x' } } }, /spec.aws.tags/],
    [{ instanceTypes: ['sim.small'], isolation: 'Class', reuse: false, simulated: {} }, /spec.reuse/],
    [{ instanceTypes: ['sim.small'], simulated: {}, namespaces: [] }, /spec.namespaces/],
    [{ instanceTypes: ['sim.small'], simulated: {}, namespaces: ['*', 'team-a'] }, /stands alone/],
  ])('the API server refuses an invalid InstanceClass %#, naming the field', async (spec, message) => {
    const err = await c.custom
      .createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'instanceclasses',
        body: {
          apiVersion: API_VERSION,
          kind: 'InstanceClass',
          metadata: { name: `bad-${suffix()}` },
          // spec.namespaces is required: without it the apiserver reports only that, not the rule under test.
          spec: 'namespaces' in spec ? spec : { namespaces: ['*'], ...spec },
        },
      })
      .then(
        () => undefined,
        (e: { code?: number; body?: string }) => e,
      );
    expect(err?.code).toBe(422);
    expect(String(err?.body)).toMatch(message);
  });
});
