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

/** What Departures needs to know of the ipp node a pod was bound to. */
export interface DepartureNode {
  /** Its creation, in ms since the epoch. */
  created: number;
  /** The machine behind it: its providerID (`node/<name>` for a node without one). */
  machine: string;
}

export class Departures {
  /**
   * The pod ("namespace/name") that left each machine unconfirmed, by machine: a Node deleted and
   * registered again by the same machine (a kubelet restarted with its Node gone) still runs what it
   * ran, while another machine registering under a reused name does not.
   */
  private readonly byMachine = new Map<string, string>();

  /**
   * A pod event. `ippNode`: the ipp node of that name, if there is one (no other is ever ipp's to
   * reuse). A pod scheduled before that node's creation was bound to an earlier machine of the same
   * name (EC2 reuses them), whose pods the pod garbage collector removes long after.
   */
  seen(p: V1Pod, kind: 'add' | 'update' | 'delete', ippNode: (node: string) => DepartureNode | undefined): void {
    const node = p.spec?.nodeName;
    if (kind !== 'delete' || !node || isTerminal(p) || !isWorkload(p)) return;
    const current = ippNode(node);
    if (!current) return;
    const scheduled = scheduledAt(p);
    if (scheduled !== undefined && scheduled < current.created) return;
    this.byMachine.set(current.machine, podKey(p));
  }

  /** The machine is gone for good (its Instance deleted, or a Node without a providerID deleted). */
  machineGone(machine: string): void {
    this.byMachine.delete(machine);
  }

  /** The pod ("namespace/name") that left this machine without being seen to end, if one did. */
  unconfirmed(machine: string): string | undefined {
    return this.byMachine.get(machine);
  }
}
