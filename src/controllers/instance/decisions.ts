// Small pure decisions of an Instance's life: has it timed out, is it idle, for how long.
import { isDeepStrictEqual } from 'node:util';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Instance, InstanceClass, InstanceStatus, Phase, PodRef } from '../../api/types.ts';
import { parseDuration } from '../../api/duration.ts';
import {
  DO_NOT_DISRUPT_ANNOTATION,
  NODE_CLASS_LABEL,
  NODE_INSTANCE_LABEL,
  POD_INSTANCE_ANNOTATION,
  TAINT_KEY,
} from '../../api/names.ts';
import type { CloudState } from '../../../providers/types.ts';
import {
  isDaemonSetPod,
  isMirrorPod,
  isNodeReady,
  isTerminal,
  isWorkload,
  pinnedNodeOf,
  refusedSince,
} from '../../api/pods.ts';

export const DEFAULTS = { idleTimeout: '5m', launchTimeout: '10m', registrationTimeout: '15m', repairAfter: '10m' };

export function timeouts(cls: InstanceClass | undefined) {
  return {
    idleMs: parseDuration(cls?.spec.idleTimeout ?? DEFAULTS.idleTimeout, 'spec.idleTimeout'),
    launchMs: parseDuration(cls?.spec.launchTimeout ?? DEFAULTS.launchTimeout, 'spec.launchTimeout'),
    registrationMs: parseDuration(
      cls?.spec.registrationTimeout ?? DEFAULTS.registrationTimeout,
      'spec.registrationTimeout',
    ),
    repairMs: parseDuration(cls?.spec.repairAfter ?? DEFAULTS.repairAfter, 'spec.repairAfter'),
  };
}

/**
 * The pods an instance serves: those that claim it and are still alive, and every workload on its
 * node (DaemonSet and mirror pods never count). No such pod means the instance is idle.
 */
export function occupants(claiming: readonly V1Pod[], onNode: readonly V1Pod[]): PodRef[] {
  const refs = new Map<string, PodRef>();
  for (const p of [...claiming, ...onNode]) {
    // A bound pod still shutting down holds the instance until it is gone.
    if (!isWorkload(p) || (p.metadata?.deletionTimestamp && !p.spec?.nodeName)) continue;
    const ref = { namespace: p.metadata!.namespace!, name: p.metadata!.name!, uid: p.metadata!.uid! };
    refs.set(ref.uid, ref);
  }
  return [...refs.values()].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
}

/**
 * Is the pod stranded: pinned to a node, never bound, and refused by kube-scheduler for at least
 * `strandedAfterMs`? Its pin cannot be undone, so it will never run on this instance: it no longer
 * holds it. (The provisioner deletes such a pod when it has a controller; a bare pod stays, told
 * why, and must not keep a machine billed forever.)
 */
export const isStranded = (p: V1Pod, now: number, strandedAfterMs: number): boolean =>
  strandedInMs(p, now, strandedAfterMs) === 0;

/** How long until the pod counts as stranded (0: it does), or undefined while nothing refuses it. */
export function strandedInMs(p: V1Pod, now: number, strandedAfterMs: number): number | undefined {
  if (p.spec?.nodeName || !pinnedNodeOf(p)) return undefined;
  const since = refusedSince(p);
  return since ? Math.max(0, since.getTime() + strandedAfterMs - now) : undefined;
}

/**
 * Has the instance served a pod that has now ended? Yes if a pod was recorded on it before, or a pod
 * that claims it or ran on its node is finished. Never from the absence of pods alone: a one-shot
 * instance whose pod has not arrived yet (a claim still in flight) has served nobody.
 */
export function served(recorded: readonly PodRef[] | undefined, claiming: readonly V1Pod[], onNode: readonly V1Pod[]) {
  return (
    !!recorded?.length || [...claiming, ...onNode].some((p) => !isDaemonSetPod(p) && !isMirrorPod(p) && isTerminal(p))
  );
}

export type Expiry =
  | { expired: false; remainingMs: number }
  | { expired: true; reason: 'LaunchTimeout' | 'RegistrationTimeout' | 'Idle'; message: string };

const since = (iso: string | Date | undefined, fallback: number) => (iso ? new Date(iso).getTime() : fallback);

/** Launch or registration taking too long (the instance is then replaced). */
export function livenessExpiry(
  inst: Instance,
  cls: InstanceClass | undefined,
  registered: boolean,
  now: number,
  /** When launching began; by default the Instance's creation. The wait in the queue does not count. */
  launchStartedAt?: number,
): Expiry {
  const t = timeouts(cls);
  const created = since(inst.metadata.creationTimestamp, now);
  if (!inst.status?.providerID) {
    const left = (launchStartedAt ?? created) + t.launchMs - now;
    return left > 0
      ? { expired: false, remainingMs: left }
      : {
          expired: true,
          reason: 'LaunchTimeout',
          message: `instance was not launched within launchTimeout ${cls?.spec.launchTimeout ?? DEFAULTS.launchTimeout}`,
        };
  }
  if (!registered || inst.status?.phase !== 'Ready') {
    const left = since(inst.status?.launchedAt, created) + t.registrationMs - now;
    return left > 0
      ? { expired: false, remainingMs: left }
      : {
          expired: true,
          reason: 'RegistrationTimeout',
          message: `node did not join and become Ready within registrationTimeout ${cls?.spec.registrationTimeout ?? DEFAULTS.registrationTimeout}; check the instance's boot logs and bootstrap settings`,
        };
  }
  return { expired: false, remainingMs: Infinity };
}

/** Idle for longer than the class's idleTimeout? `idleSince` is when the instance last became idle. */
export function idleExpiry(idleSince: string | undefined, cls: InstanceClass | undefined, now: number): Expiry {
  if (!idleSince) return { expired: false, remainingMs: Infinity };
  const t = timeouts(cls);
  const left = since(idleSince, now) + t.idleMs - now;
  return left > 0
    ? { expired: false, remainingMs: left }
    : {
        expired: true,
        reason: 'Idle',
        message: `no pods for idleTimeout ${cls?.spec.idleTimeout ?? DEFAULTS.idleTimeout}`,
      };
}

/**
 * The phase a launched instance is in, judged from its node: not registered yet (Launched),
 * registered (Registered), or Ready. Once Ready it stays Ready while its node exists: a node turning
 * NotReady or cordoned does not make it unregistered.
 */
export function observedPhase(status: InstanceStatus | undefined, node: V1Node | undefined): Phase {
  if (!node) return 'Launched';
  return isNodeReady(node) || status?.phase === 'Ready' ? 'Ready' : 'Registered';
}

/** Was the instance ever Ready? Then a missing or NotReady node is a repair question, not a registration timeout. */
export const everReady = (inst: Instance) => !!inst.status?.readyAt || inst.status?.phase === 'Ready';

/** Since when the node's Ready condition has not been True (NotReady or Unknown), or undefined while it is. */
export function notReadySince(node: V1Node, now: number): number | undefined {
  const ready = (node.status?.conditions ?? []).find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return undefined;
  return ready?.lastTransitionTime ? new Date(ready.lastTransitionTime).getTime() : now;
}

/** The taint the cloud node-lifecycle controller puts on a Node whose instance the cloud reports shut down. */
export const SHUTDOWN_TAINT = 'node.cloudprovider.kubernetes.io/shutdown';

/**
 * Does the Node look as if its machine died (NotReady/Unknown, or tainted shut down by the cloud
 * node-lifecycle controller)? Then the cloud is asked about that one instance at once.
 */
export const looksDead = (node: V1Node, now: number) =>
  notReadySince(node, now) !== undefined || (node.spec?.taints ?? []).some((t) => t.key === SHUTDOWN_TAINT);

/**
 * Is a cloud instance in this state gone for good, as far as its pods are concerned? Stopping,
 * stopped, shutting down and terminated machines run nothing; pending or running ones may still
 * come back, and get the class's repairAfter.
 */
export const cloudStateGone = (state: CloudState) =>
  state === 'stopping' || state === 'terminating' || state === 'terminated';

/**
 * How long to wait before asking the cloud again about an instance whose node still looks dead
 * while the cloud says it runs: 10 s, doubling to a minute, so that a cluster-wide NotReady wave (an
 * API server partition) does not turn into a flood of describe calls.
 */
export const cloudRecheckMs = (asked: number) => Math.min(60_000, 10_000 * 2 ** Math.max(0, asked - 1));

/**
 * How many of a class's registered instances may look dead at once before ipp suspects the cluster
 * rather than the machines (an API server overloaded or partitioned, kubelets that cannot report, a
 * zone's network): a fifth, rounded up, as Karpenter's node repair. Past it nothing of the class is
 * repaired and the cloud is not asked node by node; vanished cloud instances are still found by the
 * garbage collector's one listing per pass.
 */
export const deadLimit = (registered: number) => Math.ceil(registered / 5);

/** Of a class's instances that were ever Ready: how many, and how many have a node that is missing or looks dead. */
export function classHealth(
  instances: readonly Instance[],
  nodeOf: (providerID: string) => V1Node | undefined,
  now: number,
): { registered: number; dead: number } {
  let registered = 0;
  let dead = 0;
  for (const inst of instances) {
    const providerID = inst.status?.providerID;
    if (!providerID || !everReady(inst) || inst.metadata.deletionTimestamp) continue;
    registered++;
    const node = nodeOf(providerID);
    if (!node || looksDead(node, now)) dead++;
  }
  return { registered, dead };
}

/** How many instances of a class may be in repair at once: a fifth, at least one. */
export const repairBudget = (instancesOfClass: number) => Math.max(1, Math.floor(instancesOfClass / 5));

/**
 * Why the labels of the Node matched to an Instance by its providerID disagree with that Instance,
 * or undefined when they agree. A kubelet may rewrite its own Node's labels (NodeRestriction allows
 * it), so a node claiming another class or Instance has been tampered with. GKE nodes carry the class
 * label from their pool and no Instance label: an absent Instance label is no disagreement.
 */
export function labelMismatch(inst: Instance, node: V1Node): string | undefined {
  const labels = node.metadata?.labels ?? {};
  const cls = labels[NODE_CLASS_LABEL];
  if (cls !== inst.spec.class)
    return `its label ${NODE_CLASS_LABEL}=${cls ?? '(none)'} is not the class ${inst.spec.class} of Instance ${inst.metadata.name}`;
  const own = labels[NODE_INSTANCE_LABEL];
  if (own !== undefined && own !== inst.metadata.name)
    return `its label ${NODE_INSTANCE_LABEL}=${own} names another Instance than ${inst.metadata.name}`;
  return undefined;
}

/**
 * The class's taints the Node matched to an Instance lacks (`key=value:Effect`), none when it has
 * both. ipp asks for them at launch, but a class's own user data (EKS) or a node pool created without
 * `--node-taints` (GKE) registers nodes without them: any pod that tolerates nothing in particular
 * could then be scheduled there. ipp may not write taints (the scope policy), so such a node is cordoned.
 */
export function missingTaints(inst: Instance, node: V1Node): string[] {
  const cls = inst.spec.class;
  return (['NoSchedule', 'NoExecute'] as const)
    .filter(
      (effect) => !(node.spec?.taints ?? []).some((t) => t.key === TAINT_KEY && t.value === cls && t.effect === effect),
    )
    .map((effect) => `${TAINT_KEY}=${cls}:${effect}`);
}

/** `the taint(s) a and b`, for a message. */
export const taintList = (taints: string[]) => `the taint${taints.length > 1 ? 's' : ''} ${taints.join(' and ')}`;

/** Why the Node matched to an Instance lacks the class's taints, or undefined when it has both. */
export function taintsMissing(inst: Instance, node: V1Node): string | undefined {
  const missing = missingTaints(inst, node);
  return missing.length
    ? `it is missing ${taintList(missing)}, so pods of any tenant could be scheduled there`
    : undefined;
}

/**
 * Why ipp refuses the Node matched to an Instance (labels of another class or Instance, or the class's
 * taints missing), or undefined when it may be the Instance's node. A refused node is cordoned and
 * never given a pod, whatever else says it is Ready.
 */
export const nodeRefusal = (inst: Instance, node: V1Node): string | undefined =>
  labelMismatch(inst, node) ?? taintsMissing(inst, node);

/**
 * A Ready Instance whose node ipp refuses now (its taints or labels changed after it was Ready): it
 * holds its pods, but nothing may be placed there, so a claim on it holds nothing and the warm pool
 * cannot hand it out.
 */
export const refusedSinceReady = (inst: Instance, node: V1Node | undefined): boolean =>
  inst.status?.phase === 'Ready' && !!node && nodeRefusal(inst, node) !== undefined;

/**
 * The name of the node whose bound pods are this Instance's: its node's (matched by providerID), or,
 * with that node gone, the name the Instance recorded, unless another node holds that name now. A
 * name is no identity: EKS names nodes after their private IP, which EC2 gives a new instance
 * within minutes, maybe another class's or tenant's.
 */
export function ownNodeName(
  inst: Instance,
  node: V1Node | undefined,
  nodeNamed: (name: string) => V1Node | undefined,
): string | undefined {
  if (node) return node.metadata!.name!;
  const recorded = inst.status?.nodeName;
  return recorded !== undefined && nodeNamed(recorded) === undefined ? recorded : undefined;
}

/**
 * What the Instance controller reads of a Node: its labels (identity, tampering), providerID, cordon,
 * shutdown taint, ipp's taints and Ready condition. Not the heartbeats that rewrite its conditions every few
 * seconds, nor its capacity or images.
 */
const nodeFacts = (n: V1Node) => ({
  labels: n.metadata?.labels,
  deleting: n.metadata?.deletionTimestamp,
  providerID: n.spec?.providerID,
  unschedulable: !!n.spec?.unschedulable,
  // Of its taints, only the cloud's shutdown mark: kube-controller-manager lifts not-ready as the
  // node starts, one event per node of a burst for nothing.
  shutdown: (n.spec?.taints ?? []).some((t) => t.key === SHUTDOWN_TAINT),
  classTaints: (n.spec?.taints ?? []).filter((t) => t.key === TAINT_KEY).map((t) => `${t.value}:${t.effect}`),
  ready: (n.status?.conditions ?? []).filter((c) => c.type === 'Ready').map((c) => [c.status, c.lastTransitionTime]),
});

/** Does this update of a Node change anything an Instance's reconcile decides on? */
export const nodeChangeMattersToInstance = (old: V1Node, next: V1Node) =>
  !isDeepStrictEqual(nodeFacts(old), nodeFacts(next));

/**
 * What the Instance controller reads of a pod: its claim, the annotations that make it a mirror pod
 * or keep its node from being drained, labels, owners, deletion, node, whether it has ended, and
 * whether the node it is pinned to refuses it (a stranded pod). Not its containers' statuses, IPs or
 * other conditions, which a kubelet rewrites as the pod starts, nor the pin itself (gate, affinity,
 * its time), which changes nothing an Instance decides on until the scheduler refuses the pod: a
 * reconcile per pod of a burst for nothing.
 */
const podFacts = (p: V1Pod) => {
  const annotations = p.metadata?.annotations;
  const refused = refusedSince(p)?.getTime();
  return {
    claim: annotations?.[POD_INSTANCE_ANNOTATION],
    mirror: isMirrorPod(p),
    doNotDisrupt: annotations?.[DO_NOT_DISRUPT_ANNOTATION],
    labels: p.metadata?.labels,
    owners: p.metadata?.ownerReferences,
    deleting: p.metadata?.deletionTimestamp,
    nodeName: p.spec?.nodeName,
    // Pending or Running hold an instance alike (a starting pod's kubelet moves it from one to the
    // other: a reconcile per pod of a burst for nothing); only its end changes what it holds.
    ended: isTerminal(p),
    // Of its PodScheduled condition, only a refusal and since when. Not the gated or scheduled
    // states, nor the fields a kubelet writes back as the pod starts.
    refused,
    refusedOn: refused === undefined ? undefined : pinnedNodeOf(p),
  };
};

/** Does this update of a pod change anything an Instance's reconcile decides on? */
export const podChangeMattersToInstance = (old: V1Pod, next: V1Pod) =>
  !isDeepStrictEqual(podFacts(old), podFacts(next));
