// The Events the provisioner writes on pods, one small function each.
import type { V1Pod } from '@kubernetes/client-node';
import type { ClassProblem } from '../../api/classes.ts';
import { podRef, type IppEvent } from '../../kube/events.ts';

export const classUnusable = (pod: V1Pod, problem: ClassProblem): IppEvent => ({
  regarding: podRef(pod),
  type: 'Warning',
  reason: problem.reason,
  action: 'Provision',
  note: problem.message,
});

/** Which other namespaces may use the class is not this pod's readers' to learn (as admission says it). */
export const namespaceNotAllowed = (pod: V1Pod, cls: string): IppEvent => ({
  regarding: podRef(pod),
  type: 'Warning',
  reason: 'NamespaceNotAllowed',
  action: 'Provision',
  note: `InstanceClass "${cls}" does not allow namespace "${pod.metadata!.namespace}"; use a class that allows it, or ask your cluster admin to add it to spec.namespaces of "${cls}"`,
});

export const maxInstancesReached = (pod: V1Pod, cls: string, max: number | undefined): IppEvent => ({
  regarding: podRef(pod),
  type: 'Warning',
  reason: 'MaxInstancesReached',
  action: 'Provision',
  note: `InstanceClass "${cls}" is at spec.maxInstances (${max}); the pod waits for an instance to free up`,
});

/** How the pod got its instance: a new one, an idle one reused, or one from the warm pool (Ready or still booting). */
export type Source = 'new' | 'reused' | 'warm' | 'warm-launching';

export const provisioning = (pod: V1Pod, instance: string, cls: string, source: Source): IppEvent => ({
  regarding: podRef(pod),
  type: 'Normal',
  reason: 'Provisioning',
  action: 'Provision',
  note: {
    new: `creating dedicated Instance ${instance} of class ${cls}`,
    reused: `reusing Instance ${instance} of class ${cls}`,
    warm: `took warm Instance ${instance} of class ${cls} (Ready, never used): no boot wait`,
    'warm-launching': `took warm Instance ${instance} of class ${cls} (never used, still booting)`,
  }[source],
});

export const stranded = (pod: V1Pod, why: string, replacing: boolean, orphaned: boolean): IppEvent => ({
  regarding: podRef(pod),
  type: 'Warning',
  reason: 'Stranded',
  action: 'Pin',
  note: strandedMessage(why, replacing, orphaned),
});

export const strandedMessage = (why: string, replacing: boolean, orphaned: boolean) =>
  replacing
    ? `the pod cannot run where it was pinned: ${why}; deleting it so its controller recreates it on a new instance`
    : orphaned
      ? `the pod cannot run where it was pinned: ${why}; its Instance is gone, and a machine that later took its node's name would run it outside its class's nodes: deleting it. It has no controller to recreate it: create it again`
      : `the pod cannot run where it was pinned: ${why}; it has no controller to recreate it: delete it and create it again`;

export const noZoneFits = (pod: V1Pod, cls: string, why: string, offered: readonly string[]): IppEvent => ({
  regarding: podRef(pod),
  type: 'Warning',
  reason: 'NoZoneFits',
  action: 'Provision',
  note: noZoneFitsMessage(cls, why, offered),
});

export const noZoneFitsMessage = (cls: string, why: string, offered: readonly string[]) =>
  offered.length
    ? `InstanceClass "${cls}" launches only in ${offered.join(', ')}, and ${why}: no instance is launched; add the zone to the class's spec.zones, or move the volume`
    : `no zone satisfies all of the pod's needs (${why}): no instance is launched; fix the pod's node affinity or volumes`;

export const noTypeFitsMessage = (cls: string, types: readonly string[]) =>
  `no instance type of InstanceClass "${cls}" (${types.join(', ')}) has room for the pod's resource requests; lower the requests or add a larger type to the class`;

export const noTypeFits = (pod: V1Pod, cls: string, types: readonly string[]): IppEvent => ({
  regarding: podRef(pod),
  type: 'Warning',
  reason: 'NoInstanceTypeFits',
  action: 'Provision',
  note: noTypeFitsMessage(cls, types),
});
