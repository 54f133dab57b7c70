// The Events of placing a pod, one small function each. A pin has none: kube-scheduler's Scheduled
// Event follows it; a bind is ipp's alone, so ipp says where it put the pod.
import type { V1Pod } from '@kubernetes/client-node';
import { podRef, type IppEvent } from '../../kube/events.ts';

export const bound = (pod: V1Pod, instance: string, node: string): IppEvent => ({
  regarding: podRef(pod),
  type: 'Normal',
  reason: 'Bound',
  action: 'Bind',
  note: `bound to node ${node} of Instance ${instance}`,
});
