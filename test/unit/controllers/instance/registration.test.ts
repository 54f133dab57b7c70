// A node that joins NotReady: its registration and readiness are one status write when it turns
// Ready soon, and its registration is written alone (and dated when first seen) when it does not.
import { beforeEach, describe, expect, it } from 'vitest';
import { InstanceController } from '../../../../src/controllers/instance/controller.ts';
import { READY_WAIT_MS, registrationHoldMs } from '../../../../src/controllers/instance/registration.ts';
import { fakes, type Fakes } from '../../fake/cluster.ts';
import { cls, instance, node, pod } from '../fixtures.ts';
import { cacheShowsWrites } from './cache.ts';
import { iso, MIN, T0 } from './clock.ts';

let f: Fakes;
let controller: InstanceController;
beforeEach(() => {
  f = fakes(T0);
  f.cluster.classList = [cls({ registrationTimeout: '15m' })];
  controller = new InstanceController(f.ctx);
  f.cluster.instanceList = [
    instance('i-1', { phase: 'Launched', providerID: 'sim:///n1', launchedAt: iso(0), resourceVersion: '5' }),
  ];
  f.cluster.podList = [pod('web', { claim: 'i-1' })];
  f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1', ready: false })];
  f.clock.now = T0 + MIN;
});

const reasons = () => f.events.map((e) => `${e.regarding.kind}/${e.reason}/${e.action}`);
const registrationSeconds = async () =>
  (await f.metrics.instanceRegistrationDuration.get()).values.find((v) => v.metricName?.endsWith('_sum'))?.value;

describe('a node that joins NotReady', () => {
  it('is written once with its readiness when it turns Ready within READY_WAIT_MS', async () => {
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: READY_WAIT_MS });
    expect(f.writes.log).toEqual([]);
    expect(f.events).toEqual([]);
    f.clock.now += 800;
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1' })];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.patchStatus')).toEqual([
      [
        'i-1',
        {
          phase: 'Ready',
          nodeName: 'n1',
          registeredAt: iso(MIN),
          readyAt: iso(MIN + 800),
          pods: [{ namespace: 'team-a', name: 'web', uid: 'uid-team-a-web' }],
        },
      ],
    ]);
    expect(reasons()).toEqual([]); // as planned: recorded in the status, no Event
    // From the launch to the moment the node was first seen, not to the write.
    expect(await registrationSeconds()).toBe(60);
  });

  it('is written alone, dated when first seen, once the wait is over; Ready follows as a second write', async () => {
    await controller.reconcile('i-1');
    f.clock.now += 1_000;
    expect(await controller.reconcile('i-1')).toEqual({ requeueAfterMs: READY_WAIT_MS - 1_000 });
    f.clock.now += READY_WAIT_MS - 1_000;
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.patchStatus')).toEqual([
      [
        'i-1',
        {
          phase: 'Registered',
          nodeName: 'n1',
          registeredAt: iso(MIN),
          pods: [{ namespace: 'team-a', name: 'web', uid: 'uid-team-a-web' }],
        },
      ],
    ]);
    expect(reasons()).toEqual([]); // as planned: recorded in the status, no Event
    cacheShowsWrites(f);
    f.clock.now += 10_000;
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1' })];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.patchStatus')[1]).toEqual([
      'i-1',
      { phase: 'Ready', readyAt: iso(MIN + READY_WAIT_MS + 10_000) },
    ]);
    expect(reasons()).toEqual([]); // as planned: recorded in the status, no Event
  });

  it('is not held back again once its registration is recorded (a new leader, a node turning NotReady)', async () => {
    const registered = f.cluster.instanceList[0]!;
    registered.status = { ...registered.status, phase: 'Registered', nodeName: 'n1', registeredAt: iso(0) };
    registered.status.pods = [{ namespace: 'team-a', name: 'web', uid: 'uid-team-a-web' }];
    await controller.reconcile('i-1');
    expect(f.writes.log).toEqual([]);
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'i-1' })];
    await controller.reconcile('i-1');
    expect(f.writes.of('instances.patchStatus')).toEqual([['i-1', { phase: 'Ready', readyAt: iso(MIN) }]]);
  });
});

describe('registrationHoldMs', () => {
  it('holds back for what is left of READY_WAIT_MS since the node was first seen', () => {
    expect(registrationHoldMs(T0, T0)).toBe(READY_WAIT_MS);
    expect(registrationHoldMs(T0, T0 + 1_000)).toBe(READY_WAIT_MS - 1_000);
    expect(registrationHoldMs(T0, T0 + READY_WAIT_MS)).toBe(0);
    expect(registrationHoldMs(T0, T0 + 10 * MIN)).toBe(0);
  });
});
