// Builders for the controllers' pure decisions, so each test states only what it is about.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Instance, InstanceClass, InstanceClassSpec, Phase } from '../../../src/api/types.ts';
import {
  CLASS_LABEL,
  GATE,
  NODE_CLASS_LABEL,
  NODE_INSTANCE_LABEL,
  POD_INSTANCE_ANNOTATION,
  WARM_LABEL,
} from '../../../src/api/names.ts';

export const CLASS = 'metal';

export const cls = (spec: Partial<InstanceClassSpec> = {}, name = CLASS): InstanceClass => ({
  metadata: { name, generation: 1 },
  spec: { instanceTypes: ['sim.large'], namespaces: ['*'], simulated: {}, ...spec },
});

export interface PodOpts {
  ns?: string;
  uid?: string;
  class?: string | null;
  created?: string | Date;
  /** ipp.dev/instance annotation. */
  claim?: string;
  gated?: boolean;
  schedulerName?: string;
  nodeName?: string;
  phase?: string;
  deleting?: boolean;
  cpu?: string;
  memory?: string;
  daemonSet?: boolean;
  mirror?: boolean;
}

/** A pod of CLASS held by the gate (awaiting placement) unless told otherwise. */
export function pod(name: string, o: PodOpts = {}): V1Pod {
  const annotations: Record<string, string> = {};
  if (o.claim) annotations[POD_INSTANCE_ANNOTATION] = o.claim;
  if (o.mirror) annotations['kubernetes.io/config.mirror'] = 'hash';
  const requests: Record<string, string> = {};
  if (o.cpu) requests.cpu = o.cpu;
  if (o.memory) requests.memory = o.memory;
  const klass = o.class === undefined ? CLASS : o.class;
  return {
    metadata: {
      name,
      namespace: o.ns ?? 'team-a',
      uid: o.uid ?? `uid-${o.ns ?? 'team-a'}-${name}`,
      resourceVersion: '1',
      creationTimestamp: (o.created ?? '2024-01-01T00:00:00Z') as Date,
      ...(klass !== null ? { labels: { [CLASS_LABEL]: klass } } : {}),
      annotations,
      ...(o.deleting ? { deletionTimestamp: new Date('2024-01-02T00:00:00Z') } : {}),
      ...(o.daemonSet
        ? {
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'ds', uid: 'ds-uid', controller: true },
            ],
          }
        : {}),
    },
    spec: {
      containers: [{ name: 'c', image: 'postfix', resources: { requests } }],
      schedulerName: o.schedulerName ?? 'default-scheduler',
      ...(o.gated === false ? {} : { schedulingGates: [{ name: GATE }] }),
      ...(o.nodeName ? { nodeName: o.nodeName } : {}),
    },
    status: { phase: o.phase ?? 'Pending' },
  };
}

/**
 * `p` pinned by name to `node` (as ipp pins) and refused by the scheduler since `since`
 * (PodScheduled False, Unschedulable): what may count as stranded.
 */
export function refusedPin(p: V1Pod, node: string, since: Date): V1Pod {
  p.spec!.affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }],
      },
    },
  };
  p.status = {
    ...p.status,
    conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: since }],
  };
  return p;
}

export interface InstanceOpts {
  phase?: Phase;
  created?: string;
  deleting?: boolean;
  providerID?: string;
  launchedAt?: string;
  idleSince?: string;
  class?: string;
  /** Labelled as a warm-pool instance. */
  warm?: boolean;
  resourceVersion?: string;
}

export function instance(name: string, o: InstanceOpts = {}): Instance {
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      creationTimestamp: (o.created ?? '2024-01-01T00:00:00Z') as unknown as Date,
      ...(o.warm ? { labels: { [WARM_LABEL]: 'true' } } : {}),
      ...(o.resourceVersion ? { resourceVersion: o.resourceVersion } : {}),
      ...(o.deleting ? { deletionTimestamp: new Date('2024-01-02T00:00:00Z') } : {}),
    },
    spec: { class: o.class ?? CLASS },
    status: {
      ...(o.phase ? { phase: o.phase } : {}),
      ...(o.providerID ? { providerID: o.providerID } : {}),
      ...(o.launchedAt ? { launchedAt: o.launchedAt } : {}),
      ...(o.idleSince ? { idleSince: o.idleSince } : {}),
    },
  };
}

export function node(
  name: string,
  o: {
    ready?: boolean;
    unschedulable?: boolean;
    class?: string;
    instance?: string;
    providerID?: string;
    /** Registered without the class's taints (a class's own user data, a GKE pool without them). */
    untainted?: boolean;
  } = {},
): V1Node {
  // A node of a class registers with its taints, as ipp's launch asks.
  const taints =
    o.class && !o.untainted
      ? (['NoSchedule', 'NoExecute'] as const).map((effect) => ({ key: NODE_CLASS_LABEL, value: o.class!, effect }))
      : undefined;
  return {
    metadata: {
      name,
      labels: o.class
        ? { [NODE_CLASS_LABEL]: o.class, ...(o.instance ? { [NODE_INSTANCE_LABEL]: o.instance } : {}) }
        : {},
    },
    spec: {
      providerID: o.providerID ?? `sim:///${name}`,
      ...(o.unschedulable ? { unschedulable: true } : {}),
      ...(taints ? { taints } : {}),
    },
    status: { conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}
