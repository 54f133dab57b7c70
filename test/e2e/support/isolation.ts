// The isolation invariant as a pure function of the cluster's Nodes and Pods (see invariant.ts, which
// samples it through every e2e file, and test/chaos, which samples it through a chaos run): no node
// hosts pods of two classes, a pod of a class runs only on an ipp node of that class, and an ipp node
// hosts nothing else but node agents (DaemonSet pods from kube-system, mirror pods).
import type { V1Node, V1Pod } from '@kubernetes/client-node';

const CLASS_LABEL = 'ipp-class';
const NODE_CLASS_LABEL = 'ipp.dev/class';
const TRUSTED_DAEMONSET_NAMESPACES = ['kube-system'];

export interface Breach {
  pod: string;
  node: string;
  podClass: string | undefined;
  nodeClass: string | undefined;
}

const isAgent = (p: V1Pod) =>
  p.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined ||
  (TRUSTED_DAEMONSET_NAMESPACES.includes(p.metadata?.namespace ?? '') &&
    (p.metadata?.ownerReferences ?? []).some((r) => r.kind === 'DaemonSet' && r.controller));

export function breaches(nodes: readonly V1Node[], pods: readonly V1Pod[], skip: ReadonlySet<string>): Breach[] {
  const classOf = new Map(nodes.map((n) => [n.metadata!.name!, n.metadata?.labels?.[NODE_CLASS_LABEL]]));
  const out: Breach[] = [];
  for (const p of pods) {
    const node = p.spec?.nodeName;
    if (!node || !classOf.has(node) || skip.has(p.metadata?.namespace ?? '')) continue;
    // Going away: the leftovers of an earlier file's deliberate breach, its namespace being deleted.
    if (p.metadata?.deletionTimestamp) continue;
    if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' || isAgent(p)) continue;
    const podClass = p.metadata?.labels?.[CLASS_LABEL];
    const nodeClass = classOf.get(node);
    if ((nodeClass !== undefined || podClass !== undefined) && podClass !== nodeClass)
      out.push({ pod: `${p.metadata?.namespace}/${p.metadata?.name}`, node, podClass, nodeClass });
  }
  return out;
}
