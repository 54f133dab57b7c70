// The names every part of ipp (and every test) relies on. Fixed by DESIGN.md: change together with all users.

export const GROUP = 'ipp.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Pod opt-in label; the same key as the original Instance-per-Pod project so old manifests work. */
export const CLASS_LABEL = 'ipp-class';

/**
 * RuntimeClass ipp-<class>, one per InstanceClass: `runtimeClassName: ipp-<class>` opts a pod in
 * exactly as the label does. The prefix is ipp's: a pod naming ipp-<x> is always treated as class x.
 */
export const RUNTIME_CLASS_PREFIX = 'ipp-';
export const runtimeClassName = (cls: string) => `${RUNTIME_CLASS_PREFIX}${cls}`;
/** The InstanceClass a runtimeClassName stands for; undefined for any other RuntimeClass. */
export function classOfRuntimeClass(name: string | undefined): string | undefined {
  if (typeof name !== 'string' || !name.startsWith(RUNTIME_CLASS_PREFIX)) return undefined;
  const cls = name.slice(RUNTIME_CLASS_PREFIX.length);
  return cls === '' ? undefined : cls;
}

/** Scheduling gate the webhook adds; removed by the pin. */
export const GATE = 'ipp.dev/provision';
/** Scheduler name of bind mode: pods with it are bound by the controller through pods/binding. */
export const SCHEDULER_NAME = 'ipp';

/** Node labels set on every ipp node (registered by the kubelet at boot). */
export const NODE_CLASS_LABEL = 'ipp.dev/class';
export const NODE_INSTANCE_LABEL = 'ipp.dev/instance';
/** Node taint key on every ipp node: `ipp.dev/class=<class>:NoSchedule`. */
export const TAINT_KEY = 'ipp.dev/class';

/**
 * Node annotation set with the cordon of a node whose identity is unproven (it carries ipp labels but
 * matches no Instance's providerID). Only a cordon that carries it is lifted again, once the node
 * proves to be its Instance's: a cordon an operator set is never undone.
 */
export const QUARANTINE_ANNOTATION = 'ipp.dev/quarantined';

/** Finalizer on Instance: deleting an Instance terminates its cloud instance first. */
export const FINALIZER = 'ipp.dev/terminate';

/** Pod annotation recording which Instance a pod has been given (written before the Instance). */
export const POD_INSTANCE_ANNOTATION = 'ipp.dev/instance';

/**
 * Pod annotation recording when ipp pinned the pod (RFC 3339), written with the pin. kube-scheduler's
 * refusal keeps the PodScheduled condition's time from when the gated pod was created (False before
 * the pin, False after), so only this says how long the pinned node has refused the pod.
 */
export const POD_PINNED_AT_ANNOTATION = 'ipp.dev/pinned-at';

/**
 * Instance label (value "true") marking a warm instance: launched for the class's warm pool and never
 * used. Removed (under a resourceVersion test) by the pod that takes the instance, before its claim.
 */
export const WARM_LABEL = 'ipp.dev/warm';

/** Pod annotation (value "true") that blocks voluntary teardown of the pod's instance while its node is healthy. */
export const DO_NOT_DISRUPT_ANNOTATION = 'ipp.dev/do-not-disrupt';

/** Cloud tags on every instance. */
export const TAG_CLUSTER = 'ipp.dev/cluster';
export const TAG_CLASS = 'ipp.dev/class';
export const TAG_INSTANCE = 'ipp.dev/instance';

export const METRICS_PREFIX = 'ipp_';
