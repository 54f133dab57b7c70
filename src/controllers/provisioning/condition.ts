// ipp's own condition on a waiting pod: `kubectl describe pod` and anything that watches pod
// conditions see why the pod has no instance, not only in Events that expire after an hour.
import type { V1Pod, V1PodCondition } from '@kubernetes/client-node';

/** A condition type in ipp's domain, so it never collides with the kubelet's or kube-scheduler's. */
export const INSTANCE_AVAILABLE = 'ipp.dev/InstanceAvailable';

export interface Verdict {
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export const conditionOf = (pod: V1Pod) => (pod.status?.conditions ?? []).find((c) => c.type === INSTANCE_AVAILABLE);

/**
 * The condition to write for this verdict, or undefined when the pod already says so. A pod that was
 * never told False gets no True either: at 50,000 pods, a status write per placed pod would only
 * repeat what its Provisioning Event says.
 */
export function conditionUpdate(pod: V1Pod, verdict: Verdict, now: Date): V1PodCondition | undefined {
  const current = conditionOf(pod);
  if (verdict.status === 'True' && (!current || current.status === 'True')) return undefined;
  if (current?.status === verdict.status && current.reason === verdict.reason && current.message === verdict.message)
    return undefined;
  return {
    type: INSTANCE_AVAILABLE,
    status: verdict.status,
    reason: verdict.reason,
    message: verdict.message,
    // The transition is the change of status; a new reason or message under the same status is no transition.
    lastTransitionTime:
      current?.status === verdict.status && current.lastTransitionTime ? current.lastTransitionTime : now,
  };
}
