// The auditor: admission keeps other pods off ipp nodes, and this reports anything that got there
// anyway (a pod bound by hand, a webhook outage, a relabelled node, an untrusted DaemonSet) and any
// pod of a class running on a shared node (a later webhook added the label) as a Warning Event on
// the pod, a log line and the ipp_isolation_violations metrics. It reports; it does not evict.
import { isolationViolation } from './events.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { Logger } from '../../log.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import type { ClusterState } from '../../state/cluster.ts';
import { NodeAgentTrust, type DaemonSetReader } from './trust.ts';
import { violations, type Violation } from './violations.ts';

export interface AuditorOptions {
  /** Namespaces whose DaemonSets are trusted node agents (--trusted-daemonset-namespaces); default kube-system. */
  trustedDaemonSetNamespaces?: readonly string[];
  /** Reads a DaemonSet, to trust a pod's owner reference only when it resolves to the real object. */
  readDaemonSet?: DaemonSetReader;
}

function describeViolation(v: Violation): string {
  const what = v.podClass ? `a pod of class ${v.podClass}` : 'a pod without ipp-class';
  return v.nodeClass === undefined
    ? `isolation violation: ${what} runs on node ${v.node}, which is not an ipp node: it shares the node with other pods; delete the pod and check which admission webhook changed it`
    : `isolation violation: ${what} runs on node ${v.node}, which is dedicated to class ${v.nodeClass}; delete or move the pod and check how it was placed`;
}

export class Auditor {
  private readonly state: ClusterState;
  private readonly events: EventRecorder;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  /** Pod UIDs already counted, so the counter counts violations, not audit passes. */
  private readonly reported = new Set<string>();
  private readonly nodesWithViolations = new Set<string>();
  readonly trust: NodeAgentTrust;

  constructor(state: ClusterState, events: EventRecorder, metrics: Metrics, logger: Logger, o: AuditorOptions = {}) {
    this.state = state;
    this.events = events;
    this.metrics = metrics;
    this.logger = logger;
    this.trust = new NodeAgentTrust(o.trustedDaemonSetNamespaces ?? ['kube-system'], o.readDaemonSet, logger);
  }

  audit(): void {
    const pods = this.state.pods.list();
    const instanceNodes = new Set(this.state.instances.list().flatMap((i) => i.status?.nodeName ?? []));
    const found = violations(this.state.nodes.list(), pods, (p, n) => this.trust.standing(p, n), instanceNodes);
    this.trust.retain(new Set(pods.flatMap((p) => (p.metadata?.ownerReferences ?? []).map((r) => r.uid))));
    const perNode = new Map<string, number>();
    const seen = new Set<string>();
    for (const v of found) {
      const uid = v.pod.metadata!.uid!;
      seen.add(uid);
      perNode.set(v.node, (perNode.get(v.node) ?? 0) + 1);
      if (this.reported.has(uid)) continue;
      this.reported.add(uid);
      const note = describeViolation(v);
      this.events.record(...isolationViolation(v.pod, v.node, note));
      this.metrics.isolationViolationsTotal.inc({ class: v.nodeClass ?? v.podClass ?? '', node: v.node });
      this.logger.error(
        {
          pod: `${v.pod.metadata!.namespace}/${v.pod.metadata!.name}`,
          node: v.node,
          class: v.nodeClass,
          podClass: v.podClass,
        },
        note,
      );
    }
    for (const uid of this.reported) if (!seen.has(uid)) this.reported.delete(uid);
    for (const node of this.nodesWithViolations)
      if (!perNode.has(node)) this.metrics.isolationViolations.remove({ node });
    this.nodesWithViolations.clear();
    for (const [node, n] of perNode) {
      this.metrics.isolationViolations.set({ node }, n);
      this.nodesWithViolations.add(node);
    }
  }
}
