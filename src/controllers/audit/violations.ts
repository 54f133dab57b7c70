// The isolation invariant, as a check: on an ipp node, every pod is a node agent (a trusted
// DaemonSet's pod or the node's own mirror pod) or a pod of the node's own class, and under Pod
// isolation one such pod at a time; and a pod of a class runs on an ipp node of that class, never on
// a shared node. Anything else slipped past admission (or was placed around it) and is reported.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { NODE_CLASS_LABEL } from '../../api/names.ts';
import { classOf, isMirrorPod, isTerminal } from '../../api/pods.ts';

export interface Violation {
  pod: V1Pod;
  node: string;
  /** The class the node is dedicated to; undefined for a shared node running a pod of a class. */
  nodeClass: string | undefined;
  /** The pod's class, or undefined for a pod that is not an ipp pod at all. */
  podClass: string | undefined;
  /** Under Pod isolation: the older pod of the class the node already runs. */
  beside?: V1Pod;
}

/**
 * How a pod counts on its node: a node agent, a workload, or not known yet (an owner not verified
 * yet: reporting waits for the answer rather than guessing).
 */
export type Standing = 'agent' | 'workload' | 'unknown';

/**
 * A mirror pod the node's kubelet made: its owner is that Node, by UID. Anyone who may create pods
 * can write the mirror annotation, but the garbage collector deletes a pod whose owner UID does not
 * exist, so a forged owner does not last.
 */
export function isOwnMirrorPod(pod: V1Pod, node: V1Node): boolean {
  return (
    isMirrorPod(pod) &&
    (pod.metadata?.ownerReferences ?? []).some(
      (r) => r.kind === 'Node' && r.name === node.metadata?.name && r.uid === node.metadata?.uid,
    )
  );
}

/**
 * @param ippNodes the nodes labelled ipp.dev/class
 * @param pods every pod in the cluster
 * @param standing how a pod counts on the ipp node it runs on
 * @param instanceNodes the node names Instances registered with, and the Instance's class: ipp nodes
 *   even while their Node is not among the labelled ones (deleted and re-registering, a cache gap, or
 *   its kubelet dropped its ipp labels), so never taken for shared nodes, and judged by that class
 * @param onePod was the node's Instance created under Pod isolation (one pod of its class at a time)?
 */
export function violations(
  ippNodes: readonly V1Node[],
  pods: readonly V1Pod[],
  standing: (pod: V1Pod, node: V1Node) => Standing,
  instanceNodes: ReadonlyMap<string, string> = new Map(),
  onePod: (node: string) => boolean = () => false,
): Violation[] {
  const byName = new Map(ippNodes.map((n) => [n.metadata!.name!, n]));
  const out: Violation[] = [];
  /** Node → the live pods of its class, under Pod isolation. */
  const sharing = new Map<string, { cls: string; pods: V1Pod[] }>();
  const own = (node: string, cls: string, pod: V1Pod) => {
    // One going away (its node is reused only once it is gone) and the kubelet's mirror pods aside.
    if (!onePod(node) || pod.metadata?.deletionTimestamp || isMirrorPod(pod)) return;
    const s = sharing.get(node) ?? { cls, pods: [] };
    s.pods.push(pod);
    sharing.set(node, s);
  };
  for (const pod of pods) {
    const nodeName = pod.spec?.nodeName;
    if (!nodeName || isTerminal(pod)) continue;
    const podClass = classOf(pod);
    const node = byName.get(nodeName);
    if (!node) {
      const instanceClass = instanceNodes.get(nodeName);
      if (instanceClass !== undefined) {
        // An Instance's node: its own class's pods belong there. Mirror pods are left to the node's
        // return (their owner is the Node, by a UID not known here); anything else is judged as on an
        // ipp node of that class (a node that dropped its labels takes any pod that tolerates all).
        if (podClass === instanceClass) own(nodeName, instanceClass, pod);
        if (podClass === instanceClass || isMirrorPod(pod)) continue;
        const standIn: V1Node = { metadata: { name: nodeName, labels: { [NODE_CLASS_LABEL]: instanceClass } } };
        if (standing(pod, standIn) === 'workload')
          out.push({ pod, node: nodeName, nodeClass: instanceClass, podClass });
        continue;
      }
      // A pod of a class on a shared node: a mutating webhook after ipp's added the label, or the
      // pod escaped its gate. Mirror pods are the kubelet's own, whatever their labels.
      if (podClass !== undefined && !isMirrorPod(pod))
        out.push({ pod, node: nodeName, nodeClass: undefined, podClass });
      continue;
    }
    const nodeClass = node.metadata?.labels?.[NODE_CLASS_LABEL];
    if (podClass === nodeClass && podClass !== undefined) {
      own(nodeName, podClass, pod);
      continue;
    }
    const s = standing(pod, node);
    if (s === 'workload') out.push({ pod, node: nodeName, nodeClass, podClass });
  }
  for (const [node, { cls, pods: sharers }] of sharing) {
    if (sharers.length < 2) continue;
    // Oldest first; a second's tie broken by UID, so the same pod is reported at every audit.
    const at = (p: V1Pod) => Date.parse(String(p.metadata?.creationTimestamp ?? '')) || 0;
    const [first, ...rest] = [...sharers].sort(
      (a, b) => at(a) - at(b) || (a.metadata?.uid ?? '').localeCompare(b.metadata?.uid ?? ''),
    );
    for (const pod of rest) out.push({ pod, node, nodeClass: cls, podClass: cls, beside: first });
  }
  return out;
}

/** What auditing one node again changes: which violations to report now, and which pod UIDs violate now. */
export interface NodeFindings {
  /** Violations not reported before: each is reported once, however often the node is audited. */
  report: Violation[];
  /** Pod UIDs violating now: compared with on the node's next audit. */
  current: Set<string>;
}

/**
 * @param previously the pod UIDs on this node reported as violating when it was last audited
 * @param found what violations() finds on the node now
 */
export function nodeFindings(previously: ReadonlySet<string>, found: readonly Violation[]): NodeFindings {
  const current = new Set<string>();
  const report: Violation[] = [];
  for (const v of found) {
    const uid = v.pod.metadata!.uid!;
    current.add(uid);
    if (!previously.has(uid)) report.push(v);
  }
  return { report, current };
}
