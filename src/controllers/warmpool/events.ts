// The Events the warm pool writes on its Instances and classes.
import { API_VERSION } from '../../api/names.ts';
import type { Instance, InstanceClass } from '../../api/types.ts';
import { instanceRef, type IppEvent } from '../../kube/events.ts';

export const warmRemoved = (inst: Instance, why: 'Aged' | 'Surplus', detail: string): IppEvent => ({
  regarding: instanceRef(inst),
  type: 'Normal',
  reason: why === 'Aged' ? 'WarmAgedOut' : 'WarmSurplus',
  action: 'Teardown',
  note:
    why === 'Aged'
      ? `warm instance older than spec.warmPool.maxAge ${detail}; a fresh one has taken its place`
      : `the warm pool holds ${detail} now; this never-used instance is not needed`,
});

/** The class of a warm instance was deleted: nothing will ever take it. */
export const warmOrphaned = (inst: Instance): IppEvent => ({
  regarding: instanceRef(inst),
  type: 'Normal',
  reason: 'WarmClassDeleted',
  action: 'Teardown',
  note: `InstanceClass ${inst.spec.class} was deleted; this never-used warm instance will never be taken`,
});

export const warmPoolInvalid = (cls: InstanceClass, message: string): IppEvent => ({
  regarding: { apiVersion: API_VERSION, kind: 'InstanceClass', name: cls.metadata.name!, uid: cls.metadata.uid },
  type: 'Warning',
  reason: 'InvalidWarmPool',
  action: 'Validate',
  note: message,
});
