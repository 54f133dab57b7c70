// The provisioning shell with fake writers: claims before Instances before pins, Events per outcome,
// and failures surfacing for the queue's backoff.
import { beforeEach, describe, expect, it } from 'vitest';
import type { V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import {
  MAX_CLAIMS_PER_PASS,
  podChangeMatters,
  ProvisioningController,
  sameMetadata,
  VOLUMES_RETRY_MS,
} from '../../../../src/controllers/provisioning/controller.ts';
import { INSTANCE_AVAILABLE } from '../../../../src/controllers/provisioning/condition.ts';
import { ClaimNotBoundError } from '../../../../src/kube/volumes.ts';
import { STRANDED_AFTER_MS } from '../../../../src/controllers/provisioning/plan.ts';
import { fakes, type Fakes } from '../../fake/cluster.ts';
import { cls, instance, node, pod, refusedPin } from '../fixtures.ts';

let f: Fakes;
let controller: ProvisioningController;
let names: string[];
beforeEach(() => {
  f = fakes();
  f.cluster.classList = [cls()];
  names = ['metal-a', 'metal-b'];
  controller = new ProvisioningController({ ...f.ctx, newName: () => names.shift()! });
});

const reasons = () => f.events.map((e) => `${e.regarding.name}/${e.reason}`);

/** Counts the provisioning passes that plan (each reads the class's Instances once). */
function countPlans(): { count: number } {
  const plans = { count: 0 };
  const instances = f.cluster.instancesOfClass.bind(f.cluster);
  f.cluster.instancesOfClass = (c: string) => (plans.count++, instances(c));
  return plans;
}

describe('ProvisioningController', () => {
  it('claims each waiting pod before creating its Instance, and tells the pod', async () => {
    f.cluster.podList = [pod('web-1'), pod('web-2', { created: '2024-01-01T00:00:01Z' })];
    await controller.reconcile('metal');
    // Pods in parallel; for each pod, the claim strictly before its Instance.
    expect(f.writes.log).toHaveLength(4);
    for (const [pod, inst] of [
      ['web-1', 'metal-a'],
      ['web-2', 'metal-b'],
    ]) {
      const claimAt = f.writes.log.findIndex((w) => w[0] === 'pods.claim' && w[1] === pod && w[2] === inst);
      const createAt = f.writes.log.findIndex((w) => w[0] === 'instances.create' && w[1] === inst);
      expect(claimAt).toBeGreaterThanOrEqual(0);
      expect(createAt).toBeGreaterThan(claimAt);
    }
    expect(reasons()).toEqual(['web-1/Provisioning', 'web-2/Provisioning']);
  });

  it('asks again soon for a pod whose volumes could not be read, and launches nothing for it meanwhile', async () => {
    const withClaim = pod('db-1');
    withClaim.spec!.volumes = [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }];
    f.cluster.podList = [withClaim];
    let answers = [new Error('HTTP 500 from the API server')];
    f.ctx.lookup.volumes = {
      zoneRequirements: async () => {
        const failure = answers.shift();
        if (failure) throw failure;
        return [];
      },
    };
    // Nothing watches claims: without the requeue the pod would wait for some other event of the class.
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: VOLUMES_RETRY_MS });
    expect(f.writes.of('instances.create')).toEqual([]);
    expect(f.writes.of('pods.claim')).toEqual([]);
    answers = [];
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create')).toHaveLength(1);
  });

  it('reads no volumes of a pod a queue still holds, even one claimed (by an older ipp) whose Instance is gone', async () => {
    const queued = pod('db-1', { claim: 'metal-gone' });
    queued.spec!.schedulingGates = [{ name: 'kueue.x-k8s.io/admission' }, ...queued.spec!.schedulingGates!];
    queued.spec!.volumes = [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }];
    // Beside a pod that does wait, so the pass reads volumes at all.
    f.cluster.podList = [queued, pod('web-1')];
    const read: string[] = [];
    f.ctx.lookup.volumes = {
      zoneRequirements: async (p) => {
        read.push(p.metadata!.name!);
        return [];
      },
    };
    await controller.reconcile('metal');
    expect(read).toEqual(['web-1']);
    expect(f.writes.of('pods.claim').map((w) => w[0])).toEqual(['web-1']);
  });

  it('holds a pod whose claim is not bound and does not wait for its node, says why on the pod, and asks again', async () => {
    const withClaim = pod('db-1');
    withClaim.spec!.volumes = [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }];
    f.cluster.podList = [withClaim];
    f.ctx.lookup.volumes = {
      zoneRequirements: async () => {
        throw new ClaimNotBoundError('data', 'PersistentVolumeClaim team-a/data is not bound yet');
      },
    };
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: VOLUMES_RETRY_MS });
    expect(f.writes.of('instances.create')).toEqual([]);
    expect(f.writes.of('pods.setCondition')).toEqual([
      [
        'db-1',
        expect.objectContaining({
          status: 'False',
          reason: 'ClaimNotBound',
          message: 'PersistentVolumeClaim team-a/data is not bound yet',
        }),
      ],
    ]);
  });

  it('waits for its own claims to show in the cache before planning the class again', async () => {
    f.cluster.podList = [pod('web-1')];
    await controller.reconcile('metal');
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: 100 });
    expect(f.writes.of('instances.create')).toHaveLength(1);
  });

  it('gives up waiting for its claims only once the pod watch has shown life since they were sent', async () => {
    f.cluster.podList = [pod('web-1')];
    await controller.reconcile('metal');
    // The watch has been silent since before the claim (down, or relisting): still waiting after 30 s.
    f.clock.now += 31_000;
    f.cluster.podsSilentForMs = 40_000;
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: 100 });
    expect(f.writes.of('pods.claim')).toHaveLength(1);
    // It spoke since, and still shows no claim: the claim is given up on and the pod planned again.
    f.cluster.podsSilentForMs = 1_000;
    await controller.reconcile('metal');
    expect(f.writes.of('pods.claim')).toHaveLength(2);
  });

  it('carries out the claims of the oldest pods of a burst, and passes again soon for the rest', async () => {
    const n = MAX_CLAIMS_PER_PASS + 8;
    // Newest first in the cache: the pass still serves the oldest.
    f.cluster.podList = Array.from({ length: n }, (_, i) =>
      pod(`web-${n - 1 - i}`, { created: new Date(Date.parse('2024-01-01T00:00:00Z') + (n - 1 - i) * 1000) }),
    );
    names = Array.from({ length: n }, (_, i) => `metal-${i}`);
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: 0 });
    const claimed = f.writes.of('pods.claim').map((w) => w[0]);
    expect(claimed).toHaveLength(MAX_CLAIMS_PER_PASS);
    expect(new Set(claimed)).toEqual(new Set(Array.from({ length: MAX_CLAIMS_PER_PASS }, (_, i) => `web-${i}`)));
    // Only the Instances of claims carried out are created (and counted as on their way).
    expect(f.writes.of('instances.create')).toHaveLength(MAX_CLAIMS_PER_PASS);
  });

  it('leaves a claimed pod whose Instance is Ready to placement, and writes nothing for it', async () => {
    f.cluster.podList = [pod('web-1', { claim: 'metal-x' })];
    f.cluster.instanceList = [instance('metal-x', { phase: 'Ready', providerID: 'sim:///n1' })];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'metal-x' })];
    await controller.reconcile('metal');
    expect(f.writes.log).toEqual([]);
  });

  it('passes over a calm class for a second, unless an event could give it something to decide', async () => {
    const launching = instance('metal-x', { phase: 'Launched', providerID: 'sim:///n1' });
    f.cluster.podList = [pod('web-1', { claim: 'metal-x' })];
    f.cluster.instanceList = [launching];
    let reads = 0;
    const unbound = f.cluster.unboundPodsOfClass.bind(f.cluster);
    f.cluster.unboundPodsOfClass = (c: string) => (reads++, unbound(c));
    // Every waiting pod holds a claim that stands: nothing to decide, and the class is calm.
    expect(await controller.reconcile('metal')).toBeUndefined();
    expect(reads).toBe(1);
    // Its launch and the node's registration wake it: passed over until the second is up.
    const registered = instance('metal-x', { phase: 'Registered', providerID: 'sim:///n1' });
    expect(controller.wakes.instance!(registered, f.cluster, launching)).toEqual(['metal']);
    f.cluster.instanceList = [registered];
    f.clock.now += 400;
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: 600 });
    expect(reads).toBe(1);
    f.clock.now += 600;
    expect(await controller.reconcile('metal')).toBeUndefined();
    expect(reads).toBe(2);
    // The Instance is deleted: the claim no longer stands, and the next pass, at once, gives the pod another.
    const deleting = instance('metal-x', { phase: 'Registered', providerID: 'sim:///n1', deleting: true });
    controller.wakes.instance!(deleting, f.cluster, registered);
    f.cluster.instanceList = [deleting];
    await controller.reconcile('metal');
    expect(reads).toBe(3);
    expect(f.writes.of('pods.claim')).toEqual([['web-1', 'metal-a']]);
    expect(f.writes.of('instances.create')).toHaveLength(1);
  });

  it('wakes a calm class when a pod of no class takes the node its waiting pod claims', async () => {
    f.cluster.podList = [pod('web-1', { claim: 'metal-x' })];
    f.cluster.instanceList = [instance('metal-x', { phase: 'Ready', providerID: 'sim:///n1' })];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'metal-x' })];
    expect(await controller.reconcile('metal')).toBeUndefined();
    const pending = pod('squatter', { class: null, gated: false });
    const bound = pod('squatter', { class: null, gated: false, nodeName: 'n1' });
    // The class of the node, woken though the pod names none, for a pass at once.
    expect(controller.wakes.pod!(bound, f.cluster, pending)).toEqual(['metal']);
    f.cluster.podList = [pod('web-1', { claim: 'metal-x' }), bound];
    f.clock.now += 10;
    await controller.reconcile('metal');
    // The pass is not deferred: the pod gets an Instance of its own.
    expect(f.writes.log).toEqual([
      ['pods.claim', 'web-1', 'metal-a'],
      ['instances.create', 'metal-a', 'metal'],
    ]);
  });

  it('keeps a calm class passed over for no more than a second when the clock steps back', async () => {
    f.cluster.podList = [pod('web-1', { claim: 'metal-x' })];
    f.cluster.instanceList = [instance('metal-x', { phase: 'Launched', providerID: 'sim:///n1' })];
    expect(await controller.reconcile('metal')).toBeUndefined();
    f.clock.now -= 3_600_000;
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: 1_000 });
  });

  it('tells every waiting pod why an unknown class cannot be provisioned, and writes nothing', async () => {
    f.cluster.classList = [];
    f.cluster.podList = [pod('web-1'), pod('web-2')];
    await controller.reconcile('metal');
    expect(f.writes.log).toEqual([]);
    expect(reasons()).toEqual(['web-1/UnknownClass', 'web-2/UnknownClass']);
  });

  it('tells pods of a namespace the class does not allow, and provisions the others', async () => {
    f.cluster.classList = [cls({ namespaces: ['team-a', 'secret-project'] })];
    f.cluster.podList = [pod('web-1'), pod('intruder', { ns: 'team-b' })];
    await controller.reconcile('metal');
    expect(reasons()).toEqual(['intruder/NamespaceNotAllowed', 'web-1/Provisioning']);
    // Which namespaces the class admits is not the refused tenant's to learn (admission says the same).
    expect(f.events[0]!.note).not.toMatch(/team-a|secret-project/);
    // The Instance records the isolation it was made under (the auditor holds its node to it).
    expect(f.writes.createdIsolation.get('metal-a')).toBe('Pod');
    expect(f.writes.of('pods.claim')).toEqual([['web-1', 'metal-a']]);
  });

  it('says when the class is at maxInstances', async () => {
    f.cluster.classList = [cls({ maxInstances: 1 })];
    f.cluster.podList = [pod('web-1'), pod('web-2', { created: '2024-01-01T00:00:01Z' })];
    await controller.reconcile('metal');
    expect(reasons()).toEqual(['web-2/MaxInstancesReached', 'web-1/Provisioning']);
  });

  it('reserves an idle Instance before claiming it, so its idle teardown cannot win, then pins at once', async () => {
    f.cluster.podList = [pod('web-1')];
    f.cluster.instanceList = [
      instance('metal-x', { phase: 'Ready', providerID: 'sim:///n1', idleSince: '2024-01-01T00:00:00Z' }),
    ];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'metal-x' })];
    await controller.reconcile('metal');
    expect(f.writes.log).toEqual([
      ['instances.reserve', 'metal-x'],
      ['pods.claim', 'web-1', 'metal-x'],
      ['pods.pin', 'web-1', 'n1'],
    ]);
  });

  it('carries on with the other pods when one write fails, then fails the pass for a retry', async () => {
    f.cluster.podList = [pod('web-1'), pod('web-2', { created: '2024-01-01T00:00:01Z' })];
    f.writes.failNext.set('pods.claim', { code: 422, body: { reason: 'Invalid', message: 'test failed' } });
    await expect(controller.reconcile('metal')).rejects.toThrow('1 claim write(s) for class metal');
    expect(f.writes.of('instances.create')).toEqual([['metal-b', 'metal']]);
  });

  it('deletes a stranded pod that has a controller, and only tells a bare one', async () => {
    const stranded = (name: string, owned: boolean) => {
      const p = refusedPin(pod(name, { claim: 'gone', gated: false }), 'n-gone', new Date('2023-12-31T00:00:00Z'));
      if (owned)
        p.metadata!.ownerReferences = [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'rs-1', controller: true },
        ];
      return p;
    };
    f.cluster.podList = [stranded('owned', true), stranded('bare', false), pod('waiting')];
    // Its Instance is there (the pod cannot fit its node, say): the bare pod may still be fixed by hand.
    f.cluster.instanceList = [instance('gone', { phase: 'Ready', providerID: 'sim:///n-gone' })];
    await controller.reconcile('metal');
    expect(f.writes.of('pods.delete')).toEqual([['owned']]);
    expect(reasons().filter((r) => r.endsWith('Stranded'))).toEqual(['owned/Stranded', 'bare/Stranded']);
  });

  it('deletes a stranded bare pod once its Instance is confirmed gone: a machine taking its node name would get it', async () => {
    const bare = refusedPin(
      pod('bare', { claim: 'gone', gated: false }),
      'ip-10-0-1-23',
      new Date('2023-12-31T00:00:00Z'),
    );
    f.cluster.podList = [bare];
    // The cache has no Instance, but the API server still has it: not deleted on the cache's word.
    f.cluster.apiInstances = [instance('gone', { phase: 'Ready', providerID: 'sim:///ip-10-0-1-23' })];
    await controller.reconcile('metal');
    expect(f.writes.of('pods.delete')).toEqual([]);
    f.cluster.apiInstances = [];
    f.events.length = 0;
    await controller.reconcile('metal');
    expect(f.writes.of('pods.delete')).toEqual([['bare']]);
    expect(f.events[0]!.note).toMatch(/its Instance is gone, and a machine that later took its node's name/);
  });

  it('carries on with the class when a stranded pod changed before its delete (409): judged again next pass', async () => {
    const p = refusedPin(pod('owned', { claim: 'gone', gated: false }), 'n-gone', new Date('2023-12-31T00:00:00Z'));
    p.metadata!.ownerReferences = [
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'rs-1', controller: true },
    ];
    f.cluster.podList = [p, pod('waiting')];
    f.writes.failNext.set('pods.delete', { code: 409, body: { reason: 'Conflict', message: 'precondition failed' } });
    await controller.reconcile('metal');
    expect(f.writes.of('pods.claim').map(([name]) => name)).toContain('waiting');
  });

  it('plans for a pinned pod the scheduler refuses only once it may count as stranded', async () => {
    const refusedAt = f.clock.now - 30_000;
    const p = refusedPin(pod('web-1', { claim: 'metal-x', gated: false }), 'n1', new Date(refusedAt));
    f.cluster.podList = [p];
    f.cluster.instanceList = [instance('metal-x', { phase: 'Ready', providerID: 'sim:///n1' })];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'metal-x', unschedulable: true })];
    const plans = countPlans();
    // Refused for 30 s: nothing to decide until it may be stranded, and a pass is due then.
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: STRANDED_AFTER_MS - 30_000 });
    expect(plans.count).toBe(0);
    f.clock.now = refusedAt + STRANDED_AFTER_MS;
    await controller.reconcile('metal');
    expect(plans.count).toBe(1);
    expect(reasons()).toEqual(['web-1/Stranded']);
  });

  it('does not plan on every pass for a pod pinned by name whose Instance is gone: it waits to be stranded', async () => {
    const refusedAt = f.clock.now - 30_000;
    f.cluster.podList = [refusedPin(pod('web-1', { claim: 'gone', gated: false }), 'n-gone', new Date(refusedAt))];
    const plans = countPlans();
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: STRANDED_AFTER_MS - 30_000 });
    expect(plans.count).toBe(0);
    f.clock.now = refusedAt + STRANDED_AFTER_MS;
    await controller.reconcile('metal');
    expect(reasons()).toEqual(['web-1/Stranded']);
  });

  it('decides on a refused pinned pod whose refusal time does not parse, as plan() does, not never', async () => {
    const p = refusedPin(pod('web-1', { claim: 'metal-x', gated: false }), 'n1', new Date('garbage'));
    f.cluster.podList = [p];
    f.cluster.instanceList = [instance('metal-x', { phase: 'Ready', providerID: 'sim:///n1' })];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'metal-x', unschedulable: true })];
    await controller.reconcile('metal');
    expect(reasons()).toEqual(['web-1/Stranded']);
  });

  it('tells a pod no instance type of the class can run, and launches nothing for it', async () => {
    f.provider.capacities.set('sim.large', { cpu: 2_000, memory: 8 * 2 ** 30, pods: 110 });
    f.cluster.podList = [pod('huge', { cpu: '4' }), pod('small', { cpu: '1', created: '2024-01-01T00:00:01Z' })];
    await controller.reconcile('metal');
    expect(reasons()).toEqual(['huge/NoInstanceTypeFits', 'small/Provisioning']);
    expect(f.writes.of('instances.create')).toEqual([['metal-a', 'metal']]);
  });

  it('tells a pod told False before that it has an instance now, and leaves the conditions of the others alone', async () => {
    f.cluster.instanceList = [instance('metal-x', { phase: 'Launched' }), instance('metal-y', { phase: 'Launched' })];
    const toldFalse = pod('was-unfit', { claim: 'metal-x' });
    toldFalse.status!.conditions = [
      { type: INSTANCE_AVAILABLE, status: 'False', reason: 'NoInstanceTypeFits', message: 'too big' },
    ];
    // A pod whose claim stands, never told anything; and a new one, so the pass plans.
    f.cluster.podList = [
      toldFalse,
      pod('waiting', { claim: 'metal-y' }),
      pod('new', { created: '2024-01-01T00:00:01Z' }),
    ];
    await controller.reconcile('metal');
    expect(f.writes.of('pods.setCondition')).toEqual([
      [
        'was-unfit',
        expect.objectContaining({
          status: 'True',
          reason: 'InstanceAssigned',
          message: 'Instance metal-x of class metal',
        }),
      ],
    ]);
  });
});

describe('warm pool', () => {
  const sample = async (name: string) =>
    (await f.metrics.registry.getSingleMetric(name)!.get()).values.map((v) => `${v.labels.class}=${v.value}`);
  beforeEach(() => {
    f.cluster.classList = [cls({ warmPool: { size: 1 } })];
  });

  it('claims a warm Instance, takes it out of the pool and pins the pod in one pass, and tells the pod', async () => {
    f.cluster.podList = [pod('web-1')];
    f.cluster.instanceList = [instance('warm-1', { phase: 'Ready', providerID: 'sim:///n1', warm: true })];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'warm-1' })];
    await controller.reconcile('metal');
    expect(f.writes.log).toEqual([
      ['pods.claim', 'web-1', 'warm-1'],
      ['instances.takeWarm', 'warm-1'],
      ['pods.pin', 'web-1', 'n1'],
    ]);
    expect(f.events.map((e) => e.reason)).toEqual(['Provisioning']); // kube-scheduler's Scheduled follows the pin
    expect(f.events[0]!.note).toBe('took warm Instance warm-1 of class metal (Ready, never used): no boot wait');
    // Recorded before the claim left, for the deleters that decide on a cache without it yet.
    expect(f.ctx.claims.recent('warm-1', f.clock.now)).toBe(true);
    expect(await sample('ipp_warm_hits_total')).toEqual(['metal=1']);
    expect(await sample('ipp_warm_misses_total')).toEqual([]);
  });

  it('does not pin the pod to a warm instance the pool removed while the pod claimed it', async () => {
    f.cluster.podList = [pod('web-1')];
    f.cluster.instanceList = [instance('warm-1', { phase: 'Ready', providerID: 'sim:///n1', warm: true })];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'warm-1' })];
    // The pool's removal (aged, surplus) landed between this pass's read and its take.
    f.writes.deletingInstances.add('warm-1');
    await expect(controller.reconcile('metal')).rejects.toThrow(/did not apply/);
    expect(f.writes.log).toEqual([
      ['pods.claim', 'web-1', 'warm-1'],
      ['instances.takeWarm', 'warm-1'],
    ]);
  });

  it('leaves the instance in the pool when the claim fails', async () => {
    f.cluster.podList = [pod('web-1')];
    f.cluster.instanceList = [instance('warm-1', { phase: 'Ready', providerID: 'sim:///n1', warm: true })];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'warm-1' })];
    f.writes.failNext.set('pods.claim', { code: 409, body: { reason: 'Conflict', message: 'changed' } });
    await expect(controller.reconcile('metal')).rejects.toThrow(/did not apply/);
    expect(f.writes.of('instances.takeWarm')).toEqual([]);
  });

  it('takes a claimed instance out of the pool on the next pass when the take failed, and pins only then', async () => {
    f.cluster.podList = [pod('web-1')];
    f.cluster.instanceList = [instance('warm-1', { phase: 'Ready', providerID: 'sim:///n1', warm: true })];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'warm-1' })];
    f.writes.failNext.set('instances.takeWarm', { code: 500, body: { message: 'etcd timeout' } });
    await expect(controller.reconcile('metal')).rejects.toThrow(/did not apply/);
    expect(f.writes.of('pods.pin')).toEqual([]); // never pinned while the instance is still in the pool
    f.cluster.podList = [pod('web-1', { claim: 'warm-1' })];
    f.events.length = 0;
    await controller.reconcile('metal');
    expect(f.writes.log.slice(-2)).toEqual([
      ['instances.takeWarm', 'warm-1'],
      ['pods.pin', 'web-1', 'n1'],
    ]);
    expect(f.events).toEqual([]); // the pod was told when it was claimed
  });

  it('counts a pod that gets a new instance as a miss, and says it is a new one', async () => {
    f.cluster.podList = [pod('web-1')];
    await controller.reconcile('metal');
    expect(f.events.map((e) => e.note)).toEqual(['creating dedicated Instance metal-a of class metal']);
    expect(await sample('ipp_warm_hits_total')).toEqual([]);
    expect(await sample('ipp_warm_misses_total')).toEqual(['metal=1']);
  });
});

describe('which pod and node updates wake a pass', () => {
  const meta = (m: Record<string, unknown>) => m as V1ObjectMeta;
  it('ignores the resourceVersion alone, and sees any other field added, removed or changed on either side', () => {
    expect(sameMetadata(meta({ name: 'a', resourceVersion: '1' }), meta({ name: 'a', resourceVersion: '2' }))).toBe(
      true,
    );
    expect(sameMetadata(meta({ name: 'a', labels: { x: '1' } }), meta({ name: 'a', labels: { x: '2' } }))).toBe(false);
    // A field only on the newer side, with the older one carrying the resourceVersion instead.
    expect(sameMetadata(meta({ name: 'a', resourceVersion: '1' }), meta({ name: 'a', annotations: { c: 'i' } }))).toBe(
      false,
    );
    expect(sameMetadata(meta({ name: 'a', annotations: { c: 'i' } }), meta({ name: 'a', resourceVersion: '1' }))).toBe(
      false,
    );
    expect(sameMetadata(undefined, meta({ name: 'a' }))).toBe(false);
  });

  it('wakes on a claim, a pin or the scheduler giving up; not on the kubelet reporting Running', () => {
    const before: V1Pod = { metadata: { name: 'p', resourceVersion: '1' }, spec: { containers: [] }, status: {} };
    const claimed = {
      ...before,
      metadata: { ...before.metadata, resourceVersion: '2', annotations: { 'ipp.dev/i': 'x' } },
    };
    expect(podChangeMatters(before, claimed)).toBe(true);
    const pinned = { ...before, spec: { ...before.spec!, nodeName: 'n' } };
    expect(podChangeMatters(before, pinned)).toBe(true);
    const running = { ...before, metadata: { ...before.metadata, resourceVersion: '3' }, status: { phase: 'Running' } };
    expect(podChangeMatters(before, running)).toBe(false);
  });
});
