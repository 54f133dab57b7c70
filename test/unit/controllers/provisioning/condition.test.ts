// ipp's condition on a pod: written only when it changes something.
import type { V1Pod, V1PodCondition } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { conditionUpdate, INSTANCE_AVAILABLE } from '../../../../src/controllers/provisioning/condition.ts';

const now = new Date('2024-01-01T01:00:00Z');
const earlier = new Date('2024-01-01T00:00:00Z');
const withConditions = (...conditions: V1PodCondition[]): V1Pod => ({
  status: { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'SchedulingGated' }, ...conditions] },
});
const noFit = { status: 'False' as const, reason: 'NoZoneFits', message: 'needs zone c' };

describe('conditionUpdate', () => {
  it('tells a pod False, with the time of the transition', () => {
    expect(conditionUpdate(withConditions(), noFit, now)).toEqual({
      type: INSTANCE_AVAILABLE,
      status: 'False',
      reason: 'NoZoneFits',
      message: 'needs zone c',
      lastTransitionTime: now,
    });
  });

  it('writes nothing when the pod already says so', () => {
    const told = withConditions({ type: INSTANCE_AVAILABLE, ...noFit, lastTransitionTime: earlier });
    expect(conditionUpdate(told, noFit, now)).toBeUndefined();
  });

  it('keeps the transition time when only the reason or message changes', () => {
    const told = withConditions({ type: INSTANCE_AVAILABLE, ...noFit, lastTransitionTime: earlier });
    expect(conditionUpdate(told, { ...noFit, reason: 'NoInstanceTypeFits' }, now)?.lastTransitionTime).toBe(earlier);
  });

  it('turns a False condition True once the pod has an instance, and never writes True on a pod never told False', () => {
    const told = withConditions({ type: INSTANCE_AVAILABLE, ...noFit, lastTransitionTime: earlier });
    const given = { status: 'True' as const, reason: 'InstanceAssigned', message: 'Instance i-1 of class c' };
    expect(conditionUpdate(told, given, now)).toMatchObject({ status: 'True', lastTransitionTime: now });
    expect(conditionUpdate(withConditions(), given, now)).toBeUndefined();
    expect(conditionUpdate(withConditions({ type: INSTANCE_AVAILABLE, ...given }), given, now)).toBeUndefined();
  });
});
