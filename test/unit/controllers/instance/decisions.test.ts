// The instance lifecycle's pure decisions: who occupies an instance, launch/registration timeouts, idle expiry.
import { describe, expect, it } from 'vitest';
import {
  cloudRecheckMs,
  cloudStateGone,
  DEFAULTS,
  idleExpiry,
  isStranded,
  livenessExpiry,
  looksDead,
  nodeChangeMattersToInstance,
  occupants,
  podChangeMattersToInstance,
  timeouts,
} from '../../../../src/controllers/instance/decisions.ts';
import { cls, instance, node, pod, refusedPin } from '../fixtures.ts';
import { iso, MIN, T0 } from './clock.ts';

describe('occupants', () => {
  it('lists claiming pods and workloads on the node, sorted by namespace/name', () => {
    const refs = occupants([pod('b', { claim: 'x' })], [pod('a', { ns: 'team-b', nodeName: 'n1', phase: 'Running' })]);
    expect(refs).toEqual([
      { namespace: 'team-a', name: 'b', uid: 'uid-team-a-b' },
      { namespace: 'team-b', name: 'a', uid: 'uid-team-b-a' },
    ]);
  });

  it('ignores DaemonSet, mirror, finished and deleting pods', () => {
    const onNode = [
      pod('ds', { daemonSet: true, phase: 'Running' }),
      pod('static', { mirror: true, phase: 'Running' }),
      pod('done', { phase: 'Succeeded' }),
      pod('crashed', { phase: 'Failed' }),
      pod('leaving', { deleting: true, phase: 'Running' }),
    ];
    expect(occupants(onNode, onNode)).toEqual([]);
  });

  it('counts a bound pod that is still shutting down: the instance is not idle until it is gone', () => {
    const going = pod('going', { deleting: true, nodeName: 'n1', phase: 'Running' });
    expect(occupants([], [going])).toEqual([{ namespace: 'team-a', name: 'going', uid: 'uid-team-a-going' }]);
  });

  it('counts a pod that both claims the instance and runs on its node once (by uid)', () => {
    const p = pod('web', { claim: 'x', nodeName: 'n1', phase: 'Running' });
    expect(occupants([p], [structuredClone(p)])).toEqual([{ namespace: 'team-a', name: 'web', uid: 'uid-team-a-web' }]);
  });

  it('keeps two pods with the same name but different uids (a recreated pod)', () => {
    expect(
      occupants([pod('web', { uid: 'old' })], [pod('web', { uid: 'new' })])
        .map((r) => r.uid)
        .sort(),
    ).toEqual(['new', 'old']);
  });
});

describe('timeouts', () => {
  it('falls back to DEFAULTS for fields the class lacks, and without a class', () => {
    const defaults = { idleMs: 5 * MIN, launchMs: 10 * MIN, registrationMs: 15 * MIN, repairMs: 10 * MIN };
    expect(DEFAULTS).toEqual({
      idleTimeout: '5m',
      launchTimeout: '10m',
      registrationTimeout: '15m',
      repairAfter: '10m',
    });
    expect(timeouts(cls())).toEqual(defaults);
    expect(timeouts(undefined)).toEqual(defaults);
    expect(
      timeouts(cls({ idleTimeout: '30s', launchTimeout: '1h', registrationTimeout: '1h30m', repairAfter: '2m' })),
    ).toEqual({
      idleMs: 30_000,
      launchMs: 60 * MIN,
      registrationMs: 90 * MIN,
      repairMs: 2 * MIN,
    });
  });

  it('names the field of a malformed duration', () => {
    expect(() => timeouts(cls({ registrationTimeout: '20 minutes' }))).toThrow(/spec\.registrationTimeout/);
  });
});

describe('livenessExpiry', () => {
  it('times out a launch (no providerID) launchTimeout after creation', () => {
    const inst = instance('x', { created: iso(0) });
    expect(livenessExpiry(inst, cls(), false, T0 + 4 * MIN)).toEqual({ expired: false, remainingMs: 6 * MIN });
    const e = livenessExpiry(inst, cls(), false, T0 + 10 * MIN);
    expect(e).toMatchObject({ expired: true, reason: 'LaunchTimeout' });
    expect(e.expired && e.message).toContain('launchTimeout 10m');
  });

  it("uses the class's launchTimeout", () => {
    const inst = instance('x', { created: iso(0) });
    expect(livenessExpiry(inst, cls({ launchTimeout: '30m' }), false, T0 + 20 * MIN)).toEqual({
      expired: false,
      remainingMs: 10 * MIN,
    });
    expect(livenessExpiry(inst, cls({ launchTimeout: '30m' }), false, T0 + 30 * MIN)).toMatchObject({
      expired: true,
      reason: 'LaunchTimeout',
    });
  });

  it('times out registration registrationTimeout after launch while the node is absent', () => {
    const inst = instance('x', {
      created: iso(0),
      providerID: 'sim:///x',
      launchedAt: iso(5 * MIN),
      phase: 'Launched',
    });
    expect(livenessExpiry(inst, cls(), false, T0 + 15 * MIN)).toEqual({ expired: false, remainingMs: 5 * MIN });
    const e = livenessExpiry(inst, cls(), false, T0 + 20 * MIN);
    expect(e).toMatchObject({ expired: true, reason: 'RegistrationTimeout' });
    expect(e.expired && e.message).toContain('registrationTimeout 15m');
  });

  it('times out registration while the node is registered but not Ready', () => {
    const inst = instance('x', { created: iso(0), providerID: 'sim:///x', launchedAt: iso(0), phase: 'Registered' });
    expect(livenessExpiry(inst, cls({ registrationTimeout: '40m' }), true, T0 + 39 * MIN)).toEqual({
      expired: false,
      remainingMs: MIN,
    });
    expect(livenessExpiry(inst, cls({ registrationTimeout: '40m' }), true, T0 + 40 * MIN)).toMatchObject({
      expired: true,
      reason: 'RegistrationTimeout',
    });
  });

  it('measures registration from creation when launchedAt is missing', () => {
    const inst = instance('x', { created: iso(0), providerID: 'sim:///x', phase: 'Launched' });
    expect(livenessExpiry(inst, cls(), false, T0 + 14 * MIN)).toEqual({ expired: false, remainingMs: MIN });
  });

  it('never expires once Ready with its node', () => {
    const inst = instance('x', { created: iso(0), providerID: 'sim:///x', launchedAt: iso(0), phase: 'Ready' });
    expect(livenessExpiry(inst, cls(), true, T0 + 1000 * MIN)).toEqual({ expired: false, remainingMs: Infinity });
  });

  it('a Ready Instance whose node is gone is back under the registration timeout', () => {
    const inst = instance('x', { created: iso(0), providerID: 'sim:///x', launchedAt: iso(0), phase: 'Ready' });
    expect(livenessExpiry(inst, cls(), false, T0 + 16 * MIN)).toMatchObject({
      expired: true,
      reason: 'RegistrationTimeout',
    });
  });
});

describe('idleExpiry', () => {
  it('is not running while the instance is in use', () => {
    expect(idleExpiry(undefined, cls(), T0)).toEqual({ expired: false, remainingMs: Infinity });
  });

  it('counts down from idleSince and expires at idleTimeout', () => {
    expect(idleExpiry(iso(0), cls(), T0 + 2 * MIN)).toEqual({ expired: false, remainingMs: 3 * MIN });
    const e = idleExpiry(iso(0), cls(), T0 + 5 * MIN);
    expect(e).toMatchObject({ expired: true, reason: 'Idle' });
    expect(e.expired && e.message).toContain('idleTimeout 5m');
  });

  it("uses the class's idleTimeout, and the default without a class", () => {
    expect(idleExpiry(iso(0), cls({ idleTimeout: '1h' }), T0 + 30 * MIN)).toEqual({
      expired: false,
      remainingMs: 30 * MIN,
    });
    expect(idleExpiry(iso(0), cls({ idleTimeout: '10s' }), T0 + 10_000)).toMatchObject({
      expired: true,
      reason: 'Idle',
    });
    expect(idleExpiry(iso(0), undefined, T0 + 4 * MIN)).toEqual({ expired: false, remainingMs: MIN });
  });
});

describe('a node that looks dead, and what the cloud says', () => {
  it('asks about NotReady/Unknown nodes and nodes tainted shut down, not about Ready ones', () => {
    expect(looksDead(node('n1'), T0)).toBe(false);
    expect(looksDead(node('n1', { ready: false }), T0)).toBe(true);
    const shut = node('n1');
    shut.spec!.taints = [{ key: 'node.cloudprovider.kubernetes.io/shutdown', effect: 'NoSchedule' }];
    expect(looksDead(shut, T0)).toBe(true);
  });

  it('counts stopping, terminating and terminated as gone; pending and running may come back', () => {
    expect(
      ['pending', 'running', 'stopping', 'terminating', 'terminated'].map((s) => cloudStateGone(s as never)),
    ).toEqual([false, false, true, true, true]);
  });

  it('asks again after 10 s, doubling to a minute', () => {
    expect([1, 2, 3, 4, 5].map(cloudRecheckMs)).toEqual([10_000, 20_000, 40_000, 60_000, 60_000]);
  });
});

describe('isStranded', () => {
  const pinned = (since: number, nodeName?: string) => {
    return refusedPin(
      pod('web', { claim: 'i-1', gated: false, ...(nodeName ? { nodeName } : {}) }),
      'n1',
      new Date(since),
    );
  };
  it('is a pinned, unbound pod refused by the scheduler for at least strandedAfter', () => {
    expect(isStranded(pinned(T0), T0 + MIN, 2 * MIN)).toBe(false);
    expect(isStranded(pinned(T0), T0 + 2 * MIN, 2 * MIN)).toBe(true);
    expect(isStranded(pinned(T0, 'n1'), T0 + 5 * MIN, 2 * MIN)).toBe(false);
    expect(isStranded(pod('web', { claim: 'i-1' }), T0 + 5 * MIN, 2 * MIN)).toBe(false);
  });
});

describe('nodeChangeMattersToInstance', () => {
  const before = () => {
    const n = node('n1', { class: 'metal', instance: 'i-1' });
    n.metadata!.resourceVersion = '10';
    n.status!.conditions![0]!.lastHeartbeatTime = new Date(T0);
    n.status!.conditions![0]!.lastTransitionTime = new Date(T0 - MIN);
    return n;
  };

  it('ignores a heartbeat', () => {
    const after = before();
    after.metadata!.resourceVersion = '11';
    after.status!.conditions![0]!.lastHeartbeatTime = new Date(T0 + 10_000);
    after.status!.allocatable = { cpu: '4' };
    expect(nodeChangeMattersToInstance(before(), after)).toBe(false);
  });

  it("ignores kube-controller-manager lifting a starting node's not-ready taint", () => {
    const starting = before();
    starting.spec!.taints!.push({ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' });
    expect(nodeChangeMattersToInstance(starting, before())).toBe(false);
  });

  it("sees the Ready condition turn, the shutdown taint, the class's taints, a cordon, a label and a deletion", () => {
    const notReady = before();
    notReady.status!.conditions![0]!.status = 'Unknown';
    const tainted = before();
    tainted.spec!.taints!.push({ key: 'node.cloudprovider.kubernetes.io/shutdown', effect: 'NoSchedule' });
    const untainted = before();
    untainted.spec!.taints = untainted.spec!.taints!.filter((t) => t.effect !== 'NoExecute');
    const cordoned = before();
    cordoned.spec!.unschedulable = true;
    const relabelled = before();
    relabelled.metadata!.labels!['ipp.dev/instance'] = 'i-9';
    const deleting = before();
    deleting.metadata!.deletionTimestamp = new Date(T0);
    for (const after of [notReady, tainted, untainted, cordoned, relabelled, deleting])
      expect(nodeChangeMattersToInstance(before(), after)).toBe(true);
  });
});

describe('podChangeMattersToInstance', () => {
  const before = () => pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Pending', gated: false });

  it("ignores a kubelet's progress reports on a pod that starts", () => {
    const after = before();
    after.metadata!.resourceVersion = '2';
    after.status = {
      ...after.status,
      podIP: '10.0.0.7',
      conditions: [{ type: 'ContainersReady', status: 'True' }],
      containerStatuses: [{ name: 'c', image: 'postfix', imageID: '', ready: true, restartCount: 0 }],
    };
    expect(podChangeMattersToInstance(before(), after)).toBe(false);
  });

  it('ignores a pod going from Pending to Running: either holds its instance alike', () => {
    const running = pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Running', gated: false });
    expect(podChangeMattersToInstance(before(), running)).toBe(false);
    const failed = pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Failed', gated: false });
    expect(podChangeMattersToInstance(running, failed)).toBe(true);
  });

  it('ignores the PodScheduled condition unless it says the scheduler refused the pod', () => {
    const gated = before();
    gated.status!.conditions = [
      { type: 'PodScheduled', status: 'False', reason: 'SchedulingGated', lastTransitionTime: new Date(T0) },
    ];
    const scheduled = before();
    scheduled.status!.conditions = [{ type: 'PodScheduled', status: 'True', lastTransitionTime: new Date(T0) }];
    // A kubelet writes the condition back as the pod starts, fields as it keeps them.
    const rewritten = before();
    rewritten.status!.conditions = [
      {
        type: 'PodScheduled',
        status: 'True',
        lastTransitionTime: new Date(T0),
        lastProbeTime: null as unknown as Date,
      },
    ];
    expect(podChangeMattersToInstance(before(), gated)).toBe(false);
    expect(podChangeMattersToInstance(gated, scheduled)).toBe(false);
    expect(podChangeMattersToInstance(scheduled, rewritten)).toBe(false);
    const refused = before();
    refused.status!.conditions = [
      { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: new Date(T0) },
    ];
    const refusedLater = before();
    refusedLater.status!.conditions = [
      { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: new Date(T0 + 1_000) },
    ];
    expect(podChangeMattersToInstance(gated, refused)).toBe(true);
    expect(podChangeMattersToInstance(refused, refusedLater)).toBe(true);
  });

  it('sees a claim, a binding, an end, a deletion and a refusal by the scheduler', () => {
    const reclaimed = pod('web', { claim: 'i-2', nodeName: 'n1', phase: 'Pending', gated: false });
    const unbound = pod('web', { claim: 'i-1', phase: 'Pending', gated: false });
    const done = pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Succeeded', gated: false });
    const deleting = pod('web', { claim: 'i-1', nodeName: 'n1', phase: 'Pending', gated: false, deleting: true });
    const refused = before();
    refused.status!.conditions = [
      { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: new Date(T0) },
    ];
    for (const after of [reclaimed, unbound, done, deleting, refused])
      expect(podChangeMattersToInstance(before(), after)).toBe(true);
  });
});
