// The one interface every IaaS implements (after Karpenter's CloudProvider). Every call is
// idempotent: create() with the same Instance UID returns the same instance, delete() of a gone
// instance throws NotFoundError, so a controller killed at any line can simply call again.
import type { Resources } from '../src/api/classes.ts';
import type { HostIsolation, InstanceClass } from '../src/api/types.ts';

export type { Resources };

/** What a kubelet registers with: the labels and taint that keep everything else off the node. */
export interface NodeIdentity {
  labels: Record<string, string>;
  taints: { key: string; value: string; effect: 'NoSchedule' | 'NoExecute' | 'PreferNoSchedule' }[];
}

export interface LaunchRequest {
  /** The Instance object: its name goes into tags, its UID makes the launch idempotent. */
  instance: { name: string; uid: string };
  class: InstanceClass;
  /**
   * The only zones to launch in (the Instance's spec.zones: its pod's volumes or node affinity need
   * them), in any order; the class's order of zones still decides. Absent: any zone of the class.
   */
  zones?: readonly string[];
  /** Tags to set at launch (ipp.dev/cluster, ipp.dev/class, ipp.dev/instance and provider conventions). */
  tags: Record<string, string>;
  node: NodeIdentity;
}

export type CloudState = 'pending' | 'running' | 'stopping' | 'terminating' | 'terminated';

export interface CloudInstance {
  /** Matches the Node's spec.providerID exactly. */
  providerID: string;
  instanceType: string;
  zone: string;
  state: CloudState;
  tags: Record<string, string>;
  launchedAt: Date;
  /** The isolation this instance obtained, when the provider knows it (the Instance status records it). */
  hostIsolation?: HostIsolation;
}

export interface CloudProvider {
  /** Name used in InstanceClass (spec.<name>), metrics and logs: simulated, aws, gce. */
  readonly name: string;

  /**
   * Launches (or finds the already launched) instance for `req.instance`. Tries the class's
   * instance types and zones in order, skipping offerings recently found without capacity.
   * Throws InsufficientCapacityError when none has capacity, ThrottledError, InvalidConfigError.
   */
  create(req: LaunchRequest): Promise<CloudInstance>;

  /**
   * Starts termination. Throws NotFoundError when the instance is already gone (terminated counts as gone).
   * `cls`, the Instance's class when the caller knows it: where an instance not made yet is looked for
   * (GCE: the class's groups), even before the class was validated (a controller that just started).
   */
  delete(providerID: string, cls?: InstanceClass): Promise<void>;

  /** Throws NotFoundError when the instance does not exist or is terminated. `cls` as for delete(). */
  get(providerID: string, cls?: InstanceClass): Promise<CloudInstance>;

  /**
   * For an instance the cloud accepted but has not made yet: the error it reports for its last try
   * (a stockout, a quota) while it keeps trying in the same place, or undefined when it is not stuck
   * (made, or still trying without a failure). Providers whose launches fail at once (EC2) lack it.
   * The offering is remembered as without capacity, so the replacement is launched elsewhere.
   */
  stalled?(providerID: string, cls: InstanceClass): Promise<Error | undefined>;

  /** Every live (not terminated) instance tagged for this cluster, for garbage collection. */
  list(): Promise<CloudInstance[]>;

  /**
   * Live instances tagged with this Instance name (a launch whose status was never written, or a
   * duplicate): one filtered call, so a teardown wave does not list the whole cloud per Instance.
   * Providers without it are asked through list().
   */
  findByInstance?(instance: string): Promise<CloudInstance[]>;

  /** Allocatable resources of an instance type, when the provider knows them (Class isolation packing). */
  capacity(instanceType: string, cls: InstanceClass): Resources | undefined;

  /** Problems with the class's provider settings, as messages naming the field; empty when fine. */
  validate(cls: InstanceClass): string[];

  /** Background work the provider needs (the simulated kubelet); stopped by the signal. */
  run?(signal: AbortSignal): Promise<void>;
}
