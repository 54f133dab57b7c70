// The controller's view of the cluster: informer caches of pods, ipp nodes, Instances and
// InstanceClasses, and the few lookups the controllers need. Reconcilers read only from here
// (and write to the API); they never keep state of their own between calls. Every lookup reads an
// index the informers maintain from their events, never a scan of a whole cache: at 50,000 cached
// pods a scan inside a per-instance loop is what starves the lease and the webhook.
import { isDeepStrictEqual } from 'node:util';
import type { KubeConfig, KubernetesObject, V1Node, V1Pod } from '@kubernetes/client-node';
import { GROUP, NODE_CLASS_LABEL, VERSION } from '../api/names.ts';
import type { Instance, InstanceClass } from '../api/types.ts';
import { claimOf, classOf, holdsClaim, isTerminal } from '../api/pods.ts';
import { Informer, type InformerStatus } from '../kube/informer.ts';
import type { Indexers } from '../kube/store.ts';
import type { Logger } from '../log.ts';
import { leanNode, leanPod } from './lean.ts';
import { Departures } from './departures.ts';
import { WaitingClock } from './waiting.ts';

/** `old`: the object an update (a watch's or a relist's) replaced, when there was one (see Wakes). */

/** The machine behind a Node: its providerID, or its name for a Node without one. */
const machineOf = (n: V1Node) => n.spec?.providerID || `node/${n.metadata!.name!}`;
export type ChangeHandler = {
  pod: (p: V1Pod, old?: V1Pod) => void;
  node: (n: V1Node, old?: V1Node) => void;
  instance: (i: Instance, old?: Instance) => void;
  /** `statusOnly`: an update that changed nothing but the status (ipp's own summary of the class). */
  instanceClass: (c: InstanceClass, statusOnly: boolean) => void;
};

const one = (v: string | undefined): readonly string[] => (v ? [v] : []);
const heldKey = (cls: string, instance: string) => `${cls}/${instance}`;

/** The indexes of each cache, by name; exported so tests can compare them with full scans. */
export const POD_INDEXERS: Indexers<V1Pod> = {
  node: (p) => one(p.spec?.nodeName),
  /**
   * "class/instance" for a pod of a class that claims the instance. Anyone may annotate a pod (only
   * an opted-in pod's admission drops the claim): a pod of another class, or of none, claims nothing.
   */
  claim: (p) => {
    const cls = classOf(p);
    const claim = claimOf(p);
    return cls && claim ? [heldKey(cls, claim)] : [];
  },
  class: (p) => one(classOf(p)),
  /** The class of a pod not bound to a node yet and not ended: what provisioning decides about. */
  unbound: (p) => (p.spec?.nodeName || isTerminal(p) ? [] : one(classOf(p))),
  /** "class/instance" for a workload of the class holding its claim: is an instance taken, without gathering pods. */
  held: (p) => {
    const cls = classOf(p);
    const claim = claimOf(p);
    return cls && claim && holdsClaim(p) ? [heldKey(cls, claim)] : [];
  },
};
export const NODE_INDEXERS: Indexers<V1Node> = {
  providerID: (n) => one(n.spec?.providerID),
};
export const INSTANCE_INDEXERS: Indexers<Instance & KubernetesObject> = {
  class: (i) => one(i.spec?.class),
  providerID: (i) => one(i.status?.providerID),
  nodeName: (i) => one(i.status?.nodeName),
};

/** Metadata (but the resourceVersion) and spec as they were: only the status changed. */
export function onlyStatusChanged(
  old: KubernetesObject & { status?: unknown },
  now: KubernetesObject & { status?: unknown },
) {
  const rest = (o: KubernetesObject & { status?: unknown }) => {
    const { status: _status, metadata, ...others } = o;
    const { resourceVersion: _rv, ...meta } = metadata ?? {};
    return { ...others, metadata: meta };
  };
  return isDeepStrictEqual(rest(old), rest(now));
}

/** For /readyz: each cache that has not listed, with its last error; undefined when all have. */
export function notSyncedReason(statuses: readonly InformerStatus[]): string | undefined {
  const waiting = statuses.filter((s) => !s.synced);
  if (!waiting.length) return undefined;
  return `caches not synced: ${waiting
    .map((s) => `${s.resource} has not listed yet${s.lastError ? ` (last error: ${s.lastError})` : ''}`)
    .join('; ')}`;
}

export interface ClusterStateOptions {
  /** Objects per LIST page; default 500. */
  pageSize?: number;
  /** Retry delays of failed lists and watches. */
  backoff?: { baseMs: number; maxMs: number };
}

export class ClusterState {
  readonly pods: Informer<V1Pod>;
  readonly nodes: Informer<V1Node>;
  readonly instances: Informer<Instance & KubernetesObject>;
  readonly classes: Informer<InstanceClass & KubernetesObject>;
  /** Since when each unbound pod has waited for ipp (a queue's gate lifted, else its creation). */
  private readonly waiting = new WaitingClock();
  /** Pods that left an ipp node without being seen to end (force-deleted). */
  private readonly departures = new Departures();

  constructor(
    kc: KubeConfig,
    logger: Logger,
    on: ChangeHandler,
    onActivity?: (resource: string, at: number) => void,
    options: ClusterStateOptions = {},
  ) {
    const common = (resource: string) => ({
      kubeconfig: kc,
      resource,
      logger,
      pageSize: options.pageSize,
      backoff: options.backoff,
      onActivity: (at: number) => onActivity?.(resource, at),
    });
    // All pods, not only ipp-class ones: idle and audit decisions need every pod on an ipp node.
    this.pods = new Informer<V1Pod>({
      ...common('pods'),
      path: '/api/v1/pods',
      indexers: POD_INDEXERS,
      transform: leanPod,
      onChange: (p, kind, old) => {
        this.waiting.seen(p, kind, old);
        this.departures.seen(p, kind, (n) => {
          const node = this.nodes.get(n);
          return node
            ? { created: Date.parse(String(node.metadata?.creationTimestamp ?? '')) || 0, machine: machineOf(node) }
            : undefined;
        });
        on.pod(p, old);
      },
    });
    this.nodes = new Informer<V1Node>({
      ...common('nodes'),
      path: '/api/v1/nodes',
      labelSelector: NODE_CLASS_LABEL,
      indexers: NODE_INDEXERS,
      transform: leanNode,
      onChange: (n, kind, old) => {
        // A machine outlives its Node (deleted, registered again): only a Node with no providerID to
        // tell its machine by is forgotten with it.
        if (kind === 'delete' && !n.spec?.providerID) this.departures.machineGone(machineOf(n));
        on.node(n, old);
      },
    });
    this.instances = new Informer<Instance & KubernetesObject>({
      ...common('instances'),
      path: `/apis/${GROUP}/${VERSION}/instances`,
      indexers: INSTANCE_INDEXERS,
      onChange: (i, kind, old) => {
        if (kind === 'delete' && i.status?.providerID) this.departures.machineGone(i.status.providerID);
        on.instance(i, old);
      },
    });
    this.classes = new Informer<InstanceClass & KubernetesObject>({
      ...common('instanceclasses'),
      path: `/apis/${GROUP}/${VERSION}/instanceclasses`,
      onChange: (c, kind, old) => on.instanceClass(c, kind === 'update' && !!old && onlyStatusChanged(old, c)),
    });
  }

  private all() {
    return [this.classes, this.instances, this.nodes, this.pods];
  }

  /**
   * Resolves once every cache holds a complete LIST (each retries with backoff until it does), or
   * when `signal` aborts first; check synced() afterwards. Nothing may reconcile before: a
   * controller acting on a cache that never listed would delete what it cannot see.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const all = Promise.all(this.all().map((i) => i.start()));
    if (!signal) return void (await all);
    if (signal.aborted) return;
    let onAbort!: () => void;
    const aborted = new Promise<void>((r) => (onAbort = r));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([all, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.all().map((i) => i.stop()));
  }

  synced(): boolean {
    return this.all().every((i) => i.hasSynced());
  }

  status(): InformerStatus[] {
    return this.all().map((i) => i.status());
  }

  /** Why the caches are not ready, naming each one that has not listed and its last error; undefined when synced. */
  notSyncedReason(...others: { status(): InformerStatus }[]): string | undefined {
    return notSyncedReason([...this.status(), ...others.map((o) => o.status())]);
  }

  /** The informer that has been silent longest, with how long: for /healthz. */
  stalest(): { resource: string; silentForMs: number } {
    return this.all()
      .map((i) => ({ resource: i.resource, silentForMs: i.quietForMs() }))
      .sort((a, b) => b.silentForMs - a.silentForMs)[0]!;
  }

  instanceClass(name: string): InstanceClass | undefined {
    return this.classes.get(name);
  }

  instance(name: string): Instance | undefined {
    return this.instances.get(name);
  }

  instancesOfClass(cls: string): Instance[] {
    return this.instances.byIndex('class', cls);
  }

  podsOfClass(cls: string): V1Pod[] {
    return this.pods.byIndex('class', cls);
  }

  /** Pods of the class not bound to a node yet and not ended: a burst's, not the class's thousands running. */
  unboundPodsOfClass(cls: string): V1Pod[] {
    return this.pods.byIndex('unbound', cls);
  }

  /** Does a workload of the class claim the instance and hold it (pods of other classes aside)? */
  claimHeld(cls: string, instance: string): boolean {
    return this.pods.countByIndex('held', heldKey(cls, instance)) > 0;
  }

  /** The pods of class `cls` that claim the instance: pods of other classes, or none, claim nothing. */
  podsClaiming(cls: string, instance: string): V1Pod[] {
    return this.pods.byIndex('claim', heldKey(cls, instance));
  }

  podsOnNode(node: string): V1Pod[] {
    return this.pods.byIndex('node', node);
  }

  waitingSince(p: V1Pod): number | undefined {
    return this.waiting.since(p);
  }

  unconfirmedExit(node: string): string | undefined {
    const n = this.nodes.get(node);
    return n ? this.departures.unconfirmed(machineOf(n)) : undefined;
  }

  /** Every node name some cached pod is bound to, ipp node or not: what a full audit sweep visits. */
  nodesWithPods(): string[] {
    return this.pods.indexValues('node');
  }

  /** Every class some Instance belongs to (a class may be gone while its Instances remain). */
  classesWithInstances(): string[] {
    return this.instances.indexValues('class');
  }

  node(name: string): V1Node | undefined {
    return this.nodes.get(name);
  }

  nodeByProviderID(providerID: string | undefined): V1Node | undefined {
    if (!providerID) return undefined;
    return this.nodes.byIndex('providerID', providerID)[0];
  }

  /** The Instance that registered as `node`, whether or not its Node object is cached now. */
  instanceOnNode(node: string): Instance | undefined {
    return this.instances.byIndex('nodeName', node)[0];
  }

  instanceByProviderID(providerID: string | undefined): Instance | undefined {
    if (!providerID) return undefined;
    return this.instances.byIndex('providerID', providerID)[0];
  }
}
