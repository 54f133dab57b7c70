// A reconcile that reads the Instance from a cache not yet showing the controller's own last status
// write: it must not decide (and write, and report) the same transition again, and must resume once
// the cache shows a newer version, or once it has waited long enough for a watch event that was lost.
import { beforeEach, describe, expect, it } from 'vitest';
import { FINALIZER } from '../../../../src/api/names.ts';
import { InstanceController } from '../../../../src/controllers/instance/controller.ts';
import {
  STATUS_EXPECTATION_TIMEOUT_MS,
  StatusExpectations,
  awaitingOwnWrite,
} from '../../../../src/controllers/instance/expectations.ts';
import { fakes, type Fakes } from '../../fake/cluster.ts';
import { cls, instance, node, pod } from '../fixtures.ts';
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
const statusWrites = () =>
  f.writes.log.filter(([w]) => w === 'instances.patchStatus' || w === 'instances.replaceStatus');

/** Launched, its node joined and Ready, its pod running there: the next reconcile writes Ready. */
const joining = () => {
  f.cluster.instanceList = [
    instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0), resourceVersion: '5' }),
  ];
  f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1' })];
  f.cluster.podList = [pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Running', gated: false })];
  f.clock.now = T0 + 2 * MIN;
};

describe('a reconcile reading the Instance from before its own status write', () => {
  it('does not launch, report or write the launch again', async () => {
    f.cluster.instanceList = [instance('i-1', { resourceVersion: '5' })];
    f.cluster.podList = [pod('web', { claim: 'i-1' })];
    await controller.reconcile('i-1');
    // Woken again (a pod event) before the watch has delivered the launch's write.
    f.clock.now += 100;
    const r = await controller.reconcile('i-1');
    expect(f.provider.createCalls).toHaveLength(1);
    expect(f.writes.of('instances.replaceStatus')).toHaveLength(1);
    expect(reasons()).toEqual([]); // as planned: recorded in the status, no Event
    // Back when the wait for the watch event ends, should it never come.
    expect(r).toEqual({ requeueAfterMs: STATUS_EXPECTATION_TIMEOUT_MS - 100 });
  });

  it('does not write Ready again, nor move readyAt', async () => {
    joining();
    await controller.reconcile('i-1');
    f.clock.now += 1_000;
    await controller.reconcile('i-1');
    expect(statusWrites()).toEqual([
      [
        'instances.patchStatus',
        'i-1',
        expect.objectContaining({ phase: 'Ready', registeredAt: iso(2 * MIN), readyAt: iso(2 * MIN) }),
      ],
    ]);
    expect(reasons()).toEqual([]); // as planned: recorded in the status, no Event
  });

  it('decides and writes as usual once the cache shows a newer version', async () => {
    joining();
    await controller.reconcile('i-1');
    cacheShowsWrites(f);
    expect(f.cluster.instance('i-1')!.metadata.resourceVersion).toBe('6');
    // Its pod ends: the instance is idle from now, which the next reconcile writes at once.
    f.clock.now += 1_000;
    f.cluster.podList = [];
    await controller.reconcile('i-1');
    expect(statusWrites()).toHaveLength(2);
    expect(statusWrites()[1]).toEqual(['instances.patchStatus', 'i-1', { pods: [], idleSince: iso(2 * MIN + 1_000) }]);
    expect(reasons()).toEqual(['Instance/BecameIdle/Idle']);
  });

  it('believes the cache again after a while: a lost watch event does not wedge the Instance', async () => {
    joining();
    await controller.reconcile('i-1');
    f.clock.now += STATUS_EXPECTATION_TIMEOUT_MS - 1;
    await controller.reconcile('i-1');
    expect(statusWrites()).toHaveLength(1);
    f.clock.now += 1;
    await controller.reconcile('i-1');
    expect(statusWrites()).toHaveLength(2);
  });

  it('does not mark the Instance Draining twice', async () => {
    const i = instance('i-1', { phase: 'Ready', providerID: 'sim:///n1', deleting: true, resourceVersion: '8' });
    i.metadata.finalizers = [FINALIZER];
    f.cluster.instanceList = [i];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1' })];
    f.cluster.podList = [pod('web', { nodeName: 'n1', phase: 'Running', gated: false })];
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: 5_000 });
    await controller.reconcile('i-1');
    expect(statusWrites()).toEqual([['instances.patchStatus', 'i-1', { phase: 'Draining' }]]);
    expect(f.writes.of('pods.evict')).toEqual([['web']]);
    cacheShowsWrites(f);
    await controller.reconcile('i-1');
    expect(statusWrites()).toHaveLength(1);
    // Nor web evicted twice: its eviction was accepted, and the cache has yet to show it.
    expect(f.writes.of('pods.evict')).toEqual([['web']]);
  });

  it('starts afresh for a new Instance of the same name', async () => {
    joining();
    await controller.reconcile('i-1');
    f.cluster.instanceList = [];
    await controller.reconcile('i-1');
    joining();
    f.cluster.instanceList[0]!.metadata.uid = 'uid-i-1-again';
    await controller.reconcile('i-1');
    expect(statusWrites()).toHaveLength(2);
  });
});

describe('awaitingOwnWrite', () => {
  const inst = (resourceVersion: string, uid = 'uid-i-1') => {
    const i = instance('i-1', { resourceVersion });
    i.metadata.uid = uid;
    return i;
  };
  const expected = { uid: 'uid-i-1', decidedOn: '5', at: T0 };

  it('waits while the cache shows the version the write was decided on', () => {
    expect(awaitingOwnWrite(expected, inst('5'), T0 + 1_000)).toBe(STATUS_EXPECTATION_TIMEOUT_MS - 1_000);
  });

  it('does not wait once the cache shows another version, or another object of that name', () => {
    expect(awaitingOwnWrite(expected, inst('6'), T0)).toBe(0);
    expect(awaitingOwnWrite(expected, inst('5', 'uid-other'), T0)).toBe(0);
    expect(awaitingOwnWrite(undefined, inst('5'), T0)).toBe(0);
  });

  it('stops waiting when the watch event is overdue', () => {
    expect(awaitingOwnWrite(expected, inst('5'), T0 + STATUS_EXPECTATION_TIMEOUT_MS)).toBe(0);
  });
});

describe('StatusExpectations', () => {
  it('expects nothing from a write the API server answered at the version read (it changed nothing)', () => {
    const e = new StatusExpectations();
    const i = instance('i-1', { resourceVersion: '5' });
    e.wrote(i, T0, '5');
    expect(e.awaiting(i, T0)).toBe(0);
    e.wrote(i, T0, '6');
    expect(e.awaiting(i, T0)).toBeGreaterThan(0);
  });

  it('forgets a write once the cache shows it, and an Instance that is gone', () => {
    const e = new StatusExpectations();
    e.wrote(instance('i-1', { resourceVersion: '5' }), T0);
    expect(e.awaiting(instance('i-1', { resourceVersion: '6' }), T0)).toBe(0);
    expect(e.size).toBe(0);
    e.wrote(instance('i-2', { resourceVersion: '5' }), T0);
    e.forget('i-2');
    expect(e.size).toBe(0);
  });
});

describe("the watch event of the controller's own status write", () => {
  const at = (rv: string) => instance('i-1', { resourceVersion: rv });

  it('wakes nothing when it only shows the write, from the version it was decided on', () => {
    const e = new StatusExpectations();
    e.wrote(at('5'), T0, '6');
    expect(e.ownWriteShown(at('5'), at('6'))).toBe(true);
    expect(e.size).toBe(0);
    // Seen once: a second event at that version is someone else's business.
    expect(e.ownWriteShown(at('5'), at('6'))).toBe(false);
  });

  it('wakes the Instance when a reconcile waits for it, or when it carries changes of others', () => {
    const waited = new StatusExpectations();
    waited.wrote(at('5'), T0, '6');
    expect(waited.awaiting(at('5'), T0)).toBeGreaterThan(0);
    expect(waited.ownWriteShown(at('5'), at('6'))).toBe(false);

    // Another writer changed it between the version read and ours: the event shows that change too.
    const others = new StatusExpectations();
    others.wrote(at('5'), T0, '7');
    expect(others.ownWriteShown(at('6'), at('7'))).toBe(false);
    // Another version than the one our write made, or another object of the same name.
    const later = new StatusExpectations();
    later.wrote(at('5'), T0, '6');
    expect(later.ownWriteShown(at('5'), at('8'))).toBe(false);
    const recreated = new StatusExpectations();
    recreated.wrote(at('5'), T0, '6');
    const other = at('6');
    other.metadata.uid = 'uid-of-another-i-1';
    expect(recreated.ownWriteShown(at('5'), other)).toBe(false);
    // Our write changed nothing (answered with the version it found), and the event is another's
    // change of more than the status: the Instance left the warm pool, say.
    const taken = new StatusExpectations();
    taken.wrote(at('5'), T0, '6');
    const untaken = at('6');
    untaken.metadata.labels = { 'ipp.dev/warm': 'false' };
    expect(taken.ownWriteShown(at('5'), untaken)).toBe(false);
    // A write whose answer gave no version.
    const unknown = new StatusExpectations();
    unknown.wrote(at('5'), T0);
    expect(unknown.ownWriteShown(at('5'), at('6'))).toBe(false);
  });
});

describe('InstanceController wakes', () => {
  it("skips the event of its own status write, and not another's", async () => {
    joining();
    // The API server answers a write with the version it made: the one the cache shows next.
    const { patchStatus } = f.ctx.api.instances;
    f.ctx.api.instances.patchStatus = async (name, status) => {
      await patchStatus(name, status);
      return '6';
    };
    await controller.reconcile('i-1');
    cacheShowsWrites(f);
    const [written] = f.cluster.instanceList;
    expect(written!.status?.phase).toBe('Ready');
    const before = instance('i-1', {
      phase: 'Launched',
      providerID: 'sim:///n1',
      launchedAt: iso(0),
      resourceVersion: '5',
    });
    expect(controller.wakes.instance!(written!, f.ctx.state, before)).toEqual([]);
    const edited = { ...written!, metadata: { ...written!.metadata, resourceVersion: '99' } };
    expect(controller.wakes.instance!(edited, f.ctx.state, written!)).toEqual(['i-1']);
  });
});
