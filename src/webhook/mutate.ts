// Step 1 of the flow (DESIGN.md, Admission): a pod labelled ipp-class leaves admission either gated
// (pin mode) or handed to the ipp scheduler (bind mode), plus tolerating its class's taint — or it
// is refused with a message that says what to change. Pure: the server supplies the class lookup.
// A pod that names RuntimeClass ipp-<class> instead gets the label ipp-class=<class> here, so every
// later part (controllers, enforcement, audit) sees one kind of opted-in pod. The apiserver's
// RuntimeClass plugin runs before webhooks: such a pod arrives already tolerating its class's taint.
import type { V1Pod, V1PodSchedulingGate, V1Toleration } from '@kubernetes/client-node';
import {
  CLASS_LABEL,
  classOfRuntimeClass,
  GATE,
  POD_INSTANCE_ANNOTATION,
  POD_PINNED_AT_ANNOTATION,
  SCHEDULER_NAME,
  TAINT_KEY,
} from '../api/names.ts';
import { classNoExecuteToleration, classToleration, namespaceAllowed } from '../api/classes.ts';
import {
  allow,
  deny,
  isDaemonSetPod,
  isMirrorPodFromItsNode,
  isRecord,
  isTrustedDaemonSetPod,
  toleratesIppNodes,
  labelOf,
  listOf,
  annotationOf,
  pointer,
  type AdmissionRequest,
  type ClassLookup,
  type DaemonSetTrust,
  type Decision,
  type PatchOp,
  type PlacementMode,
} from './admission.ts';

export interface MutateContext extends DaemonSetTrust {
  mode: PlacementMode;
  classes: ClassLookup;
}

const DEFAULT_SCHEDULER = 'default-scheduler';

/** The runtimeClassName of a pod, if it is a string. */
function runtimeClassOf(pod: V1Pod): string | undefined {
  const v: unknown = isRecord(pod.spec) ? pod.spec.runtimeClassName : undefined;
  return typeof v === 'string' ? v : undefined;
}

/** The class a pod asks for: its label, else the class its ipp-<class> RuntimeClass stands for. */
export function requestedClass(pod: V1Pod): string | undefined {
  return labelOf(pod, CLASS_LABEL) ?? classOfRuntimeClass(runtimeClassOf(pod));
}

export function mutatePod(req: AdmissionRequest, ctx: MutateContext): Decision {
  // Gates can only be set at creation; later updates are enforce.ts's business.
  if (req.kind.kind !== 'Pod' || req.subResource || req.operation !== 'CREATE') return allow();
  if (!isRecord(req.object)) throw new TypeError('request.object must be a Pod');
  const pod = req.object as V1Pod;
  const labelled = labelOf(pod, CLASS_LABEL);
  const runtimeClass = runtimeClassOf(pod);
  const byRuntime = classOfRuntimeClass(runtimeClass);
  const cls = labelled ?? byRuntime;
  if (cls === undefined) return allow();
  // How the pod opted in, for messages: the user changes what they wrote.
  const optedIn = labelled !== undefined ? `labelled ${CLASS_LABEL}` : `with runtimeClassName ${runtimeClass}`;
  const optIn = labelled !== undefined ? `the ${CLASS_LABEL} label` : `runtimeClassName ${runtimeClass}`;
  // Node agents belong on every node, ipp nodes included: DaemonSet pods the DaemonSet controller really
  // creates (anyone may write an ownerReference) in namespaces the platform team trusts (anyone with
  // `edit` may create a DaemonSet). Pods of any other DaemonSet are treated like any pod.
  const namespace = req.namespace || pod.metadata?.namespace || '';
  if (isTrustedDaemonSetPod(pod, namespace, req.userInfo?.username, ctx)) return allow();
  if (isDaemonSetPod(pod)) {
    // A DaemonSet's pod belongs to the node the DaemonSet controller chose: it cannot get a node of
    // its own, and outside the trusted namespaces it may not run on ipp nodes either.
    return deny(
      `pods of a DaemonSet cannot be labelled ${CLASS_LABEL}: a DaemonSet runs one pod on each node, and ipp gives ` +
        `each labelled pod a node of its own. Remove ${CLASS_LABEL} from the DaemonSet's pod template.`,
    );
  }
  if (isMirrorPodFromItsNode(pod, req.userInfo?.username)) return allow();
  if (!isRecord(pod.spec)) throw new TypeError('request.object.spec must be an object');
  const spec = pod.spec;

  if (labelled !== undefined && byRuntime !== undefined && labelled !== byRuntime) {
    return deny(
      `the label ${CLASS_LABEL} names InstanceClass "${labelled}" but runtimeClassName ${runtimeClass} names ` +
        `InstanceClass "${byRuntime}". Make both name the same class, or keep only one of them.`,
    );
  }

  if (cls === '') {
    return deny(
      `the label ${CLASS_LABEL} is empty. Set it to the name of an InstanceClass ` +
        `(kubectl get instanceclasses), or remove it to run the pod on shared nodes.`,
    );
  }
  const ic = ctx.classes.get(cls);
  if (!ic) {
    return deny(
      labelled !== undefined
        ? `InstanceClass "${cls}" does not exist. Set the label ${CLASS_LABEL} to an existing class ` +
            `(kubectl get instanceclasses), or ask your cluster admin to create "${cls}".`
        : `runtimeClassName ${runtimeClass} stands for InstanceClass "${cls}", which does not exist ` +
            `(RuntimeClasses named ipp-<class> are ipp's). Use ipp-<class> of an existing class ` +
            `(kubectl get instanceclasses), or another RuntimeClass name.`,
    );
  }
  const allowed = ic.spec?.namespaces ?? [];
  if (allowed.length === 0) {
    // The CRD requires the list; a class stored before it did is closed, not open to every namespace.
    return deny(
      `InstanceClass "${cls}" lists no namespaces, so no namespace may use it. Ask your cluster admin to set ` +
        `spec.namespaces of "${cls}" to the namespaces that may use it, or to ["*"] for every namespace.`,
    );
  }
  if (!namespaceAllowed(ic, namespace)) {
    return deny(
      // Which other namespaces may use the class is not this tenant's to learn.
      `InstanceClass "${cls}" does not allow pods in namespace "${namespace}". Use a class that allows this namespace, ` +
        `or ask your cluster admin to add "${namespace}" to spec.namespaces of "${cls}".`,
    );
  }
  if (spec.nodeName) {
    return deny(
      `spec.nodeName is set to "${spec.nodeName}", but ipp gives a pod ${optedIn} ` +
        `its own dedicated node. Remove spec.nodeName, or remove ${optIn} to place the pod yourself.`,
    );
  }
  const scheduler = spec.schedulerName ?? '';
  if (scheduler !== '' && scheduler !== DEFAULT_SCHEDULER && scheduler !== SCHEDULER_NAME) {
    return deny(
      `spec.schedulerName is "${scheduler}", but ipp places pods ${optedIn}. ` +
        `Remove spec.schedulerName, or remove ${optIn} to use scheduler "${scheduler}".`,
    );
  }
  // In pin mode kube-scheduler binds after the pin; a pod waiting for scheduler "ipp" would never be bound.
  if (ctx.mode === 'pin' && scheduler === SCHEDULER_NAME) {
    return deny(
      `spec.schedulerName "${SCHEDULER_NAME}" is only used when ipp runs in bind placement mode, ` +
        `and this cluster's ipp runs in pin mode. Remove spec.schedulerName.`,
    );
  }

  const tolerations = listOf<V1Toleration>(spec.tolerations, 'spec.tolerations');
  const foreign = tolerations.filter((t) => toleratesIppNodes(t) && !(t.key === TAINT_KEY && t.value === cls));
  if (foreign.length > 0) {
    // Such a toleration would let the pod onto the dedicated node of another class, should anything
    // ever pin or bind it there; its own class's tolerations are ipp's to add.
    return deny(
      `the pod tolerates ${foreign.map((t) => JSON.stringify(t)).join(', ')}, which would admit it to nodes of other ` +
        `InstanceClasses than "${cls}". Remove the toleration (ipp adds the one for "${cls}" itself), ` +
        `or remove the ${CLASS_LABEL} label.`,
    );
  }

  const ops: PatchOp[] = [];
  if (labelled === undefined) {
    ops.push(
      isRecord(pod.metadata?.labels)
        ? { op: 'add', path: pointer('metadata', 'labels', CLASS_LABEL), value: cls }
        : { op: 'add', path: '/metadata/labels', value: { [CLASS_LABEL]: cls } },
    );
  }
  // Which Instance a pod gets is ipp's decision alone: a claim copied from another pod's manifest
  // (kubectl get -o yaml | kubectl apply) or written by hand is dropped.
  for (const key of [POD_INSTANCE_ANNOTATION, POD_PINNED_AT_ANNOTATION]) {
    if (annotationOf(pod, key) !== undefined) ops.push({ op: 'remove', path: pointer('metadata', 'annotations', key) });
  }
  if (ctx.mode === 'pin') {
    const gates = listOf<V1PodSchedulingGate>(spec.schedulingGates, 'spec.schedulingGates');
    if (!gates.some((g) => g.name === GATE)) {
      ops.push(
        gates.length > 0
          ? { op: 'add', path: '/spec/schedulingGates/-', value: { name: GATE } }
          : { op: 'add', path: '/spec/schedulingGates', value: [{ name: GATE }] },
      );
    }
  } else if (scheduler !== SCHEDULER_NAME) {
    // `add` on an existing member replaces it (RFC 6902), and the apiserver has defaulted it already.
    ops.push({ op: 'add', path: '/spec/schedulerName', value: SCHEDULER_NAME });
  }
  const missing = [classToleration(cls), classNoExecuteToleration(cls)].filter(
    (want) =>
      !tolerations.some(
        (t) =>
          t.key === want.key &&
          (t.operator ?? 'Equal') === 'Equal' &&
          t.value === want.value &&
          t.effect === want.effect &&
          t.tolerationSeconds === undefined,
      ),
  );
  if (missing.length > 0) {
    ops.push(
      ...(tolerations.length > 0
        ? missing.map((value): PatchOp => ({ op: 'add', path: '/spec/tolerations/-', value }))
        : [{ op: 'add' as const, path: '/spec/tolerations', value: missing }]),
    );
  }
  return ops.length > 0 ? { allowed: true, patch: ops } : allow();
}
