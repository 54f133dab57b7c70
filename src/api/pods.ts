// Facts about pods that every controller and the webhook agree on.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { CLASS_LABEL, GATE, POD_INSTANCE_ANNOTATION, POD_PINNED_AT_ANNOTATION, SCHEDULER_NAME } from './names.ts';

export const podKey = (p: V1Pod) => `${p.metadata?.namespace}/${p.metadata?.name}`;
export const classOf = (p: V1Pod) => p.metadata?.labels?.[CLASS_LABEL];
/** An object name as the API server takes it (a DNS-1123 subdomain): what an Instance can be called. */
const OBJECT_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/**
 * The Instance the pod claims. A value no Instance could be named is no claim: should one get past
 * admission, it would otherwise be planned as an Instance to create, count against maxInstances and fail
 * the class's every pass; read as none, the pod is given a claim of ipp's.
 */
export const claimOf = (p: V1Pod): string | undefined => {
  const claim = p.metadata?.annotations?.[POD_INSTANCE_ANNOTATION];
  return claim !== undefined && OBJECT_NAME.test(claim) ? claim : undefined;
};

export const isTerminal = (p: V1Pod) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

/**
 * Controlled by an apps/v1 DaemonSet. Written defensively because the webhook applies it to
 * untrusted AdmissionReview input, where ownerReferences may have any shape.
 */
export function isDaemonSetPod(pod: V1Pod): boolean {
  const refs: unknown = pod.metadata?.ownerReferences;
  if (!Array.isArray(refs)) return false;
  return (refs as ({ kind?: unknown; apiVersion?: unknown; controller?: unknown } | null)[]).some(
    (r) => r?.kind === 'DaemonSet' && String(r.apiVersion ?? '').startsWith('apps/') && r.controller === true,
  );
}
export const isMirrorPod = (p: V1Pod) => p.metadata?.annotations?.[MIRROR_ANNOTATION] !== undefined;
export const isGated = (p: V1Pod) => (p.spec?.schedulingGates ?? []).some((g) => g.name === GATE);
export const wantsIppScheduler = (p: V1Pod) => p.spec?.schedulerName === SCHEDULER_NAME;

/**
 * The node a pod was pinned to by name (required node affinity on metadata.name, in every term), or
 * undefined when it was not pinned that way.
 */
export function pinnedNodeOf(p: V1Pod): string | undefined {
  const terms = p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const names = terms.map(
    (t) =>
      (t.matchFields ?? []).find((f) => f.key === 'metadata.name' && f.operator === 'In' && f.values?.length === 1)
        ?.values?.[0],
  );
  return names.length && names.every((n) => n !== undefined && n === names[0]) ? names[0] : undefined;
}

/** Has a controller (ReplicaSet, Job, StatefulSet…) that recreates it when it is deleted. */
export const hasController = (p: V1Pod) => (p.metadata?.ownerReferences ?? []).some((r) => r.controller === true);

/** Since when the scheduler has found no node for the pod (PodScheduled=False, Unschedulable), if it has not. */
export function unschedulableSince(p: V1Pod): Date | undefined {
  const c = (p.status?.conditions ?? []).find((c) => c.type === 'PodScheduled');
  if (c?.status !== 'False' || c.reason !== 'Unschedulable') return undefined;
  return c.lastTransitionTime ? new Date(c.lastTransitionTime) : undefined;
}

/**
 * Since when the pod's pinned node has refused it: its Unschedulable time, but never before its pin.
 * The condition turned False when the gated pod was created and stays False through the refusal, so
 * a pod that waited ten minutes for its instance would otherwise count as refused for ten minutes
 * the moment the scheduler first turns it away (a node Ready a moment before its taint is lifted).
 */
export function refusedSince(p: V1Pod): Date | undefined {
  const since = unschedulableSince(p);
  if (!since) return undefined;
  const pinned = Date.parse(p.metadata?.annotations?.[POD_PINNED_AT_ANNOTATION] ?? '');
  return Number.isNaN(pinned) || pinned <= since.getTime() ? since : new Date(pinned);
}

/**
 * Does the pod count as a workload of the node it is on? DaemonSet and mirror pods do not, unless they
 * are a class's pods holding a claim: only ipp writes one, on a pod it placed, while anyone who may
 * update the pod can add a DaemonSet owner reference (or set the mirror annotation at create), which
 * must not make its Instance look free to the next pod of the class. (A node agent whose template
 * carries a claim but no class stays an agent: counted, it would keep every node busy and every drain
 * waiting for a pod its DaemonSet makes again.)
 */
export const isWorkload = (p: V1Pod) =>
  !isTerminal(p) && ((classOf(p) !== undefined && claimOf(p) !== undefined) || (!isDaemonSetPod(p) && !isMirrorPod(p)));

/** A workload holds the Instance it claims until it is really gone: a bound pod still shutting down holds it too. */
export const holdsClaim = (p: V1Pod) => isWorkload(p) && (!p.metadata?.deletionTimestamp || !!p.spec?.nodeName);

/** Held by a scheduling gate that is not ipp's (a queue such as Kueue that admits the pod later). */
export const heldByOtherGates = (p: V1Pod) => (p.spec?.schedulingGates ?? []).some((g) => g.name !== GATE);

/**
 * Waiting for ipp to give it an instance: opted in, not placed yet, held by our gate or scheduler
 * name. A DaemonSet's pod never does, even labelled ipp-class: it belongs to one node the DaemonSet
 * controller chose (and admission refuses it the label). Nor does a pod another gate still holds: it
 * may not run yet (a queue admits it later), so no instance is launched for it until that gate is
 * lifted, as Karpenter leaves gated pods alone; gates are only ever removed, and that update wakes it.
 */
export const awaitsPlacement = (p: V1Pod) =>
  classOf(p) !== undefined &&
  // A claim is ipp's, on a pod it gave an instance: a DaemonSet owner added since (forged, as
  // isWorkload says) must not leave the pod unplaced and its Instance held forever.
  (!isDaemonSetPod(p) || claimOf(p) !== undefined) &&
  !p.spec?.nodeName &&
  !p.metadata?.deletionTimestamp &&
  !isTerminal(p) &&
  !heldByOtherGates(p) &&
  (isGated(p) || wantsIppScheduler(p));

export const isNodeReady = (n: V1Node) =>
  !n.spec?.unschedulable && (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
