// The Events the auditor writes: the same violation, on the pod and on the node it should not be on.
import type { V1Pod } from '@kubernetes/client-node';
import { podRef, type IppEvent } from '../../kube/events.ts';

/** `nodeNote`: the Node's note, when it may say more than the pod's namespace may read. */
export const isolationViolation = (pod: V1Pod, node: string, note: string, nodeNote = note): IppEvent[] => [
  { regarding: podRef(pod), type: 'Warning', reason: 'IsolationViolation', action: 'Audit', note },
  {
    regarding: { apiVersion: 'v1', kind: 'Node', name: node },
    type: 'Warning',
    reason: 'IsolationViolation',
    action: 'Audit',
    note: nodeNote,
  },
];
