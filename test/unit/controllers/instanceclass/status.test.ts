// classStatus(): the Ready condition and the counts of an InstanceClass; statusChanged(): when to write it.
import { describe, expect, it } from 'vitest';
import type { InstanceClassStatus } from '../../../../src/api/types.ts';
import { classStatus, statusChanged } from '../../../../src/controllers/instanceclass/status.ts';
import { cls, instance, pod } from '../fixtures.ts';

const EARLIER = new Date('2024-01-01T00:00:00Z');
const NOW = new Date('2024-01-02T00:00:00Z');
const problem = { reason: 'InvalidClass', message: 'InstanceClass "metal" is invalid: spec.aws.subnets: none found' };

const withReady = (status: 'True' | 'False', lastTransitionTime: Date | string = EARLIER) => {
  const c = cls();
  c.status = {
    conditions: [
      { type: 'Ready', status, reason: 'Whatever', message: 'before', lastTransitionTime: lastTransitionTime as Date },
    ],
  };
  return c;
};

describe('classStatus', () => {
  it('is Ready True with reason Valid when there is no problem', () => {
    const s = classStatus(cls(), undefined, [], [], NOW);
    expect(s.conditions).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Valid',
        message: 'the class is valid and its provider is enabled',
        observedGeneration: 1,
        lastTransitionTime: NOW,
      },
    ]);
    expect(s.observedGeneration).toBe(1);
  });

  it("is Ready False with the problem's reason and message", () => {
    const s = classStatus(cls(), problem, [], [], NOW);
    expect(s.conditions![0]).toMatchObject({
      type: 'Ready',
      status: 'False',
      reason: 'InvalidClass',
      message: problem.message,
      lastTransitionTime: NOW,
    });
  });

  it('keeps lastTransitionTime while the status stays the same, even when reason or message change', () => {
    expect(classStatus(withReady('True'), undefined, [], [], NOW).conditions![0]!.lastTransitionTime).toBe(EARLIER);
    expect(classStatus(withReady('False'), problem, [], [], NOW).conditions![0]!.lastTransitionTime).toBe(EARLIER);
  });

  it('moves lastTransitionTime when the status flips', () => {
    expect(classStatus(withReady('True'), problem, [], [], NOW).conditions![0]!.lastTransitionTime).toBe(NOW);
    expect(classStatus(withReady('False'), undefined, [], [], NOW).conditions![0]!.lastTransitionTime).toBe(NOW);
  });

  it('counts live, Ready and idle Instances and pods awaiting placement', () => {
    const instances = [
      instance('launching', { phase: 'Launched' }),
      instance('busy', { phase: 'Ready' }),
      instance('idle', { phase: 'Ready', idleSince: EARLIER.toISOString() }),
      instance('idle-2', { phase: 'Ready', idleSince: EARLIER.toISOString() }),
      instance('registered-no-pods', { phase: 'Registered', idleSince: EARLIER.toISOString() }),
      instance('going', { phase: 'Ready', idleSince: EARLIER.toISOString(), deleting: true }),
    ];
    const pods = [
      pod('waiting'),
      pod('bind-mode', { gated: false, schedulerName: 'ipp' }),
      pod('placed', { gated: false, nodeName: 'n1', phase: 'Running' }),
      pod('dead', { phase: 'Failed' }),
    ];
    expect(classStatus(cls(), undefined, instances, pods, NOW)).toMatchObject({
      instances: 5,
      readyInstances: 3,
      idleInstances: 2,
      pendingPods: 2,
    });
  });

  it('counts warm Instances, Ready and launching, apart from idle ones; a taken one is no longer warm', () => {
    const instances = [
      instance('warm-ready', { phase: 'Ready', warm: true }),
      instance('warm-ready-2', { phase: 'Ready', warm: true }),
      instance('warm-booting', { phase: 'Launched', warm: true }),
      instance('warm-going', { phase: 'Ready', warm: true, deleting: true }),
      instance('taken', { phase: 'Ready' }),
    ];
    expect(classStatus(cls(), undefined, instances, [], NOW)).toMatchObject({
      instances: 4,
      readyInstances: 3,
      idleInstances: 0,
      warmReady: 2,
      warmLaunching: 1,
    });
  });
});

describe('statusChanged', () => {
  const base = () => classStatus(withReady('True'), undefined, [instance('a', { phase: 'Ready' })], [pod('p')], NOW);

  it('is true when there is no status yet', () => {
    expect(statusChanged(undefined, base())).toBe(true);
  });

  it('ignores a difference in lastTransitionTime only', () => {
    const a = base();
    const b: InstanceClassStatus = {
      ...a,
      conditions: [{ ...a.conditions![0]!, lastTransitionTime: new Date('2030-01-01T00:00:00Z') }],
    };
    expect(statusChanged(a, b)).toBe(false);
  });

  it('sees a change of condition, counts or observedGeneration', () => {
    const a = base();
    expect(statusChanged(a, { ...a, pendingPods: 0 })).toBe(true);
    expect(statusChanged(a, { ...a, readyInstances: 0 })).toBe(true);
    expect(statusChanged(a, { ...a, observedGeneration: 2 })).toBe(true);
    expect(statusChanged(a, { ...a, conditions: [{ ...a.conditions![0]!, message: 'other' }] })).toBe(true);
    expect(
      statusChanged(a, classStatus(withReady('True'), problem, [instance('a', { phase: 'Ready' })], [pod('p')], NOW)),
    ).toBe(true);
  });

  it('sees no change in the status as the API server returns it (keys sorted, times as strings)', () => {
    const next = base();
    // What the informer holds after the previous write: JSON from the server, whose maps have sorted keys.
    const fromServer = JSON.parse(
      JSON.stringify({
        conditions: [
          {
            lastTransitionTime: '2024-01-01T00:00:00Z',
            message: next.conditions![0]!.message,
            observedGeneration: 1,
            reason: next.conditions![0]!.reason,
            status: 'True',
            type: 'Ready',
          },
        ],
        idleInstances: next.idleInstances,
        instances: next.instances,
        observedGeneration: 1,
        pendingPods: next.pendingPods,
        readyInstances: next.readyInstances,
        warmLaunching: 0,
        warmReady: 0,
      }),
    ) as InstanceClassStatus;
    expect(statusChanged(fromServer, next)).toBe(false);
  });
});
