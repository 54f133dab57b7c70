// What every controller is handed: the cluster view, the API writers and the cloud. One object, built
// once in operator.ts, so controllers agree on their collaborators and unit tests can swap any of them.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Instance, InstanceClass } from '../api/types.ts';
import type { ClassWrites } from '../kube/classes.ts';
import type { EventPublisher } from '../kube/events.ts';
import type { InstanceLookup, InstanceWrites } from '../kube/instances.ts';
import type { NodeLookup, NodeWrites } from '../kube/nodes.ts';
import type { PodLookup, PodWrites } from '../kube/pods.ts';
import type { VolumeLookup } from '../kube/volumes.ts';
import type { ReconcileResult } from '../kube/workqueue.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { CloudProvider } from '../../providers/types.ts';
import type { ClaimsInFlight } from './claims.ts';
import type { CreatesInFlight } from './creates.ts';

/** The reads controllers make, all from informer caches (state/cluster.ts implements it). */
export interface ClusterView {
  instance(name: string): Instance | undefined;
  instanceClass(name: string): InstanceClass | undefined;
  instancesOfClass(cls: string): Instance[];
  podsOfClass(cls: string): V1Pod[];
  /** Pods of the class not bound to a node yet and not ended. */
  unboundPodsOfClass(cls: string): V1Pod[];
  /** Pods of class `cls` claiming the instance (a pod of another class, or none, claims nothing). */
  podsClaiming(cls: string, instance: string): V1Pod[];
  /** Does a workload of the class claim the instance and hold it (pods of other classes aside)? */
  claimHeld(cls: string, instance: string): boolean;
  podsOnNode(node: string): V1Pod[];
  /**
   * Since when the pod has waited for ipp, in ms since the epoch: its creation, or the moment this
   * controller saw another scheduling gate (a queue's) lifted from it.
   */
  waitingSince(pod: V1Pod): number | undefined;
  /**
   * The pod ("namespace/name") that left this ipp node without being seen to end (force-deleted):
   * its containers may still run there, so under Pod isolation the node serves no other pod.
   */
  unconfirmedExit(node: string): string | undefined;
  node(name: string): V1Node | undefined;
  nodeByProviderID(providerID: string | undefined): V1Node | undefined;
  /** The Instance whose cloud instance has this providerID (recorded in its status). */
  instanceByProviderID(providerID: string | undefined): Instance | undefined;
  /** silentForMs: how long the pod watch has shown no sign of life (its informer's). */
  pods: { get(name: string, namespace?: string): V1Pod | undefined; silentForMs?(): number };
  nodes: { list(): readonly V1Node[] };
  /** silentForMs: how long the Instance watch has shown no sign of life (its informer's). */
  instances: { list(): readonly Instance[]; silentForMs?(): number };
  classes: { list(): readonly InstanceClass[] };
}

/** Every write controllers make to the API server (src/kube/). */
export interface KubeWrites {
  instances: InstanceWrites;
  pods: PodWrites;
  nodes: NodeWrites;
  classes: ClassWrites;
}

export interface ControllerContext {
  clusterName: string;
  state: ClusterView;
  api: KubeWrites;
  /** Direct reads, to confirm that something the cache lacks is really gone. */
  lookup: { nodes: NodeLookup; instances: InstanceLookup; pods?: PodLookup; volumes?: VolumeLookup };
  /** Enabled providers by name (the key of an InstanceClass's provider block). */
  providers: ReadonlyMap<string, CloudProvider>;
  events: EventPublisher;
  metrics: Metrics;
  logger: Logger;
  /** Instance creates sent and not yet in the cache, one record for every controller that creates. */
  creates: CreatesInFlight;
  /** Claims sent (pods given an Instance) the cache may not show yet: no Instance is deleted under one. */
  claims: ClaimsInFlight;
  now?: () => number;
}

/**
 * Which of a controller's keys a change wakes, declared beside the controller: operator.ts only
 * routes informer events through these. `resync` lists the keys reconciled on every resync tick.
 */
export interface Wakes {
  /** `old`: the pod this update replaced, a watch's or a relist's (absent for adds and deletes). */
  pod?(pod: V1Pod, state: ClusterView, old?: V1Pod): Iterable<string>;
  /** `old`: the node this update replaced, a watch's or a relist's (absent for adds and deletes). */
  node?(node: V1Node, state: ClusterView, old?: V1Node): Iterable<string>;
  /** `old`: the Instance this update replaced, a watch's or a relist's (absent for adds and deletes). */
  instance?(inst: Instance, state: ClusterView, old?: Instance): Iterable<string>;
  /** A class was added, deleted, or changed in more than its status. */
  instanceClass?(cls: InstanceClass, state: ClusterView): Iterable<string>;
  /**
   * Only a class's status changed (mostly ipp's own summary write, which in a burst is one every few
   * pods): only a controller that reads the status needs waking for it.
   */
  instanceClassStatus?(cls: InstanceClass, state: ClusterView): Iterable<string>;
  resync?(state: ClusterView): Iterable<string>;
}

/** A controller as the operator runs it: a keyed reconcile and what wakes it. */
export interface Controller {
  readonly name: string;
  readonly wakes: Wakes;
  reconcile(key: string): Promise<ReconcileResult | void>;
  /** The least time between two starts of one key, when the controller spaces its keys out itself. */
  minIntervalMs?(key: string): number;
}
