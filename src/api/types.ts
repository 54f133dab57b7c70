// ipp.dev/v1alpha1 as TypeScript. The CRDs in charts/ipp/crds/ are the schema of record; these
// types mirror them by hand: change both together.
import type { V1ObjectMeta, V1Condition } from '@kubernetes/client-node';

export type Isolation = 'Pod' | 'Class';

/**
 * How much of the physical machine an instance has to itself (docs/security.md has what each closes).
 * VM: a virtual machine on a host the cloud shares with other customers. DedicatedHardware: a VM on
 * a host that runs only this account's VMs (EC2 dedicated tenancy, GCE sole-tenant). BareMetal: no
 * hypervisor at all, the whole machine (EC2 *.metal, GCE *-metal).
 */
export type HostIsolationLevel = 'VM' | 'DedicatedHardware' | 'BareMetal';
export const HOST_ISOLATION_LEVELS: readonly HostIsolationLevel[] = ['VM', 'DedicatedHardware', 'BareMetal'];
/** Simultaneous multithreading: Off gives each vCPU a core of its own (no sibling hyperthread). */
export type Smt = 'On' | 'Off';

/** The isolation an instance actually obtained (Instance status, from the provider's launch). */
export interface HostIsolation {
  level: HostIsolationLevel;
  smt: Smt;
  /** The instance can run virtual machines itself (hardware virtualization exposed to the guest, or bare metal). */
  nestedVirtualization?: boolean;
}

/** The RuntimeClass ipp-<class> that ipp keeps for each class (opt-in by runtimeClassName). */
export interface RuntimeClassSettings {
  /** CRI handler on the class's nodes: runc (default), or kata / runsc for a sandbox inside the dedicated node. */
  handler?: string;
  /** Resources the handler itself uses per pod (RuntimeClass overhead.podFixed), e.g. { cpu: 250m, memory: 160Mi } for Kata. */
  overhead?: { podFixed?: Record<string, string> };
}

/** Knobs of the simulated provider: how it "boots" instances and how it can be told to fail. */
export interface SimulatedSettings {
  /** Time from launch until the node registers. Default 2s. */
  bootDelay?: string;
  /** Instance types that fail with insufficient capacity. */
  unavailableInstanceTypes?: string[];
  /** Zones that fail with insufficient capacity. */
  unavailableZones?: string[];
  /** The first N launch calls of this class answer "throttled". */
  throttleLaunches?: number;
  /** false: instances start but their node never registers (registration-timeout tests). */
  register?: boolean;
}

export interface AwsSettings {
  launchTemplate?: { name?: string; id?: string; version?: string };
  ami?: { id?: string; ssmParameter?: string };
  subnets?: { ids?: string[]; tags?: Record<string, string> };
  securityGroupIds?: string[];
  instanceProfile?: string;
  capacityType?: 'on-demand' | 'spot';
  tags?: Record<string, string>;
  rootVolume?: { sizeGiB?: number; type?: string };
  /** Replaces the generated nodeadm bootstrap entirely (the user then owns registration labels/taint). */
  userData?: string;
  /**
   * How hostIsolation DedicatedHardware is obtained: dedicated (Dedicated Instances, default) or host
   * (on one of your Dedicated Hosts with auto-placement on).
   */
  tenancy?: 'dedicated' | 'host';
}

/** One zonal managed instance group of the class's GKE node pool (a pool is one MIG per zone). */
export interface GceInstanceGroup {
  zone: string;
  /** The instance group manager's name (last segment of the pool's instanceGroupUrls). */
  name: string;
}

export interface GceSettings {
  /** Project of the groups; default: the controller's project (--gce-project). */
  project?: string;
  /**
   * Ordered: a VM is added to the first group with capacity. Each group's instance template gives
   * the machine type, labels and taints (the node pool's); ipp adds VMs with createInstances.
   */
  instanceGroups: GceInstanceGroup[];
}

/** A window in which the warm pool is held: opened at each minute `cron` matches (UTC), for `duration`. */
export interface WarmWindow {
  /** Five fields: minute hour day-of-month month day-of-week (UTC). */
  cron: string;
  duration: string;
}

export interface WarmPool {
  /** How many never-used instances to keep. Default 0. */
  size?: number;
  /** Replace a warm instance older than this (fresh images and patches). Default 24h. */
  maxAge?: string;
  /** When set, the pool is held only inside one of these windows and is 0 outside them. */
  schedule?: WarmWindow[];
}

export interface InstanceClassSpec {
  isolation?: Isolation;
  /** Ordered: the first that has capacity wins. */
  instanceTypes: string[];
  /** Ordered like instanceTypes; empty means the provider's default placement. */
  zones?: string[];
  idleTimeout?: string;
  launchTimeout?: string;
  registrationTimeout?: string;
  /** How long a registered node may be NotReady or missing before its instance is replaced. Default 10m. */
  repairAfter?: string;
  maxInstances?: number;
  /** Namespaces whose pods may use this class; ["*"] for every namespace. Required by the CRD; absent: none (webhook). */
  namespaces?: string[];
  /** May an idle instance serve another pod of this class (Pod isolation)? Default true. */
  reuse?: boolean;
  /** Default VM. Providers refuse a class whose instance types cannot deliver it. */
  hostIsolation?: HostIsolationLevel;
  /** Default On (the instance type's own setting). Off: one thread per core. */
  smt?: Smt;
  /** The node can run VMs itself (Kata Containers inside a dedicated node without bare metal). */
  nestedVirtualization?: boolean;
  runtimeClass?: RuntimeClassSettings;
  /** Instances kept launched, Ready and never used, so a pod of the class skips the boot. */
  warmPool?: WarmPool;
  /** An instance serves exactly one pod and is terminated as soon as that pod ends (no reuse, no idle wait). */
  oneShot?: boolean;
  simulated?: SimulatedSettings;
  aws?: AwsSettings;
  gce?: GceSettings;
}

export interface InstanceClassStatus {
  observedGeneration?: number;
  conditions?: V1Condition[];
  instances?: number;
  readyInstances?: number;
  idleInstances?: number;
  pendingPods?: number;
  /** Warm instances Ready for the next pod. */
  warmReady?: number;
  /** Warm instances still launching or registering. */
  warmLaunching?: number;
}

export interface InstanceClass {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  spec: InstanceClassSpec;
  status?: InstanceClassStatus;
}

export const PHASES = ['Pending', 'Launched', 'Registered', 'Ready', 'Draining', 'Terminated'] as const;
export type Phase = (typeof PHASES)[number];

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

export interface InstanceSpec {
  /** The InstanceClass this instance belongs to; immutable. */
  class: string;
  /**
   * The only zones it may be launched in, when its first pod needs some (the zone of a bound volume,
   * its own node affinity); recorded at creation because the launch may run later, in another
   * replica. Absent: any zone of the class. Immutable.
   */
  zones?: string[];
  /**
   * Its class's isolation when it was created: what the auditor holds its node to, so a class edited
   * since (Class to Pod) does not report the pods its earlier instances still share. Immutable.
   */
  isolation?: 'Pod' | 'Class';
}

export interface InstanceStatus {
  phase?: Phase;
  provider?: string;
  providerID?: string;
  instanceType?: string;
  zone?: string;
  /** The isolation the cloud instance obtained (never weaker than the class asks for). */
  hostIsolation?: HostIsolation;
  nodeName?: string;
  /** Pods this instance serves or has been given (claimed, pinned or bound). */
  pods?: PodRef[];
  launchedAt?: string;
  registeredAt?: string;
  readyAt?: string;
  /** Since when no pod has used the instance; absent while in use. */
  idleSince?: string;
}

export interface Instance {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  spec: InstanceSpec;
  status?: InstanceStatus;
}
