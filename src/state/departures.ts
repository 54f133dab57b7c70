// Pods that left an ipp node without being seen to end. A kubelet ends a deleted pod before it goes:
// its containers stop and its phase turns Succeeded or Failed, then it is removed (kubernetes#115331,
// 1.27 on). A pod removed while still Pending or Running was force-deleted (grace period 0, which
// anyone who may delete the pod may ask for) or lost with its node: its containers may run on for up
// to its termination grace period, and under Pod isolation such a node must serve no other pod.
// Noted as the controller sees the deletion; a controller that starts after it does not know.
import type { V1Pod } from '@kubernetes/client-node';
import { isTerminal, isWorkload, podKey } from '../api/pods.ts';

export class Departures {
  /** The pod that left each node unconfirmed, by node name, and when it was seen to. */
  private readonly byNode = new Map<string, { pod: string; at: number }>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** A pod event; `isIppNode`: is the node one ipp launched (no other node is ever ipp's to reuse). */
  seen(p: V1Pod, kind: 'add' | 'update' | 'delete', isIppNode: (node: string) => boolean): void {
    const node = p.spec?.nodeName;
    if (kind !== 'delete' || !node || isTerminal(p) || !isWorkload(p) || !isIppNode(node)) return;
    this.byNode.set(node, { pod: podKey(p), at: this.now() });
  }

  /** The node is gone: a node registering later under its name (EC2 reuses them) is another machine. */
  nodeGone(node: string): void {
    this.byNode.delete(node);
  }

  /** The pod ("namespace/name") that left `node` without being seen to end, if one did. */
  unconfirmed(node: string): string | undefined {
    return this.byNode.get(node)?.pod;
  }
}
