// Pods that left an ipp node without being seen to end. A kubelet ends a deleted pod before it goes:
// its containers stop and its phase turns Succeeded or Failed, then it is removed (kubernetes#115331,
// 1.27 on). A pod removed while still Pending or Running was force-deleted (grace period 0, which
// anyone who may delete the pod may ask for) or lost with its node: its containers may run on for up
// to its termination grace period, and under Pod isolation such a node must serve no other pod.
// Noted as the controller sees the deletion; a controller that starts after it does not know.
import type { V1Pod } from '@kubernetes/client-node';
import { isTerminal, isWorkload, podKey } from '../api/pods.ts';

/** When kube-scheduler (or ipp) bound the pod, to the second; undefined where the pod does not say. */
function scheduledAt(p: V1Pod): number | undefined {
  const c = p.status?.conditions?.find((x) => x.type === 'PodScheduled' && x.status === 'True');
  const t = c?.lastTransitionTime ? Date.parse(String(c.lastTransitionTime)) : NaN;
  return Number.isNaN(t) ? undefined : t;
}

export class Departures {
  /** The pod ("namespace/name") that left each node unconfirmed, by node name. */
  private readonly byNode = new Map<string, string>();

  /**
   * A pod event. `ippNode`: the ipp node of that name, if there is one (no other is ever ipp's to
   * reuse), with its creation time: a pod scheduled before it was bound to an earlier machine of the
   * same name (EC2 reuses them), whose pods the pod garbage collector removes long after.
   */
  seen(p: V1Pod, kind: 'add' | 'update' | 'delete', ippNode: (node: string) => { created: number } | undefined): void {
    const node = p.spec?.nodeName;
    if (kind !== 'delete' || !node || isTerminal(p) || !isWorkload(p)) return;
    const current = ippNode(node);
    if (!current) return;
    const scheduled = scheduledAt(p);
    if (scheduled !== undefined && scheduled < current.created) return;
    this.byNode.set(node, podKey(p));
  }

  /** The node is gone: a node registering later under its name (EC2 reuses them) is another machine. */
  nodeGone(node: string): void {
    this.byNode.delete(node);
  }

  /** The pod ("namespace/name") that left `node` without being seen to end, if one did. */
  unconfirmed(node: string): string | undefined {
    return this.byNode.get(node);
  }
}
