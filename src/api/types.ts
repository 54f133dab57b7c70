// ipp.dev/v1alpha1 as TypeScript. The CRDs in charts/ipp/crds/ are the schema of record; these
// types mirror them (see test/unit/api/crd-types.test.ts, which keeps the two in step).
import type { V1ObjectMeta, V1Condition } from '@kubernetes/client-node';

export type Isolation = 'Pod' | 'Class';

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
}

export interface GceSettings {
  project: string;
  subnetwork?: string;
  image?: string;
  serviceAccount?: string;
  tags?: string[];
  labels?: Record<string, string>;
  diskSizeGb?: number;
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
  maxInstances?: number;
  /** Namespaces whose pods may use this class; ["*"] for every namespace. Required by the CRD; absent: none (webhook). */
  namespaces?: string[];
  /** May an idle instance serve another pod of this class (Pod isolation)? Default true. */
  reuse?: boolean;
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
}

export interface InstanceStatus {
  phase?: Phase;
  provider?: string;
  providerID?: string;
  instanceType?: string;
  zone?: string;
  nodeName?: string;
  /** Pods this instance serves or has been given (claimed, pinned or bound). */
  pods?: PodRef[];
  launchedAt?: string;
  registeredAt?: string;
  readyAt?: string;
  /** Since when no pod has used the instance; absent while in use. */
  idleSince?: string;
  conditions?: V1Condition[];
}

export interface Instance {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  spec: InstanceSpec;
  status?: InstanceStatus;
}
