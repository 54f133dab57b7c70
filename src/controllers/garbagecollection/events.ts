// The Events garbage collection writes.
import type { Instance } from '../../api/types.ts';
import { instanceRef, type IppEvent } from '../../kube/events.ts';

export const instanceVanished = (inst: Instance, providerID: string): IppEvent => ({
  regarding: instanceRef(inst),
  type: 'Warning',
  reason: 'InstanceVanished',
  action: 'GarbageCollect',
  note: `cloud instance ${providerID} no longer exists; deleting this Instance so its pods are provisioned again`,
});
