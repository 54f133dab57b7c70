// The isolation invariant as a pure function of the cluster's Nodes and Pods (see invariant.ts, which
// samples it through every e2e file, and test/chaos, which samples it through a chaos run): no node
// hosts pods of two classes, a pod of a class runs only on an ipp node of that class, an ipp node
// hosts nothing else but node agents (DaemonSet pods from kube-system, mirror pods), and a node of a
// class with Pod isolation hosts one pod of it at a time.
import type { V1Node, V1Pod } from '@kubernetes/client-node';

const CLASS_LABEL = 'ipp-class';
const NODE_CLASS_LABEL = 'ipp.dev/class';
const TRUSTED_DAEMONSET_NAMESPACES = ['kube-system'];

export interface Breach {
  pod: string;
  node: string;
  podClass: string | undefined;
  nodeClass: string | undefined;
  /** Under Pod isolation: the pod of the class already on the node. */
  beside?: string;
}

const isAgent = (p: V1Pod) =>
  p.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined ||
  (TRUSTED_DAEMONSET_NAMESPACES.includes(p.metadata?.namespace ?? '') &&
    (p.metadata?.ownerReferences ?? []).some((r) => r.kind === 'DaemonSet' && r.controller));

/**
 * @param onePod the classes with Pod isolation: a second live pod of one on its node is a breach too
 *   (kept pods leave first: one being deleted, or finished, is not counted).
 */
export function breaches(
  nodes: readonly V1Node[],
  pods: readonly V1Pod[],
  skip: ReadonlySet<string>,
  onePod: ReadonlySet<string> = new Set(),
): Breach[] {
  const classOf = new Map(nodes.map((n) => [n.metadata!.name!, n.metadata?.labels?.[NODE_CLASS_LABEL]]));
  const first = new Map<string, string>();
  const out: Breach[] = [];
  for (const p of pods) {
    const node = p.spec?.nodeName;
    if (!node || !classOf.has(node) || skip.has(p.metadata?.namespace ?? '')) continue;
    // Going away: the leftovers of an earlier file's deliberate breach, its namespace being deleted.
    if (p.metadata?.deletionTimestamp) continue;
    if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' || isAgent(p)) continue;
    const podClass = p.metadata?.labels?.[CLASS_LABEL];
    const nodeClass = classOf.get(node);
    const name = `${p.metadata?.namespace}/${p.metadata?.name}`;
    if ((nodeClass !== undefined || podClass !== undefined) && podClass !== nodeClass)
      out.push({ pod: name, node, podClass, nodeClass });
    else if (nodeClass !== undefined && onePod.has(nodeClass)) {
      const beside = first.get(node);
      if (beside === undefined) first.set(node, name);
      else out.push({ pod: name, node, podClass, nodeClass, beside });
    }
  }
  return out;
}
