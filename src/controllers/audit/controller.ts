// The auditor: admission keeps other pods off ipp nodes, and this reports anything that got there
// anyway (a pod bound by hand, a webhook outage, a relabelled node, an untrusted DaemonSet) and any
// pod of a class running on a shared node (a later webhook added the label) as a Warning Event on
// the pod, a log line and the ipp_isolation_violations metrics. It reports; it does not evict.
//
// It audits one node at a time, when a pod or node event touches that node, from the pods-by-node
// index: a pass over every pod of a 50,000-pod cluster every few seconds would hold the one thread
// that also renews the lease and answers admission. A slow full sweep (every node some pod is bound
// to, every ipp node) catches what an event could not: a DaemonSet verdict, a missed watch event.
// Touched nodes are audited in slices of a few milliseconds, so a sweep never blocks either.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { isolationViolation } from './events.ts';
import type { EventPublisher } from '../../kube/event.ts';
import type { Logger } from '../../log.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { spent, yieldToEventLoop } from '../../kube/slice.ts';
import { NodeAgentTrust, type DaemonSetReader } from './trust.ts';
import { nodeFindings, violations, type Violation } from './violations.ts';

/** The cache reads the auditor makes (ClusterState has them). */
export interface AuditView {
  podsOnNode(node: string): V1Pod[];
  /** The ipp node of that name; undefined for a shared node (the cache holds ipp nodes only). */
  node(name: string): V1Node | undefined;
  nodes: { list(): readonly V1Node[] };
  nodesWithPods(): string[];
  /** The Instance registered as that node, even while its Node object is missing (deleted, re-registering). */
  instanceOnNode(node: string): { spec: { class: string; isolation?: string } } | undefined;
}

export interface AuditorOptions {
  /** Namespaces whose DaemonSets are trusted node agents (--trusted-daemonset-namespaces); default kube-system. */
  trustedDaemonSetNamespaces?: readonly string[];
  /** Reads a DaemonSet, to trust a pod's owner reference only when it resolves to the real object. */
  readDaemonSet?: DaemonSetReader;
  /** Every node is audited again this often, events or not; default 5 minutes. */
  sweepIntervalMs?: number;
  /** Events this close together are audited in one batch; default 100 ms. */
  batchDelayMs?: number;
  /** A node whose DaemonSet read failed is audited again after this long; default 5 s. */
  retryDelayMs?: number;
}

/** `onNode`: for the Node's Event, which may name the other pod; the pod's Event is read in its own namespace. */
function describeViolation(v: Violation, onNode = false): string {
  if (v.beside) {
    const other = onNode ? `${v.beside.metadata?.namespace}/${v.beside.metadata?.name}` : 'another pod of the class';
    return `isolation violation: a second pod of class ${v.podClass} runs on node ${v.node}, beside ${other}, and its instance serves one pod at a time (isolation: Pod); delete the pod and check how it was placed`;
  }
  const what = v.podClass ? `a pod of class ${v.podClass}` : 'a pod without ipp-class';
  return v.nodeClass === undefined
    ? `isolation violation: ${what} runs on node ${v.node}, which is not an ipp node: it shares the node with other pods; delete the pod and check which admission webhook changed it`
    : `isolation violation: ${what} runs on node ${v.node}, which is dedicated to class ${v.nodeClass}; delete or move the pod and check how it was placed`;
}

export class Auditor {
  private readonly state: AuditView;
  private readonly events: EventPublisher;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly sweepIntervalMs: number;
  private readonly batchDelayMs: number;
  private readonly retryDelayMs: number;
  /** Node → the pod UIDs reported as violating there, so each violation is reported once. */
  private readonly current = new Map<string, Set<string>>();
  /** Nodes to audit, in the order they were touched. */
  private readonly dirty = new Set<string>();
  /** DaemonSet owner UIDs seen on audited pods since the last sweep began: the verdicts worth keeping. */
  private owners: Set<string> | undefined;
  private running = false;
  private draining = false;
  private batch: NodeJS.Timeout | undefined;
  readonly trust: NodeAgentTrust;

  constructor(state: AuditView, events: EventPublisher, metrics: Metrics, logger: Logger, o: AuditorOptions = {}) {
    this.state = state;
    this.events = events;
    this.metrics = metrics;
    this.logger = logger;
    this.sweepIntervalMs = o.sweepIntervalMs ?? 5 * 60_000;
    this.batchDelayMs = o.batchDelayMs ?? 100;
    this.retryDelayMs = o.retryDelayMs ?? 5_000;
    this.trust = new NodeAgentTrust(
      o.trustedDaemonSetNamespaces ?? ['kube-system'],
      o.readDaemonSet,
      logger,
      (nodes, answered) => {
        if (answered) for (const n of nodes) this.touch(n);
        else setTimeout(() => nodes.forEach((n) => this.touch(n)), this.retryDelayMs).unref();
      },
    );
  }

  /** A pod or node event concerns this node: audit it soon. Ignored while not running (run() sweeps first). */
  touch(node: string | undefined): void {
    if (!node || !this.running) return;
    this.dirty.add(node);
    if (this.batch || this.draining) return;
    this.batch = setTimeout(() => {
      this.batch = undefined;
      void this.drain();
    }, this.batchDelayMs);
  }

  /** Audits every node now and every sweepIntervalMs, and touched nodes as they come, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    this.running = true;
    this.owners = undefined;
    this.sweep();
    const timer = setInterval(() => this.sweep(), this.sweepIntervalMs);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    clearInterval(timer);
    clearTimeout(this.batch);
    this.batch = undefined;
    this.running = false;
    this.dirty.clear();
  }

  /** Resolves once no touched node waits to be audited and no DaemonSet read is under way (tests). */
  async settled(): Promise<void> {
    while (this.batch || this.draining || this.dirty.size > 0) await new Promise((r) => setTimeout(r, 5));
    await this.trust.settled();
    while (this.batch || this.draining || this.dirty.size > 0) await new Promise((r) => setTimeout(r, 5));
  }

  /** Queues every node a pod is bound to, every ipp node and every node with a violation reported. */
  sweep(): void {
    if (this.owners) this.trust.retain(this.owners);
    this.owners = new Set();
    for (const n of this.state.nodesWithPods()) this.touch(n);
    for (const n of this.state.nodes.list()) this.touch(n.metadata?.name);
    for (const n of this.current.keys()) this.touch(n);
  }

  /** Audits the touched nodes, yielding to the event loop every few milliseconds. */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.running && this.dirty.size > 0) {
        for (const node of this.dirty) {
          this.dirty.delete(node);
          this.auditNodeSafely(node);
          if (spent()) break;
        }
        if (this.dirty.size > 0) await yieldToEventLoop();
      }
    } finally {
      this.draining = false;
    }
  }

  private auditNodeSafely(node: string): void {
    try {
      this.auditNode(node);
    } catch (e) {
      this.logger.warn({ err: e, node }, 'could not audit node; it is audited again on the next sweep');
    }
  }

  /** Reports what runs on `node` and must not, and keeps that node's gauge equal to what does now. */
  auditNode(node: string): void {
    const pods = this.state.podsOnNode(node);
    const ippNode = this.state.node(node);
    if (this.owners) for (const p of pods) for (const r of p.metadata?.ownerReferences ?? []) this.owners.add(r.uid);
    // An Instance's node missing from the labelled ones (re-registering, or its labels dropped) is not a shared node.
    const inst = ippNode ? undefined : this.state.instanceOnNode(node);
    const instanceNodes = new Map(inst ? [[node, inst.spec.class]] : []);
    // Judged by the isolation its Instance was created under, not the class's now: an edit from Class
    // to Pod leaves the pods its earlier instances share where they are (an Instance from before the
    // field is not judged).
    const onePod = (n: string) => this.state.instanceOnNode(n)?.spec.isolation === 'Pod';
    const found = violations(
      ippNode ? [ippNode] : [],
      pods,
      (p, n) => this.trust.standing(p, n),
      instanceNodes,
      onePod,
    );
    const { report, current } = nodeFindings(this.current.get(node) ?? new Set(), found);
    for (const v of report) {
      const note = describeViolation(v);
      this.events.record(...isolationViolation(v.pod, v.node, note, describeViolation(v, true)));
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
    if (current.size > 0) {
      this.current.set(node, current);
      this.metrics.isolationViolations.set({ node }, current.size);
    } else if (this.current.delete(node)) {
      this.metrics.isolationViolations.remove({ node });
    }
  }
}
