// The isolation invariant, as a check: on an ipp node, every pod is a DaemonSet or mirror pod, or
// a pod of the node's own class. Anything else slipped past admission and is reported.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { NODE_CLASS_LABEL } from '../../api/names.ts';
import { classOf, isDaemonSetPod, isMirrorPod, isTerminal } from '../../api/pods.ts';

export interface Violation {
  pod: V1Pod;
  node: string;
  nodeClass: string;
  /** The pod's class, or undefined for a pod that is not an ipp pod at all. */
  podClass: string | undefined;
}

export function violations(nodes: readonly V1Node[], podsOnNode: (node: string) => readonly V1Pod[]): Violation[] {
  const out: Violation[] = [];
  for (const n of nodes) {
    const nodeClass = n.metadata?.labels?.[NODE_CLASS_LABEL];
    if (!nodeClass) continue;
    for (const pod of podsOnNode(n.metadata!.name!)) {
      if (isTerminal(pod) || isDaemonSetPod(pod) || isMirrorPod(pod)) continue;
      const podClass = classOf(pod);
      if (podClass !== nodeClass) out.push({ pod, node: n.metadata!.name!, nodeClass, podClass });
    }
  }
  return out;
}
