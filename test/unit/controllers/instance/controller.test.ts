// The Instance lifecycle shell, step by step, with a fake cloud and fake API writers: which writes,
// Events and requeues each branch produces.
import { beforeEach, describe, expect, it } from 'vitest';
import { FINALIZER, POD_PINNED_AT_ANNOTATION } from '../../../../src/api/names.ts';
import { STRANDED_AFTER_MS } from '../../../../src/controllers/provisioning/plan.ts';
import { InstanceController, statusPatch } from '../../../../src/controllers/instance/controller.ts';
import {
  InsufficientCapacityError,
  InvalidConfigError,
  QuotaExceededError,
  ThrottledError,
} from '../../../../providers/errors.ts';
import type { CloudState } from '../../../../providers/types.ts';
import { NotFoundError } from '../../../../providers/errors.ts';
import { fakes, type Fakes } from '../../fake/cluster.ts';
import { CLASS, cls, instance, node, pod, refusedPin } from '../fixtures.ts';
import { cacheShowsWrites } from './cache.ts';
import { iso, MIN, T0 } from './clock.ts';

let f: Fakes;
let controller: InstanceController;
beforeEach(() => {
  f = fakes(T0);
  f.cluster.classList = [cls({ idleTimeout: '5m', launchTimeout: '10m', registrationTimeout: '15m' })];
  controller = new InstanceController(f.ctx);
});

const reasons = () => f.events.map((e) => `${e.regarding.kind}/${e.reason}/${e.action}`);

describe('launch', () => {
  it('launches an unlaunched Instance and records where, in one write guarded by the version read', async () => {
    f.cluster.instanceList = [{ ...instance('i-1'), metadata: { ...instance('i-1').metadata, resourceVersion: '5' } }];
    const r = await controller.reconcile('i-1');
    expect(f.provider.createCalls).toHaveLength(1);
    expect(f.provider.createCalls[0]!.instance).toEqual({ name: 'i-1', uid: 'uid-i-1' });
    expect(f.writes.of('instances.replaceStatus')).toEqual([
      [
        'i-1',
        '5',
        expect.objectContaining({
          phase: 'Launched',
          provider: 'simulated',
          providerID: 'fake:///zone-a/uid-i-1',
          zone: 'zone-a',
        }),
      ],
    ]);
    expect(reasons()).toEqual([]); // as planned: recorded in the status, no Event
    expect(r).toEqual({ requeueAfterMs: 1_000 });
  });

  it('tells the Instance and the pods waiting for it when there is no capacity, and retries through the queue', async () => {
    f.cluster.instanceList = [instance('i-1')];
    f.cluster.podList = [pod('web', { claim: 'i-1' })];
    f.provider.nextCreateError = new InsufficientCapacityError('no sim.large in zone-a');
    await expect(controller.reconcile('i-1')).rejects.toBeInstanceOf(InsufficientCapacityError);
    expect(reasons()).toEqual(['Instance/InsufficientCapacity/Launch', 'Pod/InsufficientCapacity/Provision']);
    expect(f.events[1]!.note).toContain('no sim.large in zone-a');
    expect(f.writes.log).toEqual([]);
  });

  it('says quota, not capacity, when an account quota stops the launch', async () => {
    f.cluster.instanceList = [instance('i-1')];
    f.cluster.podList = [pod('web', { claim: 'i-1' })];
    f.provider.nextCreateError = new QuotaExceededError('VcpuLimitExceeded for the i3 family');
    await expect(controller.reconcile('i-1')).rejects.toBeInstanceOf(QuotaExceededError);
    expect(reasons()).toEqual(['Instance/QuotaExceeded/Launch', 'Pod/QuotaExceeded/Provision']);
  });

  it('backs off as long as the cloud asks when throttled, without an Event or a write', async () => {
    f.cluster.instanceList = [instance('i-1')];
    f.provider.nextCreateError = new ThrottledError('slow down', 7_000);
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 7_000 });
    expect(f.events).toEqual([]);
    expect(f.writes.log).toEqual([]);
  });

  it('says the class is invalid and waits a minute on a configuration error', async () => {
    f.cluster.instanceList = [instance('i-1')];
    f.cluster.podList = [pod('web', { claim: 'i-1' })];
    f.provider.nextCreateError = new InvalidConfigError('spec.simulated.bootDelay: "soon" is not a duration');
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 60_000 });
    expect(reasons()).toEqual(['Instance/InvalidClass/Launch', 'Pod/InvalidClass/Provision']);
  });

  it('reports any other launch failure as LaunchFailed and rethrows it', async () => {
    f.cluster.instanceList = [instance('i-1')];
    f.provider.nextCreateError = new Error('socket hang up');
    await expect(controller.reconcile('i-1')).rejects.toThrow('socket hang up');
    expect(reasons()).toEqual(['Instance/LaunchFailed/Launch']);
  });

  it('drops an unlaunched Instance whose class is gone, without a cloud call', async () => {
    f.cluster.classList = [];
    f.cluster.instanceList = [instance('i-1')];
    await controller.reconcile('i-1');
    expect(f.provider.createCalls).toEqual([]);
    expect(f.writes.log).toEqual([['instances.delete', 'i-1', undefined]]);
  });

  it('drops an unlaunched Instance whose class is invalid, for its finalizer to find any machine launched for it', async () => {
    f.cluster.instanceList = [instance('i-1')];
    f.provider.validationProblems = ['spec.simulated.bootDelay: not a duration'];
    await controller.reconcile('i-1');
    expect(f.provider.createCalls).toEqual([]);
    expect(f.writes.log).toEqual([['instances.delete', 'i-1', undefined]]);
  });

  it('keeps an unlaunched Instance of a provider not run here, says why, and restarts its launch clock', async () => {
    const here = f.cluster.classList[0]!;
    const elsewhere = cls({ simulated: undefined, aws: { subnetSelector: { team: 'a' } } as never });
    f.cluster.instanceList = [instance('i-1')];
    f.cluster.podList = [pod('web', { claim: 'i-1' })];
    // A first attempt, throttled: the launch clock starts.
    f.provider.nextCreateError = new ThrottledError('slow down', 1_000);
    await controller.reconcile('i-1');
    // The class now names a provider this controller does not run (--providers): another replica, or
    // the next version, may. Kept, said so, and nothing launched.
    f.cluster.classList = [elsewhere];
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 60_000 });
    expect(f.provider.createCalls).toHaveLength(1);
    expect(f.writes.log).toEqual([]);
    expect(reasons()).toEqual(['Instance/InvalidClass/Launch', 'Pod/InvalidClass/Provision']);
    expect(f.events[0]!.note).toContain('does not run');
    // Back to a provider run here after longer than launchTimeout: launched, not replaced for the wait.
    f.clock.now += 11 * MIN;
    f.cluster.classList = [here];
    await controller.reconcile('i-1');
    expect(f.provider.createCalls).toHaveLength(2);
    expect(f.writes.of('instances.delete')).toEqual([]);
  });

  it('cancels an unlaunched Instance of a provider not run here once nobody claims it', async () => {
    f.cluster.classList = [cls({ simulated: undefined, aws: { subnetSelector: { team: 'a' } } as never })];
    f.cluster.instanceList = [instance('i-1')];
    await controller.reconcile('i-1');
    expect(f.writes.log).toEqual([]);
    f.clock.now += 31_000;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toHaveLength(1);
    expect(reasons()).toContain('Instance/LaunchCancelled/Launch');
  });
});

describe('liveness', () => {
  it('replaces an Instance not launched within launchTimeout of its first attempt, guarded by its resourceVersion', async () => {
    f.cluster.instanceList = [{ ...instance('i-1'), metadata: { ...instance('i-1').metadata, resourceVersion: '42' } }];
    f.cluster.podList = [pod('web', { claim: 'i-1' })];
    // Created 11 minutes ago but only now reached by the queue (the tail of a burst): it gets its launch.
    f.clock.now = T0 + 11 * MIN;
    f.provider.nextCreateError = new ThrottledError('slow down', 1_000);
    await controller.reconcile('i-1');
    expect(f.provider.createCalls).toHaveLength(1);
    expect(f.writes.log).toEqual([]);
    // Ten minutes of failed attempts later, it is replaced.
    f.clock.now += 10 * MIN;
    await controller.reconcile('i-1');
    expect(f.provider.createCalls).toHaveLength(1);
    expect(f.writes.log).toEqual([['instances.delete', 'i-1', '42']]);
    expect(reasons()).toEqual(['Instance/LaunchTimeout/Launch', 'Pod/LaunchTimeout/Provision']);
  });

  it('replaces an Instance whose node did not become Ready within registrationTimeout, as a Register failure', async () => {
    f.cluster.instanceList = [instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0) })];
    f.clock.now = T0 + 16 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toHaveLength(1);
    expect(reasons()).toEqual(['Instance/RegistrationTimeout/Register']);
  });

  it('asks to be called back when the registration timeout would expire', async () => {
    f.cluster.instanceList = [instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0) })];
    f.cluster.podList = [pod('web', { claim: 'i-1' })];
    f.clock.now = T0 + 14 * MIN;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 30_000 });
    f.clock.now = T0 + 15 * MIN - 5_000;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 5_000 });
  });
});

describe('a launch the cloud accepted and keeps failing to make (a GCE group retrying on a stockout)', () => {
  beforeEach(() => {
    f.cluster.instanceList = [
      instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0), resourceVersion: '42' }),
    ];
    f.cluster.podList = [pod('web', { claim: 'i-1' })];
  });

  it('is replaced once the cloud reports no capacity there, without waiting out registrationTimeout', async () => {
    f.provider.stalls.set(
      'sim:///n1',
      new InsufficientCapacityError('MIG us-central1-a/pool keeps failing: ZONE_RESOURCE_POOL_EXHAUSTED'),
    );
    // Asked no sooner than 30 s after the launch: the cloud is given its first tries.
    f.clock.now = T0 + 10_000;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 20_000 });
    expect(f.provider.stalledCalls).toEqual([]);
    f.clock.now = T0 + 30_000;
    await controller.reconcile('i-1');
    expect(f.provider.stalledCalls).toEqual(['sim:///n1']);
    expect(f.writes.log).toEqual([['instances.delete', 'i-1', '42']]);
    expect(reasons()).toEqual(['Instance/InsufficientCapacity/Launch', 'Pod/InsufficientCapacity/Provision']);
    expect(f.events[0]!.note).toContain('ZONE_RESOURCE_POOL_EXHAUSTED');
  });

  it('says quota when a quota stops it', async () => {
    f.provider.stalls.set('sim:///n1', new QuotaExceededError("Quota 'CPUS' exceeded"));
    f.clock.now = T0 + MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toHaveLength(1);
    expect(reasons()).toEqual(['Instance/QuotaExceeded/Launch', 'Pod/QuotaExceeded/Provision']);
  });

  it('keeps waiting while the cloud is still trying without a failure, or cannot be asked, or fails otherwise', async () => {
    f.clock.now = T0 + MIN;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 30_000 });
    // Not asked again within 30 s however often the Instance is reconciled.
    f.clock.now += 10_000;
    await controller.reconcile('i-1');
    expect(f.provider.stalledCalls).toHaveLength(1);
    f.clock.now += 20_000;
    f.provider.nextStalledError = new Error('listManagedInstances: 503');
    await controller.reconcile('i-1');
    f.clock.now += 30_000;
    f.provider.stalls.set('sim:///n1', new InvalidConfigError('image not found'));
    await controller.reconcile('i-1');
    expect(f.provider.stalledCalls).toHaveLength(3);
    expect(f.writes.log).toEqual([]);
    expect(reasons()).toEqual([]);
  });

  it('is not asked about once its node has joined', async () => {
    f.cluster.nodeList = [node('n1', { ready: false, class: CLASS, instance: 'i-1' })];
    f.provider.stalls.set('sim:///n1', new InsufficientCapacityError('stockout'));
    f.clock.now = T0 + MIN;
    await controller.reconcile('i-1');
    expect(f.provider.stalledCalls).toEqual([]);
    expect(f.writes.of('instances.delete')).toEqual([]);
  });
});

describe('cancelling a launch nobody wants', () => {
  it('terminates an instance still booting once no pod has claimed it for a while', async () => {
    f.cluster.instanceList = [instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0) })];
    f.cluster.instanceList[0]!.metadata.resourceVersion = '3';
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
    f.clock.now += 31_000;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '3']]);
    expect(reasons()).toEqual(['Instance/LaunchCancelled/Launch']);
  });

  it('keeps one a pass of provisioning has just given a pod, before the claim reaches the cache', async () => {
    f.cluster.instanceList = [instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0) })];
    await controller.reconcile('i-1');
    f.clock.now += 31_000;
    // The claim is on its way: the pod cache does not show it, and the Instance's version did not move.
    f.ctx.claims.add('i-1', f.clock.now - 10);
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
  });

  it('keeps one that a pod claims again within the grace (a new pod took it)', async () => {
    f.cluster.instanceList = [instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0) })];
    await controller.reconcile('i-1');
    f.cluster.podList = [pod('next', { claim: 'i-1' })];
    f.clock.now += 31_000;
    await controller.reconcile('i-1');
    f.cluster.podList = [pod('next', { claim: 'i-1', deleting: true })];
    f.clock.now += 10_000;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
  });
});

describe('registration', () => {
  it('records registration and readiness once, even when the cache has not caught up with the write', async () => {
    f.cluster.instanceList = [instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0) })];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1' })];
    f.cluster.podList = [pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Running', gated: false })];
    f.clock.now = T0 + 2 * MIN;
    await controller.reconcile('i-1');
    await controller.reconcile('i-1');
    expect(reasons()).toEqual([]); // as planned: recorded in the status, no Event
    expect(f.writes.of('instances.patchStatus')).toEqual([
      [
        'i-1',
        {
          phase: 'Ready',
          nodeName: 'n1',
          registeredAt: iso(2 * MIN),
          readyAt: iso(2 * MIN),
          pods: [{ namespace: 'team-a', name: 'web', uid: 'uid-team-a-web' }],
        },
      ],
    ]);
  });

  it('cordons and reports a node whose labels claim another class or Instance, and never readies it', async () => {
    f.cluster.instanceList = [instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0) })];
    f.cluster.podList = [pod('web', { claim: 'i-1' })];
    f.cluster.nodeList = [node('n1', { class: 'other', instance: 'i-9', providerID: 'sim:///n1' })];
    await controller.reconcile('i-1');
    expect(f.writes.of('nodes.cordon')).toEqual([['n1']]);
    expect(f.writes.of('instances.patchStatus')).toEqual([]);
    expect(reasons()).toEqual(['Instance/NodeLabelsTampered/Register', 'Node/NodeLabelsTampered/Register']);
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-9', providerID: 'sim:///n1' })];
    await controller.reconcile('i-1');
    expect(f.events.at(-1)!.note).toContain('names another Instance');
  });

  it("cordons and reports a node registered without its class's taints, and never readies it", async () => {
    f.cluster.instanceList = [instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0) })];
    f.cluster.podList = [pod('web', { claim: 'i-1' })];
    // A class's own user data, or a GKE pool created without --node-taints: labels right, no taints.
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1', providerID: 'sim:///n1', untainted: true })];
    await controller.reconcile('i-1');
    expect(f.writes.of('nodes.cordon')).toEqual([['n1']]);
    expect(f.writes.of('instances.patchStatus')).toEqual([]);
    expect(reasons()).toEqual([
      'Instance/NodeTaintsMissing/Register',
      'Node/NodeTaintsMissing/Register',
      'InstanceClass/NodeTaintsMissing/Register',
    ]);
    const [onInstance, , onClass] = f.events;
    expect(onInstance!.note).toContain(
      'node n1 of Instance i-1 is missing the taints ipp.dev/class=metal:NoSchedule and ipp.dev/class=metal:NoExecute',
    );
    expect(onInstance!.note).toContain('{{ipp:register-with-taints}}');
    expect(onInstance!.note).toContain('never given a pod');
    // The class's note names no node or Instance: one series however many of its nodes register so.
    expect(onClass!.note).toMatch(/^nodes of class metal register without the taints .*: ipp cordons them/);
    expect(onClass!.note).not.toMatch(/n1|i-1/);
    // One of the two is as open: a bound pod runs there unless NoExecute keeps it off.
    const half = node('n1', { class: 'metal', instance: 'i-1', providerID: 'sim:///n1', unschedulable: true });
    half.spec!.taints = half.spec!.taints!.filter((t) => t.effect === 'NoSchedule');
    f.cluster.nodeList = [half];
    await controller.reconcile('i-1');
    expect(f.events.at(-1)!.note).toMatch(/register without the taint ipp\.dev\/class=metal:NoExecute:/);
    expect(f.writes.of('instances.patchStatus')).toEqual([]);
    // At its registration timeout it is replaced, and the Event says why: not the boot, the taints.
    f.clock.now = T0 + 16 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toHaveLength(1);
    const timeout = f.events.find((e) => e.reason === 'RegistrationTimeout' && e.regarding.kind === 'Instance')!;
    expect(timeout.note).toMatch(/node n1 joined within registrationTimeout but was refused: it is missing the taint/);
  });

  it('cordons the node of a Ready Instance whose taints were removed, keeping its pods, and tells no class', async () => {
    const ready = instance('i-1', { phase: 'Ready', providerID: 'sim:///n1', launchedAt: iso(0) });
    ready.status = { ...ready.status, readyAt: iso(MIN), registeredAt: iso(MIN), nodeName: 'n1' };
    f.cluster.instanceList = [ready];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1', untainted: true })];
    f.cluster.podList = [pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Running', gated: false })];
    await controller.reconcile('i-1');
    expect(f.writes.of('nodes.cordon')).toEqual([['n1']]);
    expect(f.writes.of('pods.evict')).toEqual([]);
    expect(reasons()).toEqual(['Instance/NodeTaintsMissing/Register', 'Node/NodeTaintsMissing/Register']);
    expect(f.events[0]!.note).toContain('removed after it registered: cordoned, it keeps the pods it runs');
  });

  it('writes nothing when the world matches the status, whatever the key order the server returned', async () => {
    const ready = instance('i-1', { phase: 'Ready', providerID: 'sim:///n1', launchedAt: iso(0) });
    ready.status = {
      pods: [{ uid: 'uid-team-a-web', name: 'web', namespace: 'team-a' }],
      readyAt: iso(MIN),
      registeredAt: iso(MIN),
      nodeName: 'n1',
      ...ready.status,
    };
    f.cluster.instanceList = [ready];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1' })];
    f.cluster.podList = [pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Running', gated: false })];
    await controller.reconcile('i-1');
    expect(f.writes.log).toEqual([]);
  });
});

describe('idle', () => {
  const readyIdle = (idleSince?: string) => {
    const i = instance('i-1', { phase: 'Ready', providerID: 'sim:///n1', launchedAt: iso(0), idleSince });
    i.status = { ...i.status, nodeName: 'n1', registeredAt: iso(0), readyAt: iso(0), pods: [] };
    i.metadata.resourceVersion = '7';
    return i;
  };
  beforeEach(() => {
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1' })];
  });

  it('marks an empty Ready instance idle, says so, and comes back when its idleTimeout ends', async () => {
    f.cluster.instanceList = [readyIdle()];
    const r = await controller.reconcile('i-1');
    expect(f.writes.of('instances.patchStatus')).toEqual([['i-1', { idleSince: iso(0) }]]);
    expect(reasons()).toEqual(['Instance/BecameIdle/Idle']);
    expect(r).toEqual({ requeueAfterMs: 30_000 });
  });

  it('is not kept by a pod of another class, or of none, that names it in an ipp.dev/instance annotation', async () => {
    f.cluster.instanceList = [readyIdle()];
    f.cluster.podList = [
      pod('squatter', { class: null, claim: 'i-1' }),
      pod('other-class', { class: 'other', claim: 'i-1' }),
    ];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.patchStatus')).toEqual([['i-1', { idleSince: iso(0) }]]);
  });

  it('tears down, once idle, a Ready instance whose node has since rewritten its labels (cordoned, never billed forever)', async () => {
    f.cluster.instanceList = [readyIdle(iso(0))];
    f.cluster.nodeList = [node('n1', { class: 'other', instance: 'i-9', providerID: 'sim:///n1' })];
    f.clock.now = T0 + 6 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('nodes.cordon')).toEqual([['n1']]);
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '7']]);
  });

  it('tears down an instance idle past its idleTimeout, only at the version it saw', async () => {
    f.cluster.instanceList = [readyIdle(iso(0))];
    f.clock.now = T0 + 6 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.log).toEqual([['instances.delete', 'i-1', '7']]);
    expect(reasons()).toEqual(['Instance/Idle/Teardown']);
  });

  it('neither idles nor tears down an instance a pass has just given a pod, before the claim reaches the cache', async () => {
    f.cluster.instanceList = [readyIdle(iso(0))];
    f.clock.now = T0 + 6 * MIN;
    f.ctx.claims.add('i-1', f.clock.now - 10);
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
    expect(f.writes.of('instances.patchStatus')).toEqual([['i-1', { idleSince: null }]]);
  });

  it('backs off without a write when a pod reserved the instance meanwhile (409)', async () => {
    f.cluster.instanceList = [readyIdle(iso(0))];
    f.clock.now = T0 + 6 * MIN;
    f.writes.failNext.set('instances.delete', { code: 409, body: { reason: 'Conflict', message: 'changed' } });
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 250 });
    expect(f.writes.of('instances.patchStatus')).toEqual([]);
    expect(f.events).toEqual([]);
  });

  it('clears idleSince when a pod arrives', async () => {
    f.cluster.instanceList = [readyIdle(iso(0))];
    f.cluster.podList = [pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Running', gated: false })];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.patchStatus')).toEqual([
      ['i-1', { idleSince: null, pods: [{ namespace: 'team-a', name: 'web', uid: 'uid-team-a-web' }] }],
    ]);
  });

  it('releases an instance whose only pod is stranded on it (pinned, refused by the scheduler for longer than strandedAfter)', async () => {
    f.cluster.instanceList = [readyIdle()];
    const stuck = refusedPin(pod('bare', { claim: 'i-1', gated: false }), 'n1', new Date(T0));
    f.cluster.podList = [stuck];
    f.clock.now = T0 + 60_000;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.patchStatus')).toEqual([
      ['i-1', expect.objectContaining({ pods: [expect.anything()] })],
    ]);
    // Stranded on a clock, not an event: the reconcile before asks to be back at that moment.
    f.clock.now = T0 + STRANDED_AFTER_MS - 5_000;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 5_000 });
    f.clock.now = T0 + 3 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.patchStatus').at(-1)).toEqual(['i-1', { idleSince: iso(3 * MIN) }]);
  });
});

describe('termination', () => {
  const deleting = () => {
    const i = instance('i-1', { phase: 'Ready', providerID: 'fake:///zone-a/uid-i-1', deleting: true });
    i.metadata.finalizers = [FINALIZER];
    return i;
  };

  /** A cloud machine launched for i-1. */
  const machine = (providerID: string, zone = 'zone-a') => ({
    providerID,
    instanceType: 'sim.large',
    zone,
    state: 'running' as const,
    tags: { 'ipp.dev/instance': 'i-1' },
    launchedAt: new Date(T0),
  });
  /** i-1 as the cache shows it once its Draining status is back. */
  const draining = () => {
    const i = deleting();
    i.status = { ...i.status, phase: 'Draining' };
    i.metadata.resourceVersion = '8';
    return i;
  };

  it('drains, deletes the node, terminates the instance and any tagged copy, then releases the finalizer', async () => {
    f.cluster.instanceList = [deleting()];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1', providerID: 'fake:///zone-a/uid-i-1' })];
    f.provider.instances.set('fake:///zone-b/copy', machine('fake:///zone-b/copy', 'zone-b'));
    f.provider.instances.set('fake:///zone-a/uid-i-1', machine('fake:///zone-a/uid-i-1'));
    await controller.reconcile('i-1');
    expect(f.writes.log).toEqual([
      ['instances.patchStatus', 'i-1', { phase: 'Draining' }],
      ['nodes.cordon', 'n1'],
      ['nodes.cordonAndDelete', 'n1'],
      ['instances.removeFinalizer', 'i-1'],
    ]);
    expect(f.provider.deleteCalls.sort()).toEqual(['fake:///zone-a/uid-i-1', 'fake:///zone-b/copy']);
    expect(reasons()).toEqual(['Instance/Terminated/Terminate']);
  });

  it('terminates the recorded machine even when the search for copies fails, and finishes once it succeeds', async () => {
    f.cluster.instanceList = [deleting()];
    const recorded = machine('fake:///zone-a/uid-i-1');
    f.provider.instances.set(recorded.providerID, recorded);
    f.provider.nextListError = new Error('zones/zone-b could not be listed: unreachable; will try again');
    await expect(controller.reconcile('i-1')).rejects.toThrow(/could not be listed/);
    expect(f.provider.instances.has(recorded.providerID)).toBe(false);
    expect(f.writes.of('instances.removeFinalizer')).toEqual([]);
    f.cluster.instanceList = [draining()];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.removeFinalizer')).toEqual([['i-1']]);
  });

  it('keeps the node while the API server has a pod on it that the cache does not show yet', async () => {
    f.cluster.instanceList = [deleting()];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1', providerID: 'fake:///zone-a/uid-i-1' })];
    f.provider.instances.set('fake:///zone-a/uid-i-1', machine('fake:///zone-a/uid-i-1'));
    f.cluster.apiPods = [pod('late', { claim: 'i-1', gated: false, nodeName: 'n1', phase: 'Running' })];
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 5_000 });
    expect(f.writes.of('nodes.cordonAndDelete')).toEqual([]);
    expect(f.provider.instances.has('fake:///zone-a/uid-i-1')).toBe(true);
    // Once the API server has none either, the node goes.
    f.cluster.apiPods = [];
    f.cluster.instanceList = [draining()];
    await controller.reconcile('i-1');
    expect(f.writes.of('nodes.cordonAndDelete')).toEqual([['n1']]);
  });

  it('leaves alone a node that took its recorded name since (another machine): no cordon, eviction or delete', async () => {
    const gone = deleting();
    gone.status = { ...gone.status, nodeName: 'n1' };
    f.cluster.instanceList = [gone];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'other', providerID: 'fake:///zone-a/other' })];
    f.cluster.podList = [pod('victim', { nodeName: 'n1', phase: 'Running', gated: false })];
    await controller.reconcile('i-1');
    expect(f.writes.log.filter(([w]) => w.startsWith('nodes.') || w.startsWith('pods.'))).toEqual([]);
    expect(f.writes.of('instances.removeFinalizer')).toEqual([['i-1']]);
  });

  describe('drain', () => {
    const onNode = (name: string, annotations: Record<string, string> = {}) => {
      const p = pod(name, { nodeName: 'n1', phase: 'Running', gated: false });
      p.metadata!.annotations = { ...p.metadata!.annotations, ...annotations };
      return p;
    };
    beforeEach(() => {
      f.cluster.instanceList = [deleting()];
      f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1', providerID: 'fake:///zone-a/uid-i-1' })];
    });

    it('evicts the pods of a healthy node, tells them, and waits for them before deleting anything', async () => {
      f.cluster.podList = [
        onNode('web'),
        onNode('ds', {}),
        { ...onNode('going'), metadata: { ...onNode('going').metadata, deletionTimestamp: new Date(T0) } },
      ];
      f.cluster.podList[1]!.metadata!.ownerReferences = [
        { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'd', uid: 'd', controller: true },
      ];
      expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 5_000 });
      expect(f.writes.of('pods.evict')).toEqual([['web']]);
      expect(f.writes.of('nodes.cordonAndDelete')).toEqual([]);
      expect(f.provider.deleteCalls).toEqual([]);
      expect(reasons()).toEqual(['Pod/Evicting/Drain']);
    });

    it('goes on with the other pods when one eviction is refused (a webhook whose cache lags, a 500)', async () => {
      f.cluster.podList = [onNode('web'), onNode('api')];
      f.writes.failNext.set('pods.evict', { code: 403, body: { reason: 'Forbidden', message: 'not in the cache' } });
      expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 5_000 });
      expect(f.writes.of('pods.evict')).toEqual([['web'], ['api']]);
    });

    it('evicts a pod once, though the next pass still reads it from a cache without the eviction', async () => {
      f.cluster.podList = [onNode('web'), onNode('api')];
      // Draining already: no status write of ours holds the second pass back.
      f.cluster.instanceList[0]!.status!.phase = 'Draining';
      f.writes.failNext.set('pods.evict', { code: 403, body: { reason: 'Forbidden', message: 'not in the cache' } });
      await controller.reconcile('i-1');
      await controller.reconcile('i-1');
      // web's refused eviction is tried again; api's accepted one is not sent twice.
      expect(f.writes.of('pods.evict')).toEqual([['web'], ['api'], ['web']]);
      expect(reasons()).toEqual(['Pod/Evicting/Drain', 'Pod/Evicting/Drain']);
      // A pod the cache still shows running a minute after its eviction was accepted is evicted again.
      f.clock.now += 59_999;
      await controller.reconcile('i-1');
      expect(f.writes.of('pods.evict')).toEqual([['web'], ['api'], ['web']]);
      f.clock.now += 1;
      await controller.reconcile('i-1');
      expect(f.writes.of('pods.evict')).toEqual([['web'], ['api'], ['web'], ['web'], ['api']]);
    });

    it('says which pod a PodDisruptionBudget protects, and keeps waiting', async () => {
      f.cluster.podList = [onNode('web')];
      f.writes.failNext.set('pods.evict', {
        code: 429,
        body: { reason: 'TooManyRequests', message: 'would violate the PDB' },
      });
      expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 5_000 });
      expect(reasons()).toEqual(['Pod/EvictionBlocked/Drain']);
      expect(f.events[0]!.note).toContain('would violate the PDB');
    });

    it('does not disrupt a pod annotated ipp.dev/do-not-disrupt while its node is healthy', async () => {
      f.cluster.podList = [onNode('web', { 'ipp.dev/do-not-disrupt': 'true' })];
      expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 30_000 });
      expect(f.writes.of('pods.evict')).toEqual([]);
      expect(reasons()).toEqual(['Instance/DisruptionBlocked/Drain', 'Pod/DisruptionBlocked/Provision']);
    });

    const notReadyFor = (ms: number) => {
      const n = node('n1', { class: 'metal', instance: 'i-1', providerID: 'fake:///zone-a/uid-i-1', ready: false });
      n.status!.conditions![0]!.lastTransitionTime = new Date(T0 - ms);
      return n;
    };

    it('goes ahead on a node NotReady for repairAfter, whose pods are down already', async () => {
      f.cluster.nodeList = [notReadyFor(10 * MIN)];
      f.cluster.podList = [onNode('web', { 'ipp.dev/do-not-disrupt': 'true' })];
      await controller.reconcile('i-1');
      expect(f.writes.of('pods.evict')).toEqual([]);
      expect(f.writes.of('nodes.cordonAndDelete')).toEqual([['n1']]);
      expect(f.writes.of('instances.removeFinalizer')).toHaveLength(1);
    });

    const machine = (state: 'running' | 'terminated') =>
      f.provider.instances.set('fake:///zone-a/uid-i-1', {
        providerID: 'fake:///zone-a/uid-i-1',
        instanceType: 'x',
        zone: 'a',
        state,
        tags: {},
        launchedAt: new Date(T0),
      });

    it('keeps draining a node NotReady for less than repairAfter (a kubelet restart): its pods may still run', async () => {
      // Draining already (no status write whose watch event the next reconcile would wait for).
      f.cluster.instanceList = [{ ...deleting(), status: { ...deleting().status, phase: 'Draining' } }];
      f.cluster.nodeList = [notReadyFor(MIN)];
      machine('running');
      f.cluster.podList = [onNode('web'), onNode('relay', { 'ipp.dev/do-not-disrupt': 'true' })];
      expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 30_000 });
      f.cluster.podList = [onNode('web')];
      expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 5_000 });
      expect(f.writes.of('pods.evict')).toEqual([['web']]);
      expect(f.writes.of('nodes.cordonAndDelete')).toEqual([]);
      expect(f.provider.deleteCalls).toEqual([]);
      expect(f.writes.of('instances.removeFinalizer')).toEqual([]);
    });

    it('goes ahead on a node NotReady a moment when the cloud says its machine is gone (or cannot find it)', async () => {
      f.cluster.nodeList = [notReadyFor(MIN)];
      f.cluster.podList = [onNode('web', { 'ipp.dev/do-not-disrupt': 'true' })];
      machine('terminated');
      await controller.reconcile('i-1');
      expect(f.writes.of('pods.evict')).toEqual([]);
      expect(f.writes.of('nodes.cordonAndDelete')).toEqual([['n1']]);
      expect(f.writes.of('instances.removeFinalizer')).toHaveLength(1);
    });

    it('does not drain a node read without its ipp labels (ipp may not write it): the machine goes, as before', async () => {
      const gone = deleting();
      gone.status = { ...gone.status, nodeName: 'n1', phase: 'Draining' };
      f.cluster.instanceList = [gone];
      f.cluster.nodeList = [];
      f.cluster.apiNodes = [node('n1', { providerID: 'fake:///zone-a/uid-i-1' })];
      f.cluster.podList = [onNode('web')];
      await controller.reconcile('i-1');
      expect(f.writes.log.filter(([w]) => w.startsWith('nodes.') || w.startsWith('pods.'))).toEqual([]);
      expect(f.writes.of('instances.removeFinalizer')).toHaveLength(1);
    });

    it('reads a node missing from the cache before skipping its drain: the cache may lag', async () => {
      const gone = deleting();
      gone.status = { ...gone.status, nodeName: 'n1', phase: 'Draining' };
      f.cluster.instanceList = [gone];
      f.cluster.apiNodes = f.cluster.nodeList;
      f.cluster.nodeList = [];
      f.cluster.podList = [onNode('web')];
      expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 5_000 });
      expect(f.writes.of('pods.evict')).toEqual([['web']]);
      expect(f.provider.deleteCalls).toEqual([]);
      // Really gone (or another machine's node by now): nothing of this instance runs there.
      f.cluster.apiNodes = [node('n1', { class: 'metal', instance: 'other', providerID: 'fake:///zone-a/other' })];
      await controller.reconcile('i-1');
      expect(f.writes.of('pods.evict')).toEqual([['web']]);
      expect(f.writes.of('instances.removeFinalizer')).toHaveLength(1);
    });
  });

  it('finds copies with one filtered call, never by listing the whole cloud', async () => {
    f.cluster.instanceList = [deleting()];
    f.provider.findByInstance = async (name: string) =>
      [...f.provider.instances.values()].filter((c) => c.tags['ipp.dev/instance'] === name);
    await controller.reconcile('i-1');
    expect(f.provider.listCalls).toBe(0);
    expect(f.writes.of('instances.removeFinalizer')).toHaveLength(1);
  });

  it('counts an instance already gone in the cloud as terminated', async () => {
    f.cluster.instanceList = [deleting()];
    await controller.reconcile('i-1');
    expect(f.provider.deleteCalls).toEqual(['fake:///zone-a/uid-i-1']);
    expect(f.writes.of('instances.removeFinalizer')).toHaveLength(1);
  });

  it('asks again before calling gone an instance the cloud does not show moments after its launch (EC2 reads lag)', async () => {
    const young = deleting();
    young.status = { ...young.status, launchedAt: iso(-30_000) };
    f.cluster.instanceList = [young];
    const unseen = () => new NotFoundError('not shown by DescribeInstances', { unseen: true });
    f.provider.nextDeleteError = unseen();
    await controller.reconcile('i-1');
    expect(f.provider.deleteCalls).toEqual(['fake:///zone-a/uid-i-1']);
    expect(f.writes.of('instances.removeFinalizer'), 'not gone yet: it may be the cloud lagging').toEqual([]);
    f.clock.now = T0 + 2 * MIN;
    f.provider.nextDeleteError = unseen();
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.removeFinalizer'), 'still not shown two minutes after its launch: gone').toHaveLength(
      1,
    );
  });

  it('takes as gone at once a young instance the cloud reports terminated', async () => {
    const young = deleting();
    young.status = { ...young.status, launchedAt: iso(-30_000) };
    f.cluster.instanceList = [young];
    f.provider.nextDeleteError = new NotFoundError('EC2 instance i-1 is gone');
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.removeFinalizer')).toHaveLength(1);
  });

  it('keeps the finalizer of an Instance whose cloud instance is tagged for another cluster (ipp terminates nothing not its own)', async () => {
    f.cluster.instanceList = [deleting()];
    f.provider.foreign.add('fake:///zone-a/uid-i-1');
    await expect(controller.reconcile('i-1')).rejects.toThrow(/another cluster/);
    expect(f.writes.of('instances.removeFinalizer')).toEqual([]);
  });

  it('keeps the finalizer when the cloud refuses the termination', async () => {
    f.cluster.instanceList = [deleting()];
    f.provider.instances.set('fake:///zone-a/uid-i-1', {
      providerID: 'fake:///zone-a/uid-i-1',
      instanceType: 'x',
      zone: 'a',
      state: 'running',
      tags: {},
      launchedAt: new Date(T0),
    });
    f.provider.nextDeleteError = new Error('UnauthorizedOperation');
    await expect(controller.reconcile('i-1')).rejects.toThrow('UnauthorizedOperation');
    expect(f.writes.of('instances.removeFinalizer')).toEqual([]);
  });

  it('keeps the finalizer and says which flag is missing when its provider is not enabled', async () => {
    const i = deleting();
    i.status!.provider = 'aws';
    f.cluster.instanceList = [i];
    await expect(controller.reconcile('i-1')).rejects.toThrow('--providers');
    expect(f.writes.of('instances.removeFinalizer')).toEqual([]);
  });
});

describe('repair', () => {
  const ready = (name = 'i-1') => {
    const i = instance(name, { phase: 'Ready', providerID: `sim:///${name}`, launchedAt: iso(0) });
    i.status = { ...i.status, nodeName: `n-${name}`, registeredAt: iso(0), readyAt: iso(0), pods: [] };
    i.metadata.resourceVersion = '9';
    return i;
  };
  const running = pod('web', { claim: 'i-1', nodeName: 'n-i-1', phase: 'Running', gated: false });
  /** The cloud instance of ready(name), in `state`. */
  const inCloud = (name = 'i-1', state: CloudState = 'running') =>
    f.provider.instances.set(`sim:///${name}`, {
      providerID: `sim:///${name}`,
      instanceType: 'sim.small',
      zone: 'zone-a',
      state,
      tags: {},
      launchedAt: new Date(T0),
    });
  beforeEach(() => {
    inCloud('i-1');
    inCloud('i-3');
  });

  it('never replaces a Ready instance whose node the cache lacks but the API server has (a cache gap)', async () => {
    f.cluster.instanceList = [ready()];
    f.cluster.podList = [running];
    f.cluster.apiNodes = [node('n-i-1', { class: 'metal', instance: 'i-1', providerID: 'sim:///i-1' })];
    f.clock.now = T0 + 60 * MIN;
    const r = await controller.reconcile('i-1');
    expect(f.writes.log).toEqual([]);
    expect(f.events).toEqual([]);
    expect(r).toEqual({ requeueAfterMs: 2_000 });
  });

  it('replaces at once an instance whose node dropped its ipp labels (out of the node cache, open to any pod)', async () => {
    f.cluster.instanceList = [ready()];
    f.cluster.podList = [running];
    // Its own Node by providerID, without ipp.dev/class: its kubelet removed it.
    f.cluster.apiNodes = [node('n-i-1', { providerID: 'sim:///i-1' })];
    f.clock.now = T0 + 60 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
    expect(reasons()).toEqual(['Instance/NodeLabelsTampered/Repair', 'Pod/NodeLabelsTampered/Provision']);
    expect(f.events[0]!.note).toContain('its label ipp.dev/class=(none) is not the class metal');
  });

  it('waits repairAfter for a node that is really gone (a kubelet re-registering), then replaces the instance', async () => {
    f.cluster.instanceList = [ready()];
    f.cluster.podList = [running];
    f.clock.now = T0 + 60 * MIN;
    await controller.reconcile('i-1');
    f.clock.now += 9 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
    expect(f.writes.of('instances.patchStatus')).toEqual([]);
    f.clock.now += 2 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
    expect(reasons()).toEqual(['Instance/NodeLost/Repair', 'Pod/NodeLost/Provision']);
  });

  it('forgets a missing node that came back', async () => {
    f.cluster.instanceList = [ready()];
    f.clock.now = T0 + 60 * MIN;
    await controller.reconcile('i-1');
    f.cluster.nodeList = [node('n-i-1', { class: 'metal', instance: 'i-1', providerID: 'sim:///i-1' })];
    f.clock.now += 9 * MIN;
    await controller.reconcile('i-1');
    f.cluster.nodeList = [];
    f.clock.now += 2 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
  });

  it('replaces an instance whose node has been NotReady for longer than repairAfter', async () => {
    const sick = node('n-i-1', { class: 'metal', instance: 'i-1', providerID: 'sim:///i-1', ready: false });
    sick.status!.conditions![0]!.lastTransitionTime = new Date(T0 + 50 * MIN);
    f.cluster.instanceList = [ready()];
    f.cluster.nodeList = [sick];
    f.cluster.podList = [running];
    f.clock.now = T0 + 55 * MIN;
    // The cloud says it runs: ask it again in 10 s, replace at repairAfter.
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 10_000 });
    expect(f.writes.of('instances.delete')).toEqual([]);
    f.clock.now = T0 + 61 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
    expect(reasons()).toEqual(['Instance/NodeRepair/Repair', 'Pod/NodeRepair/Provision']);
  });

  it('asks the cloud at once about a NotReady node; one the cloud reports terminated is replaced without waiting, its pod deleted', async () => {
    const dead = node('n-i-1', { class: 'metal', instance: 'i-1', providerID: 'sim:///i-1', ready: false });
    dead.status!.conditions![0]!.lastTransitionTime = new Date(T0 + 60 * MIN);
    inCloud('i-1', 'terminated');
    f.cluster.instanceList = [ready()];
    f.cluster.nodeList = [dead];
    f.cluster.podList = [running];
    f.clock.now = T0 + 60 * MIN + 1_000;
    await controller.reconcile('i-1');
    expect(f.provider.getCalls).toEqual(['sim:///i-1']);
    expect(f.writes.of('pods.forceDelete')).toEqual([['web']]);
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
    expect(reasons()).toEqual(['Instance/InstanceTerminated/Repair', 'Pod/InstanceTerminated/Provision']);
    expect(f.events[0]!.note).toContain('terminated');
  });

  it('replaces at once the instance of a node that is gone when the cloud no longer has it', async () => {
    f.provider.instances.delete('sim:///i-1');
    f.cluster.instanceList = [ready()];
    f.cluster.podList = [running];
    f.clock.now = T0 + 60 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
    expect(f.writes.of('pods.forceDelete')).toEqual([['web']]);
    expect(reasons()[0]).toBe('Instance/InstanceTerminated/Repair');
  });

  it('never deletes the pods of a node that took the gone node’s name (EKS names nodes by their IP, which EC2 reuses)', async () => {
    f.provider.instances.delete('sim:///i-1');
    f.cluster.instanceList = [ready()];
    // Another machine registered under the recorded name; its pod is not this Instance's.
    f.cluster.nodeList = [node('n-i-1', { class: 'metal', instance: 'other', providerID: 'sim:///other' })];
    f.cluster.podList = [pod('victim', { nodeName: 'n-i-1', phase: 'Running', gated: false })];
    f.clock.now = T0 + 60 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
    expect(f.writes.of('pods.forceDelete')).toEqual([]);
  });

  it('asks the cloud about a node tainted shut down, and replaces a stopped instance', async () => {
    const shut = node('n-i-1', { class: 'metal', instance: 'i-1', providerID: 'sim:///i-1' });
    shut.spec!.taints = [{ key: 'node.cloudprovider.kubernetes.io/shutdown', effect: 'NoSchedule' }];
    inCloud('i-1', 'stopping');
    f.cluster.instanceList = [ready()];
    f.cluster.nodeList = [shut];
    f.clock.now = T0 + 60 * MIN;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
  });

  it('keeps the repairAfter grace when the cloud says the instance runs, and asks again only after a while', async () => {
    const sick = node('n-i-1', { class: 'metal', instance: 'i-1', providerID: 'sim:///i-1', ready: false });
    sick.status!.conditions![0]!.lastTransitionTime = new Date(T0 + 60 * MIN);
    f.cluster.instanceList = [ready()];
    f.cluster.nodeList = [sick];
    f.cluster.podList = [running];
    f.clock.now = T0 + 60 * MIN;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 10_000 });
    cacheShowsWrites(f);
    f.clock.now += 1_000;
    await controller.reconcile('i-1');
    expect(f.provider.getCalls).toHaveLength(1);
    f.clock.now += 10_000;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 20_000 });
    expect(f.provider.getCalls).toHaveLength(2);
    expect(f.writes.of('instances.delete')).toEqual([]);
    expect(f.writes.of('pods.forceDelete')).toEqual([]);
  });

  it('never tears down on a cloud that cannot be asked: an error means wait and ask again', async () => {
    const sick = node('n-i-1', { class: 'metal', instance: 'i-1', providerID: 'sim:///i-1', ready: false });
    sick.status!.conditions![0]!.lastTransitionTime = new Date(T0 + 60 * MIN);
    f.provider.get = async () => {
      throw new ThrottledError('Request limit exceeded');
    };
    f.cluster.instanceList = [ready()];
    f.cluster.nodeList = [sick];
    f.cluster.podList = [running];
    f.clock.now = T0 + 60 * MIN;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 10_000 });
    f.cluster.nodeList = [];
    f.clock.now += 20_000;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
    expect(f.events).toEqual([]);
  });

  it('repairs at most a fifth of a class at once', async () => {
    const going = { ...ready('i-2'), metadata: { ...ready('i-2').metadata, deletionTimestamp: new Date(T0) } };
    f.cluster.instanceList = [ready(), going, ready('i-3')];
    f.cluster.nodeList = [node('n-i-3', { class: 'metal', instance: 'i-3', providerID: 'sim:///i-3' })];
    f.clock.now = T0 + 60 * MIN;
    await controller.reconcile('i-1');
    f.clock.now += 11 * MIN;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 30_000 });
    expect(f.writes.of('instances.delete')).toEqual([]);
  });
});

describe('repair when much of a class looks dead at once', () => {
  const ready = (name: string) => {
    const i = instance(name, { phase: 'Ready', providerID: `sim:///${name}`, launchedAt: iso(0) });
    i.status = { ...i.status, nodeName: `n-${name}`, registeredAt: iso(0), readyAt: iso(0), pods: [] };
    return i;
  };
  const names = ['i-1', 'i-2', 'i-3', 'i-4', 'i-5', 'i-6'];
  const nodeOf = (name: string, ready: boolean) => {
    const n = node(`n-${name}`, { class: 'metal', instance: name, providerID: `sim:///${name}`, ready });
    if (!ready) n.status!.conditions![0]!.lastTransitionTime = new Date(T0);
    return n;
  };
  beforeEach(() => {
    for (const name of names)
      f.provider.instances.set(`sim:///${name}`, {
        providerID: `sim:///${name}`,
        instanceType: 'sim.small',
        zone: 'zone-a',
        state: 'terminated',
        tags: {},
        launchedAt: new Date(T0),
      });
    f.cluster.instanceList = names.map(ready);
  });

  it('suspects the cluster, not the machines: no cloud call, no replacement, one warning on the class', async () => {
    // Three of six NotReady past repairAfter: more than a fifth (rounded up, 2).
    f.cluster.nodeList = names.map((n, i) => nodeOf(n, i >= 3));
    f.clock.now = T0 + 60 * MIN;
    for (const n of names.slice(0, 3)) expect(await controller.reconcile(n)).toEqual({ requeueAfterMs: 30_000 });
    expect(f.provider.getCalls).toEqual([]);
    expect(f.writes.of('instances.delete')).toEqual([]);
    expect(reasons().filter((r) => r.endsWith('/Repair'))).toEqual(['InstanceClass/RepairSuspended/Repair']);
    expect(f.events.find((e) => e.reason === 'RepairSuspended')!.note).toContain(
      '3 of 6 registered instances of class metal',
    );
    const suspended = async () =>
      (await f.metrics.repairSuspended.get()).values.find((v) => v.labels.class === 'metal');
    expect((await suspended())?.value).toBe(1);
    // Most nodes come back; a healthy one's reconcile ends the suspension.
    cacheShowsWrites(f);
    f.cluster.nodeList = names.map((n, i) => nodeOf(n, i >= 1));
    f.clock.now += 10_000;
    await controller.reconcile('i-4');
    expect((await suspended())?.value).toBe(0);
    // The one still dead is a machine question again, and its cloud says terminated.
    await controller.reconcile('i-1');
    expect(f.provider.getCalls).toEqual(['sim:///i-1']);
    // At the version that shows its idleSince write: the one the decision read.
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '1']]);
    expect((await f.metrics.nodeRepairs.get()).values).toEqual([
      expect.objectContaining({ labels: { class: 'metal', reason: 'InstanceTerminated' }, value: 1 }),
    ]);
  });

  it('counts a node missing from the cache as dead too, and halts the steps after repair', async () => {
    f.cluster.nodeList = names.slice(3).map((n) => nodeOf(n, true));
    f.clock.now = T0 + 60 * MIN;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 30_000 });
    expect(f.provider.getCalls).toEqual([]);
    expect(f.writes.log).toEqual([]);
  });

  it('repairs as before while no more than a fifth looks dead', async () => {
    f.cluster.nodeList = names.map((n, i) => nodeOf(n, i >= 2));
    f.clock.now = T0 + 60 * MIN;
    await controller.reconcile('i-1');
    expect(f.provider.getCalls).toEqual(['sim:///i-1']);
    expect(reasons()).toContain('Instance/InstanceTerminated/Repair');
  });
});

describe('statusPatch', () => {
  it('is undefined when only key order differs, and names only changed fields (null removes)', () => {
    expect(
      statusPatch(
        { phase: 'Ready', pods: [{ namespace: 'a', name: 'b', uid: 'c' }] },
        { pods: [{ uid: 'c', name: 'b', namespace: 'a' }], phase: 'Ready' },
      ),
    ).toBeUndefined();
    expect(statusPatch({ phase: 'Ready', idleSince: 'x' }, { phase: 'Ready', idleSince: null })).toEqual({
      idleSince: null,
    });
    expect(statusPatch({}, { readyAt: undefined })).toBeUndefined();
  });
});

describe('warm instances', () => {
  it('are never cancelled for want of a claimer while they boot', async () => {
    f.cluster.instanceList = [
      instance('w-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0), warm: true }),
    ];
    await controller.reconcile('w-1');
    f.clock.now += 5 * MIN;
    await controller.reconcile('w-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
  });

  it('are not idle: no idleSince, no idle teardown however long they wait', async () => {
    const w = instance('w-1', { phase: 'Ready', providerID: 'sim:///n1', launchedAt: iso(0), warm: true });
    w.status = { ...w.status, nodeName: 'n1', registeredAt: iso(0), readyAt: iso(0), pods: [] };
    f.cluster.instanceList = [w];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'w-1' })];
    f.clock.now = T0 + 60 * MIN;
    await controller.reconcile('w-1');
    expect(f.writes.log).toEqual([]);
    expect(f.events).toEqual([]);
  });

  it('still time out like any other when their node never becomes Ready', async () => {
    f.cluster.instanceList = [
      instance('w-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0), warm: true }),
    ];
    f.clock.now = T0 + 16 * MIN;
    await controller.reconcile('w-1');
    expect(f.writes.of('instances.delete')).toEqual([['w-1', undefined]]);
  });
});

describe('one-shot', () => {
  const served = (pods: { namespace: string; name: string; uid: string }[] = []) => {
    const i = instance('i-1', { phase: 'Ready', providerID: 'sim:///n1', launchedAt: iso(0), resourceVersion: '9' });
    i.status = { ...i.status, nodeName: 'n1', registeredAt: iso(0), readyAt: iso(0), pods };
    return i;
  };
  const job = { namespace: 'team-a', name: 'job', uid: 'uid-team-a-job' };
  beforeEach(() => {
    f.cluster.classList = [cls({ oneShot: true, idleTimeout: '5m' })];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1' })];
  });

  it('terminates the instance as soon as its pod has succeeded, without waiting for idleTimeout', async () => {
    f.cluster.instanceList = [served([job])];
    f.cluster.podList = [pod('job', { claim: 'i-1', nodeName: 'n1', gated: false, phase: 'Succeeded' })];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
    expect(reasons()).toEqual(['Instance/OneShotDone/Teardown']);
  });

  it('does so when the pod failed, even if the instance never recorded it (it ran between two looks)', async () => {
    f.cluster.instanceList = [served([])];
    f.cluster.podList = [pod('job', { claim: 'i-1', nodeName: 'n1', gated: false, phase: 'Failed' })];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
  });

  it("tears down a deleted pod's instance once the pod recorded on it is gone", async () => {
    f.cluster.instanceList = [served([job])];
    f.cluster.podList = [];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
  });

  it('keeps the instance while its pod runs, or is still shutting down on the node', async () => {
    f.cluster.instanceList = [served([job])];
    f.cluster.podList = [pod('job', { claim: 'i-1', nodeName: 'n1', gated: false, phase: 'Running' })];
    await controller.reconcile('i-1');
    f.cluster.podList = [pod('job', { claim: 'i-1', nodeName: 'n1', gated: false, phase: 'Running', deleting: true })];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
  });

  it('never tears down an instance that has served nobody yet (its pod is on the way)', async () => {
    f.cluster.instanceList = [served([])];
    f.cluster.podList = [];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
  });

  it('without oneShot, an instance whose pod ended waits for idleTimeout', async () => {
    f.cluster.classList = [cls({ idleTimeout: '5m' })];
    f.cluster.instanceList = [served([job])];
    f.cluster.podList = [pod('job', { claim: 'i-1', nodeName: 'n1', gated: false, phase: 'Succeeded' })];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
  });
});

describe('a pod that left without being seen to end (force-deleted)', () => {
  const vacated = () => {
    const i = instance('i-1', { phase: 'Ready', providerID: 'sim:///n1', launchedAt: iso(0), resourceVersion: '9' });
    i.status = { ...i.status, nodeName: 'n1', registeredAt: iso(0), readyAt: iso(0), pods: [] };
    return i;
  };
  beforeEach(() => {
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1' })];
    f.cluster.instanceList = [vacated()];
    f.cluster.unconfirmedExits.set('n1', 'team-a/web-1');
  });

  it('under Pod isolation terminates its instance at once, saying why, instead of keeping it for the next pod', async () => {
    f.cluster.classList = [cls({ idleTimeout: '1h' })];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([['i-1', '9']]);
    expect(reasons()).toEqual(['Instance/PodLeftUnconfirmed/Teardown']);
    expect(f.events[0]!.note).toContain(
      'pod team-a/web-1 was removed from node n1 before its kubelet reported it ended',
    );
  });

  it('under Class isolation keeps it (the class shares its nodes anyway), as it does a pod that ended', async () => {
    f.cluster.classList = [cls({ idleTimeout: '1h', isolation: 'Class' })];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.delete')).toEqual([]);
  });
});

describe('wakes', () => {
  it("wakes an Instance for its node's and pods' changes, not for heartbeats or a kubelet's progress reports", () => {
    const n = node('n1', { class: 'metal', instance: 'i-1' });
    f.cluster.nodeList = [n];
    const heartbeat = { ...n, metadata: { ...n.metadata, resourceVersion: '2' } };
    const notReady = node('n1', { class: 'metal', instance: 'i-1', ready: false });
    expect([...controller.wakes.node!(heartbeat, f.cluster, n)]).toEqual([]);
    expect([...controller.wakes.node!(notReady, f.cluster, n)]).toEqual(['i-1']);
    expect([...controller.wakes.node!(n, f.cluster)]).toEqual(['i-1']);

    const p = pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Running', gated: false });
    const progress = { ...p, status: { ...p.status, podIP: '10.0.0.7' } };
    const done = pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Succeeded', gated: false });
    expect([...controller.wakes.pod!(progress, f.cluster, p)]).toEqual([]);
    expect([...controller.wakes.pod!(done, f.cluster, p)]).toEqual(['i-1']);
    expect([...controller.wakes.pod!(p, f.cluster)]).toEqual(['i-1']);
    // Its pin (gate lifted, node named, its time written) changes nothing an Instance decides on;
    // the scheduler refusing it there does.
    const waiting = pod('api', { claim: 'i-1' });
    const pinned = pod('api', { claim: 'i-1', gated: false });
    pinned.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }],
        },
      },
    };
    pinned.metadata!.annotations![POD_PINNED_AT_ANNOTATION] = iso(MIN);
    expect([...controller.wakes.pod!(pinned, f.cluster, waiting)]).toEqual([]);
    const refused = structuredClone(pinned);
    refused.status!.conditions = [
      { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: new Date(T0 + 2 * MIN) },
    ];
    expect([...controller.wakes.pod!(refused, f.cluster, pinned)]).toEqual(['i-1']);
    // A GKE pool's node names no Instance: its Instance is the one its providerID belongs to.
    f.cluster.instanceList = [instance('i-3', { phase: 'Launched', providerID: 'sim:///g1', launchedAt: iso(0) })];
    const pooled = node('g1', { class: 'metal' });
    f.cluster.nodeList = [pooled];
    expect([...controller.wakes.node!(pooled, f.cluster)]).toEqual(['i-3']);
    const visitor = pod('debug', { class: null, nodeName: 'g1', phase: 'Running', ns: 'default', gated: false });
    expect([...controller.wakes.pod!(visitor, f.cluster)]).toEqual(['i-3']);
    // Re-homed: the Instance it left hears of it too (it may be idle now).
    const moved = pod('api', { claim: 'i-2' });
    expect([...controller.wakes.pod!(moved, f.cluster, waiting)]).toEqual(['i-2', 'i-1']);
  });
});
