// What the admission rules (mutate.ts, enforce.ts) and the server share: the slice of
// admission.k8s.io/v1 they read, the decision they return, and small pod predicates.
import type { V1Node, V1Pod, V1Toleration } from '@kubernetes/client-node';
import type { InstanceClass } from '../api/types.ts';
import { TAINT_KEY } from '../api/names.ts';

/** The fields of AdmissionReview.request the rules use. */
export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  operation: string;
  /** Empty on CREATE of a pod that only has generateName. */
  name?: string;
  namespace?: string;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
  userInfo?: { username?: string; groups?: string[] };
}

export interface PatchOp {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

export type Decision =
  | { allowed: true; patch?: PatchOp[]; warnings?: string[] }
  | { allowed: false; code: number; reason: string; message: string };

export const allow = (): Decision => ({ allowed: true });
export const deny = (message: string, code = 403, reason = 'Forbidden'): Decision => ({
  allowed: false,
  code,
  reason,
  message,
});

/** Reads InstanceClasses; the controller passes its informer cache. */
export interface ClassLookup {
  get(name: string): InstanceClass | undefined;
  /**
   * Reads a class the cache does not hold yet (created a moment ago, as `kubectl apply -f` of a
   * class and its Deployment together does). Optional; the server awaits it before deciding.
   */
  fetch?(name: string): Promise<InstanceClass | undefined>;
}
/** Reads Nodes; the controller passes its informer cache (which holds ipp nodes only). */
export interface NodeLookup {
  get(name: string): V1Node | undefined;
  /**
   * Reads a node the cache does not hold: a shared node, or one registered a moment ago. Resolves
   * undefined only when the apiserver says the node does not exist; rejects when it could not tell.
   */
  fetch?(name: string): Promise<V1Node | undefined>;
}

export type PlacementMode = 'pin' | 'bind';

export { pointer } from '../kube/patch.ts';

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Label value, or undefined when absent (labels of the wrong shape count as absent). */
export function labelOf(pod: V1Pod | undefined, key: string): string | undefined {
  const labels: unknown = pod?.metadata?.labels;
  if (!isRecord(labels)) return undefined;
  const v = labels[key];
  return typeof v === 'string' ? v : undefined;
}

export function annotationOf(pod: V1Pod | undefined, key: string): string | undefined {
  const a: unknown = pod?.metadata?.annotations;
  if (!isRecord(a)) return undefined;
  const v = a[key];
  return typeof v === 'string' ? v : undefined;
}

/** `spec.<field>` as an array of objects, [] when absent; throws on a wrong shape (the server answers 400). */
export function listOf<T>(v: unknown, what: string): T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every(isRecord)) throw new TypeError(`${what} must be a list of objects`);
  return v as T[];
}

export { isDaemonSetPod, MIRROR_ANNOTATION } from '../api/pods.ts';
import { isDaemonSetPod, MIRROR_ANNOTATION } from '../api/pods.ts';

/** Who creates real DaemonSet pods (kube-controller-manager, with or without per-controller credentials). */
export const DEFAULT_DAEMONSET_CREATORS = [
  'system:serviceaccount:kube-system:daemon-set-controller', // kube-controller-manager --use-service-account-credentials
  'system:kube-controller-manager',
] as const;
/**
 * Namespaces whose DaemonSets are node agents the platform team vouches for. Anyone with the built-in
 * `edit` role may create a DaemonSet in their own namespace; trusting those would let every namespace
 * editor onto every dedicated node.
 */
export const DEFAULT_TRUSTED_DAEMONSET_NAMESPACES = ['kube-system'] as const;

export interface DaemonSetTrust {
  /** Usernames that create real DaemonSet pods; an ownerReference alone can be forged by anyone who may create pods. */
  daemonSetCreators?: readonly string[];
  /** Namespaces whose DaemonSet pods may run on ipp nodes (chart value trustedDaemonSetNamespaces). */
  daemonSetNamespaces?: readonly string[];
}

/** A pod the DaemonSet controller made for a DaemonSet in a namespace the platform team trusts. */
export function isTrustedDaemonSetPod(
  pod: V1Pod,
  namespace: string | undefined,
  username: string | undefined,
  trust: DaemonSetTrust,
): boolean {
  return (
    isDaemonSetPod(pod) &&
    (trust.daemonSetCreators ?? DEFAULT_DAEMONSET_CREATORS).includes(username ?? '') &&
    (trust.daemonSetNamespaces ?? DEFAULT_TRUSTED_DAEMONSET_NAMESPACES).includes(namespace ?? '')
  );
}

/**
 * A mirror pod really made by the kubelet of the node it names. The annotation alone proves nothing:
 * anyone allowed to create pods can write it, so the requester must be that node.
 */
export function isMirrorPodFromItsNode(pod: V1Pod, username: string | undefined): boolean {
  const nodeName = pod.spec?.nodeName;
  return annotationOf(pod, MIRROR_ANNOTATION) !== undefined && !!nodeName && username === `system:node:${nodeName}`;
}

/**
 * Would this toleration let a pod onto an ipp node? Deliberately broad (any effect, any operator on
 * the ipp key): ipp nodes may carry more taints on that key in future, and keeping a pod off ipp
 * nodes that could not have landed there anyway costs nothing.
 */
export function toleratesIppNodes(t: V1Toleration): boolean {
  const key = t.key ?? '';
  if (key === '') return t.operator === 'Exists';
  return key === TAINT_KEY;
}

export function isPlaced(pod: V1Pod | undefined): boolean {
  return typeof pod?.spec?.nodeName === 'string' && pod.spec.nodeName !== '';
}
