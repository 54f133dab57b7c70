// The controllers' collaborators for unit tests: a cluster view over plain arrays, API writers that
// record what they were asked (and can be told to fail), and a context wiring them with a fake cloud.
import type { V1Node, V1Pod, V1PodCondition } from '@kubernetes/client-node';
import type { Instance, InstanceClass } from '../../../src/api/types.ts';
import { POD_INSTANCE_ANNOTATION, WARM_LABEL } from '../../../src/api/names.ts';
import { claimOf, classOf, holdsClaim, isTerminal } from '../../../src/api/pods.ts';
import type { ClusterView, ControllerContext, KubeWrites } from '../../../src/controllers/context.ts';
import { ClaimsInFlight } from '../../../src/controllers/claims.ts';
import { CreatesInFlight } from '../../../src/controllers/creates.ts';
import type { IppEvent } from '../../../src/kube/events.ts';
import { createLogger } from '../../../src/log.ts';
import { Metrics } from '../../../src/metrics/metrics.ts';
import { FakeCloudProvider } from './cloudprovider.ts';

export class FakeCluster implements ClusterView {
  podList: V1Pod[] = [];
  nodeList: V1Node[] = [];
  instanceList: Instance[] = [];
  classList: InstanceClass[] = [];
  /** Nodes as a direct read from the API server sees them (the cache may lag). */
  apiNodes: V1Node[] = [];
  /** The Instances as the API server has them, when a test makes the cache differ; else the cache's. */
  apiInstances: Instance[] | undefined = undefined;
  /** The pods as the API server has them, when a test makes the cache differ; else the cache's. */
  apiPods: V1Pod[] | undefined = undefined;

  /** How long the pod "watch" has been silent (0: live). */
  podsSilentForMs = 0;
  readonly pods = {
    get: (name: string, ns?: string) =>
      this.podList.find((p) => p.metadata?.name === name && p.metadata?.namespace === ns),
    silentForMs: () => this.podsSilentForMs,
  };
  readonly nodes = { list: () => this.nodeList };
  /** How long the Instance "watch" has been silent (0: live). */
  instancesSilentForMs = 0;
  readonly instances = { list: () => this.instanceList, silentForMs: () => this.instancesSilentForMs };
  readonly classes = { list: () => this.classList };

  instance(name: string) {
    return this.instanceList.find((i) => i.metadata.name === name);
  }
  instanceClass(name: string) {
    return this.classList.find((c) => c.metadata.name === name);
  }
  instancesOfClass(cls: string) {
    return this.instanceList.filter((i) => i.spec.class === cls);
  }
  podsOfClass(cls: string) {
    return this.podList.filter((p) => classOf(p) === cls);
  }
  unboundPodsOfClass(cls: string) {
    return this.podList.filter((p) => classOf(p) === cls && !p.spec?.nodeName && !isTerminal(p));
  }
  claimHeld(cls: string, instance: string) {
    return this.podList.some((p) => classOf(p) === cls && claimOf(p) === instance && holdsClaim(p));
  }
  podsClaiming(cls: string, instance: string) {
    return this.podList.filter((p) => classOf(p) === cls && claimOf(p) === instance);
  }
  podsOnNode(node: string) {
    return this.podList.filter((p) => p.spec?.nodeName === node);
  }
  /** The pod that left each node without being seen to end, by node name. */
  unconfirmedExits = new Map<string, string>();
  unconfirmedExit(node: string) {
    return this.unconfirmedExits.get(node);
  }
  /** When a queue's gate was lifted, by pod name; else the pod waits from its creation. */
  released = new Map<string, number>();
  waitingSince(p: V1Pod) {
    const created = Date.parse(String(p.metadata?.creationTimestamp ?? ''));
    return this.released.get(p.metadata?.name ?? '') ?? (Number.isNaN(created) ? undefined : created);
  }
  node(name: string) {
    return this.nodeList.find((n) => n.metadata?.name === name);
  }
  nodeByProviderID(id: string | undefined) {
    return id ? this.nodeList.find((n) => n.spec?.providerID === id) : undefined;
  }
  instanceOnNode(node: string) {
    return this.instanceList.find((i) => i.status?.nodeName === node);
  }
  instanceByProviderID(id: string | undefined) {
    return id ? this.instanceList.find((i) => i.status?.providerID === id) : undefined;
  }
}

/** Every write, in order, as [writer.method, argument summary]. */
export type Write = [string, ...unknown[]];

export class FakeWrites implements KubeWrites {
  readonly log: Write[] = [];
  /** Instance name → the isolation its create recorded. */
  readonly createdIsolation = new Map<string, string>();
  /** Thrown by the next write whose name (e.g. 'instances.delete') matches, then cleared. */
  readonly failNext = new Map<string, unknown>();
  /** Instances another writer has deleted meanwhile: a write that answers with the object shows it. */
  readonly deletingInstances = new Set<string>();
  /** Nodes changed since they were read: a release (preconditioned on the version read) writes nothing. */
  readonly changedNodes = new Set<string>();

  private record(what: string, ...args: unknown[]): Promise<void> {
    this.log.push([what, ...args]);
    const err = this.failNext.get(what);
    if (err !== undefined) {
      this.failNext.delete(what);
      return Promise.reject(err);
    }
    return Promise.resolve();
  }

  readonly instances = {
    // The isolation recorded at creation is kept apart (createdIsolation), so the write log reads as before.
    create: (
      name: string,
      cls: string,
      { isolation, ...opts }: { warm?: boolean; zones?: readonly string[]; isolation?: 'Pod' | 'Class' } = {},
    ) => {
      if (isolation) this.createdIsolation.set(name, isolation);
      return opts.warm || opts.zones
        ? this.record('instances.create', name, cls, opts)
        : this.record('instances.create', name, cls);
    },
    patchStatus: (name: string, status: Record<string, unknown>) => this.record('instances.patchStatus', name, status),
    replaceStatus: (inst: Instance, status: unknown) =>
      this.record('instances.replaceStatus', inst.metadata.name, inst.metadata.resourceVersion, status),
    delete: (name: string, resourceVersion?: string) => this.record('instances.delete', name, resourceVersion),
    reserve: (inst: Instance) => this.record('instances.reserve', inst.metadata.name),
    takeWarm: (inst: Instance): Promise<Instance> =>
      this.record('instances.takeWarm', inst.metadata.name).then(() => {
        const { [WARM_LABEL]: _warm, ...labels } = inst.metadata.labels ?? {};
        const deleting = this.deletingInstances.has(inst.metadata.name!);
        return {
          ...inst,
          metadata: { ...inst.metadata, labels, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
        };
      }),
    removeFinalizer: (inst: Instance) => this.record('instances.removeFinalizer', inst.metadata.name),
  };
  readonly pods = {
    claim: (pod: V1Pod, instance: string): Promise<V1Pod> =>
      this.record('pods.claim', pod.metadata?.name, instance).then(() => ({
        ...pod,
        metadata: {
          ...pod.metadata,
          resourceVersion: `${pod.metadata?.resourceVersion ?? '0'}+claim`,
          annotations: { ...pod.metadata?.annotations, [POD_INSTANCE_ANNOTATION]: instance },
        },
      })),
    pin: (pod: V1Pod, node: string) => this.record('pods.pin', pod.metadata?.name, node),
    delete: (pod: V1Pod) => this.record('pods.delete', pod.metadata?.name),
    forceDelete: (pod: V1Pod) => this.record('pods.forceDelete', pod.metadata?.name),
    evict: (pod: V1Pod) => this.record('pods.evict', pod.metadata?.name),
    bind: (pod: V1Pod, node: string) => this.record('pods.bind', pod.metadata?.name, node),
    setCondition: (pod: V1Pod, condition: V1PodCondition) =>
      this.record('pods.setCondition', pod.metadata?.name, condition),
  };
  readonly nodes = {
    cordon: (node: V1Node) => this.record('nodes.cordon', node.metadata?.name),
    quarantine: (node: V1Node, why: string) => this.record('nodes.quarantine', node.metadata?.name, why),
    release: (node: V1Node) =>
      this.record('nodes.release', node.metadata?.name).then(() => !this.changedNodes.has(node.metadata!.name!)),
    cordonAndDelete: (node: V1Node) => this.record('nodes.cordonAndDelete', node.metadata?.name),
  };
  readonly classes = {
    patchStatus: (name: string, status: unknown) => this.record('classes.patchStatus', name, status),
  };

  /** The writes of one kind, without the name. */
  of(what: string): unknown[][] {
    return this.log.filter(([w]) => w === what).map(([, ...args]) => args);
  }
}

export interface Fakes {
  ctx: ControllerContext;
  cluster: FakeCluster;
  writes: FakeWrites;
  provider: FakeCloudProvider;
  /** Events recorded, in order. */
  events: IppEvent[];
  metrics: Metrics;
  /** The clock the context reads; tests move it. */
  clock: { now: number };
}

export function fakes(now = Date.parse('2024-01-01T00:00:00Z')): Fakes {
  const cluster = new FakeCluster();
  const writes = new FakeWrites();
  const provider = new FakeCloudProvider();
  const metrics = new Metrics();
  const logger = createLogger('silent');
  const events: IppEvent[] = [];
  const recorder = { record: (...es: IppEvent[]) => void events.push(...es) };
  const clock = { now };
  const ctx: ControllerContext = {
    clusterName: 'test',
    state: cluster,
    api: writes,
    lookup: {
      nodes: { read: async (name: string) => cluster.apiNodes.find((n) => n.metadata?.name === name) },
      instances: {
        read: async (name: string) =>
          (cluster.apiInstances ?? cluster.instanceList).find((i) => i.metadata?.name === name),
      },
      pods: {
        onNode: async (node: string) => (cluster.apiPods ?? cluster.podList).filter((p) => p.spec?.nodeName === node),
      },
    },
    providers: new Map([[provider.name, provider]]),
    events: recorder,
    metrics,
    logger,
    creates: new CreatesInFlight(),
    claims: new ClaimsInFlight(() => cluster.podsSilentForMs),
    now: () => clock.now,
  };
  return { ctx, cluster, writes, provider, events, metrics, clock };
}
