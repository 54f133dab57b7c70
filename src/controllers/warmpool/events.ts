// The Events the warm pool writes on its Instances.
import type { Instance } from '../../api/types.ts';
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
