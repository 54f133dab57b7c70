// The Events of an Instance's life, one small function each, so every call site says what happened
// and the reason/action strings live in one place. Warnings about a launch go to the pods waiting for
// it too: `kubectl describe pod` is where their owners look. A launch and a registration that go as
// planned get no Event (as in Karpenter): the Instance's status already records both (providerID,
// type, zone, launchedAt; nodeName, registeredAt), and two Event writes per pod were a fifth of the
// controller's API requests in a burst.
import type { V1Pod } from '@kubernetes/client-node';
import type { Instance } from '../../api/types.ts';
import { API_VERSION } from '../../api/names.ts';
import { instanceRef, podRef, type IppEvent } from '../../kube/events.ts';
import { taintList } from './decisions.ts';

const toInstanceAndPods = (
  inst: Instance,
  pods: readonly V1Pod[],
  reason: string,
  action: string,
  note: string,
): IppEvent[] => [
  { regarding: instanceRef(inst), type: 'Warning', reason, action, note },
  ...pods.map((p): IppEvent => ({ regarding: podRef(p), type: 'Warning', reason, action: 'Provision', note })),
];

export const insufficientCapacity = (inst: Instance, pods: readonly V1Pod[], cls: string, cause: string) =>
  toInstanceAndPods(inst, pods, 'InsufficientCapacity', 'Launch', `no capacity for class ${cls}: ${cause}; will retry`);

export const quotaExceeded = (inst: Instance, pods: readonly V1Pod[], cls: string, cause: string) =>
  toInstanceAndPods(
    inst,
    pods,
    'QuotaExceeded',
    'Launch',
    `account quota reached for class ${cls}: ${cause}; will retry`,
  );

export const invalidClass = (inst: Instance, pods: readonly V1Pod[], cls: string, cause: string) =>
  toInstanceAndPods(
    inst,
    pods,
    'InvalidClass',
    'Launch',
    `InstanceClass ${cls} cannot launch: ${cause}; fix the class`,
  );

export const launchFailed = (inst: Instance, pods: readonly V1Pod[], cls: string, cause: string) =>
  toInstanceAndPods(inst, pods, 'LaunchFailed', 'Launch', `launch failed for class ${cls}: ${cause}`);

/** The cloud accepted the instance but keeps failing to make it there (a stockout, a quota): it is replaced. */
export const launchStalled = (
  inst: Instance,
  pods: readonly V1Pod[],
  reason: 'InsufficientCapacity' | 'QuotaExceeded',
  cause: string,
) =>
  toInstanceAndPods(
    inst,
    pods,
    reason,
    'Launch',
    `${cause}; replacing the instance, to be launched where there is capacity`,
  );

/** A launch or registration timeout: the instance is replaced. */
export const expired = (
  inst: Instance,
  pods: readonly V1Pod[],
  reason: 'LaunchTimeout' | 'RegistrationTimeout',
  message: string,
) =>
  toInstanceAndPods(
    inst,
    pods,
    reason,
    reason === 'LaunchTimeout' ? 'Launch' : 'Register',
    `${message}; replacing the instance`,
  );

export const becameIdle = (inst: Instance, node: string | undefined): IppEvent => ({
  regarding: instanceRef(inst),
  type: 'Normal',
  reason: 'BecameIdle',
  action: 'Idle',
  note: `no pods on node ${node}; terminating after the class's idleTimeout unless a pod arrives`,
});

export const idleTeardown = (inst: Instance, why: string): IppEvent => ({
  regarding: instanceRef(inst),
  type: 'Normal',
  reason: 'Idle',
  action: 'Teardown',
  note: `${why}; terminating ${inst.status?.providerID}`,
});

export const terminated = (inst: Instance, providerIDs: readonly string[]): IppEvent => ({
  regarding: instanceRef(inst),
  type: 'Normal',
  reason: 'Terminated',
  action: 'Terminate',
  note: providerIDs.length ? `terminated ${providerIDs.join(', ')}` : 'nothing was launched',
});

/** The node is gone for good or has been NotReady too long: the instance is replaced. */
/** Why an instance is replaced by repair: its node NotReady, gone, its machine gone, or its node's labels rewritten. */
export type RepairReason = 'NodeLost' | 'NodeRepair' | 'InstanceTerminated' | 'NodeLabelsTampered';

export const repairing = (inst: Instance, pods: readonly V1Pod[], reason: RepairReason, message: string) =>
  toInstanceAndPods(inst, pods, reason, 'Repair', `${message}; replacing the instance`);

export const evicting = (pod: V1Pod, instance: string): IppEvent => ({
  regarding: podRef(pod),
  type: 'Normal',
  reason: 'Evicting',
  action: 'Drain',
  note: `evicting the pod: its Instance ${instance} is being terminated`,
});

export const evictionBlocked = (pod: V1Pod, instance: string, why: string): IppEvent => ({
  regarding: podRef(pod),
  type: 'Warning',
  reason: 'EvictionBlocked',
  action: 'Drain',
  note: `cannot evict the pod yet (${why}); Instance ${instance} waits to be terminated`,
});

export const disruptionBlocked = (inst: Instance, pods: readonly V1Pod[]): IppEvent[] =>
  toInstanceAndPods(
    inst,
    pods,
    'DisruptionBlocked',
    'Drain',
    `teardown waits: pod(s) annotated ipp.dev/do-not-disrupt=true run on the instance; remove the annotation or the pod to let it go`,
  );

export const launchCancelled = (inst: Instance): IppEvent => ({
  regarding: instanceRef(inst),
  type: 'Normal',
  reason: 'LaunchCancelled',
  action: 'Launch',
  note: 'no pod claims this instance any more (its pod was deleted while it was launching); terminating it',
});

export const oneShotDone = (inst: Instance, node: string): IppEvent => ({
  regarding: instanceRef(inst),
  type: 'Normal',
  reason: 'OneShotDone',
  action: 'Teardown',
  note: `the one pod of this one-shot instance has ended; terminating it and node ${node} (never reused)`,
});

/** Its pod was removed before it was seen to end (force-deleted): its containers may still run there. */
export const podLeftUnconfirmed = (inst: Instance, node: string, pod: string): IppEvent => ({
  regarding: instanceRef(inst),
  type: 'Warning',
  reason: 'PodLeftUnconfirmed',
  action: 'Teardown',
  note:
    `pod ${pod} was removed from node ${node} before its kubelet reported it ended (force-deleted?), so its ` +
    `containers may still be running there; under Pod isolation the node serves no other pod: terminating it`,
});

/** The Node matched by providerID carries labels of another class or Instance: cordoned, never used. */
export const nodeLabelsTampered = (inst: Instance, node: string, why: string): IppEvent[] => {
  const note = `node ${node} of Instance ${inst.metadata.name}: ${why}; cordoned and never given a pod (its kubelet may be compromised)`;
  return [
    { regarding: instanceRef(inst), type: 'Warning', reason: 'NodeLabelsTampered', action: 'Register', note },
    {
      regarding: { apiVersion: 'v1', kind: 'Node', name: node },
      type: 'Warning',
      reason: 'NodeLabelsTampered',
      action: 'Register',
      note,
    },
  ];
};

/** Where a class's nodes get their taints: what to fix when they register without them. */
const TAINTS_REMEDY =
  "register the class's nodes with them (EKS: {{ipp:register-with-taints}} in spec.aws.userData; GKE: the node pool's --node-taints)";

/**
 * On the Instance and the Node; and, for a node that registered so (the class's bootstrap or GKE pool
 * is what needs fixing), on the class, in words without the node's name so that repeats add up to
 * one series.
 */
export const nodeTaintsMissing = (inst: Instance, node: string, missing: string[], wasReady: boolean): IppEvent[] => {
  const fate = wasReady
    ? 'they were removed after it registered: cordoned, it keeps the pods it runs and gets no new one; pods waiting for it are given other instances, and it is torn down once it runs none'
    : `${TAINTS_REMEDY}. Cordoned and never given a pod; the instance is replaced at its registrationTimeout`;
  const event = (regarding: IppEvent['regarding'], note: string): IppEvent => ({
    regarding,
    type: 'Warning',
    reason: 'NodeTaintsMissing',
    action: 'Register',
    note,
  });
  const note = `node ${node} of Instance ${inst.metadata.name} is missing ${taintList(missing)}, so pods of any tenant could be scheduled there; ${fate}`;
  const out = [event(instanceRef(inst), note), event({ apiVersion: 'v1', kind: 'Node', name: node }, note)];
  if (!wasReady) {
    const cls = inst.spec.class;
    out.push(
      event(
        { apiVersion: API_VERSION, kind: 'InstanceClass', name: cls },
        `nodes of class ${cls} register without ${taintList(missing)}: ipp cordons them and gives them no pod; ${TAINTS_REMEDY}`,
      ),
    );
  }
  return out;
};

export const repairSuspended = (cls: string, note: string): IppEvent => ({
  regarding: { apiVersion: API_VERSION, kind: 'InstanceClass', name: cls },
  type: 'Warning',
  reason: 'RepairSuspended',
  action: 'Repair',
  note,
});
