// The Events of placing a pod, one small function each.
import type { V1Pod } from '@kubernetes/client-node';
import { podRef, type IppEvent } from '../../kube/events.ts';

export const pinned = (pod: V1Pod, instance: string, node: string): IppEvent => ({
  regarding: podRef(pod),
  type: 'Normal',
  reason: 'Pinned',
  action: 'Pin',
  note: `pinned to node ${node} of Instance ${instance}; kube-scheduler binds it`,
});

export const bound = (pod: V1Pod, instance: string, node: string): IppEvent => ({
  regarding: podRef(pod),
  type: 'Normal',
  reason: 'Bound',
  action: 'Bind',
  note: `bound to node ${node} of Instance ${instance}`,
});
