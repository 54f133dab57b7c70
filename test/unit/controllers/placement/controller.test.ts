// The placement shell with fake writers: one guarded write per pod, its Event, and no second write
// while the cache has not shown the first.
import { beforeEach, describe, expect, it } from 'vitest';
import { NODE_INSTANCE_LABEL } from '../../../../src/api/names.ts';
import { PlacementController } from '../../../../src/controllers/placement/controller.ts';
import { fakes, type Fakes } from '../../fake/cluster.ts';
import { cls, instance, node, pod } from '../fixtures.ts';

let f: Fakes;
let controller: PlacementController;
beforeEach(() => {
  f = fakes();
  f.cluster.classList = [cls()];
  f.cluster.instanceList = [instance('metal-x', { phase: 'Ready', providerID: 'sim:///n1' })];
  f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'metal-x' })];
  controller = new PlacementController(f.ctx);
});
const reasons = () => f.events.map((e) => `${e.regarding.name}/${e.reason}`);

describe('PlacementController', () => {
  it('pins a claimed pod once its Instance is Ready on a Ready node, leaving the Event to kube-scheduler', async () => {
    f.cluster.podList = [pod('web-1', { claim: 'metal-x' })];
    await controller.reconcile('team-a/web-1');
    expect(f.writes.log).toEqual([['pods.pin', 'web-1', 'n1']]);
    expect(reasons()).toEqual([]); // one write per pod: the pin; kube-scheduler's Scheduled names the node
  });

  it('times the pin from the creation, or from when a queue let the pod go, never its time in the queue', async () => {
    const pinSeconds = async () =>
      /ipp_pod_pin_duration_seconds_sum\{[^}]*\} (\S+)/.exec(await f.ctx.metrics.registry.metrics())?.[1];
    f.clock.now = Date.parse('2024-01-01T01:00:00Z');
    f.cluster.podList = [pod('web-1', { claim: 'metal-x' })];
    f.cluster.released.set('web-1', f.clock.now - 20_000);
    await controller.reconcile('team-a/web-1');
    expect(await pinSeconds()).toBe('20');
  });

  it('binds instead of pinning a pod handed to scheduler ipp', async () => {
    f.cluster.podList = [pod('web-1', { claim: 'metal-x', gated: false, schedulerName: 'ipp' })];
    await controller.reconcile('team-a/web-1');
    expect(f.writes.log).toEqual([['pods.bind', 'web-1', 'n1']]);
    expect(reasons()).toEqual(['web-1/Bound']);
  });

  it('does not pin again while the cache still shows the pod it pinned, and does once the pod changes', async () => {
    f.cluster.podList = [pod('web-1', { claim: 'metal-x' })];
    await controller.reconcile('team-a/web-1');
    await controller.reconcile('team-a/web-1'); // woken by the node, before the pin's own watch event
    expect(f.writes.of('pods.pin')).toHaveLength(1);
    // Someone else changed the pod (and the pin was refused as stale): decided again on the new version.
    f.cluster.podList[0]!.metadata!.resourceVersion = '2';
    await controller.reconcile('team-a/web-1');
    expect(f.writes.of('pods.pin')).toHaveLength(2);
  });

  it('takes a stale refusal as "wait for the watch", and fails other errors for the backoff', async () => {
    f.cluster.podList = [pod('web-1', { claim: 'metal-x' })];
    f.writes.failNext.set('pods.pin', { code: 422, body: { reason: 'Invalid', message: 'test failed' } });
    await expect(controller.reconcile('team-a/web-1')).resolves.toBeUndefined();
    f.writes.failNext.set('pods.pin', { code: 500, body: { message: 'etcd timeout' } });
    await expect(controller.reconcile('team-a/web-1')).rejects.toBeDefined();
    expect(reasons()).toEqual([]);
  });

  it('wakes a pod held back by a pod on its node that is no claimer of that Instance, once that one leaves', async () => {
    const waiting = pod('web-1', { claim: 'metal-x' });
    // Bound to the node by name (a `kubectl debug node/n1` pod): under Pod isolation nobody joins it.
    const intruder = pod('debug', { class: null, gated: false, nodeName: 'n1', phase: 'Running', ns: 'default' });
    f.cluster.podList = [waiting, intruder];
    await controller.reconcile('team-a/web-1');
    expect(f.writes.of('pods.pin')).toHaveLength(0);
    // Its deletion: the one event that says the node is free (the Instance's own status says so later).
    f.cluster.podList = [waiting];
    expect([...controller.wakes.pod!(intruder, f.cluster)]).toEqual(['team-a/web-1']);
    // The same from a pod that copied the claim without being of the class, and on a node that names
    // no Instance in its labels (a GKE pool's): the node's Instance is the one its providerID names.
    const forger = pod('forger', { class: null, claim: 'metal-x', gated: false, nodeName: 'n1', phase: 'Running' });
    delete f.cluster.nodeList[0]!.metadata!.labels![NODE_INSTANCE_LABEL];
    expect([...controller.wakes.pod!(forger, f.cluster)]).toEqual(['team-a/web-1']);
    await controller.reconcile('team-a/web-1');
    expect(f.writes.of('pods.pin')).toHaveLength(1);
  });

  it('wakes the younger claimers of an Instance when its older claimer is re-homed to another', async () => {
    const older = pod('web-0', { claim: 'metal-x', created: '2024-01-01T00:00:00Z' });
    const younger = pod('web-1', { claim: 'metal-x', created: '2024-01-01T00:00:01Z' });
    f.cluster.podList = [older, younger];
    await controller.reconcile('team-a/web-1');
    expect(f.writes.of('pods.pin')).toHaveLength(0);
    // Provisioning moves the older one's claim: metal-x is the younger one's now, and only its waiters'
    // wake says so.
    const moved = pod('web-0', { claim: 'metal-y', created: '2024-01-01T00:00:00Z' });
    f.cluster.podList = [moved, younger];
    expect([...controller.wakes.pod!(moved, f.cluster, older)]).toContain('team-a/web-1');
    expect([...controller.wakes.pod!(moved, f.cluster, moved)]).not.toContain('team-a/web-1');
    await controller.reconcile('team-a/web-1');
    expect(f.writes.of('pods.pin')).toHaveLength(1);
  });

  it('wakes the pods waiting on an Instance when it launches or its node turns Ready, and not for heartbeats', () => {
    f.cluster.podList = [pod('web-1', { claim: 'metal-x' }), pod('web-2', { claim: 'metal-y' })];
    const inst = f.cluster.instanceList[0]!;
    expect([...controller.wakes.instance!(inst, f.cluster)]).toEqual(['team-a/web-1']);
    const unlaunched = structuredClone(inst);
    delete unlaunched.status!.providerID;
    expect([...controller.wakes.instance!(inst, f.cluster, unlaunched)]).toEqual(['team-a/web-1']);
    // Its phase written Ready: the node's own event has woken the pod already.
    const launched = structuredClone(inst);
    launched.status!.phase = 'Launched';
    expect([...controller.wakes.instance!(inst, f.cluster, launched)]).toEqual([]);
    const n = f.cluster.nodeList[0]!;
    expect([...controller.wakes.node!(n, f.cluster)]).toEqual(['team-a/web-1']);
    expect([...controller.wakes.node!(n, f.cluster, structuredClone(n))]).toEqual([]);
  });
});
