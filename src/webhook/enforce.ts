// Step 8 of the flow (DESIGN.md, Enforcement): the ipp taint keeps ordinary pods off ipp nodes, but
// a toleration, spec.nodeName or a direct binding walks past a taint. These rules close those doors
// at admission, so isolation does not depend on every manifest in the cluster behaving.
import type {
  V1NodeSelectorRequirement,
  V1NodeSelectorTerm,
  V1Pod,
  V1PodSpec,
  V1Toleration,
} from '@kubernetes/client-node';
import {
  CLASS_LABEL,
  GATE,
  NODE_CLASS_LABEL,
  NODE_INSTANCE_LABEL,
  POD_INSTANCE_ANNOTATION,
  POD_PINNED_AT_ANNOTATION,
  TAINT_KEY,
} from '../api/names.ts';
import type { Instance } from '../api/types.ts';
import {
  allow,
  annotationOf,
  deny,
  isMirrorPodFromItsNode,
  isTrustedDaemonSetPod,
  isPlaced,
  isRecord,
  labelOf,
  listOf,
  pointer,
  toleratesIppNodes,
  type AdmissionRequest,
  type DaemonSetTrust,
  type Decision,
  type NodeLookup,
  type PatchOp,
} from './admission.ts';

export interface EnforceContext extends DaemonSetTrust {
  nodes: NodeLookup;
  /** The controller's own identity (e.g. system:serviceaccount:ipp-system:ipp): it may place pods on ipp nodes. */
  controllerUsernames?: readonly string[];
  /**
   * Does a node exist? true / false as the apiserver said, undefined when it could not be asked.
   * Without it (tests of other rules) a pod naming an unknown node is not judged on that ground.
   */
  nodeExists?: (name: string) => boolean | undefined;
  /** Pods by namespace and name (the controller's informer), to check the controller's own bindings. */
  pods?: { get(namespace: string, name: string): V1Pod | undefined };
  /**
   * Instances by name (the controller's informer): a node is the claimed Instance's by providerID,
   * as the controller matches it; a GKE pool's node carries no ipp.dev/instance label.
   */
  instances?: { get(name: string): Instance | undefined };
  /** Whose pods/binding requests are trusted: schedulers honour the taint and the affinity added here. */
  schedulers?: readonly string[];
}

export { DEFAULT_DAEMONSET_CREATORS, DEFAULT_TRUSTED_DAEMONSET_NAMESPACES } from './admission.ts';
export const DEFAULT_SCHEDULERS = ['system:kube-scheduler'] as const;

/** The requirement that keeps a pod off every ipp node. */
export const OFF_IPP_NODES: V1NodeSelectorRequirement = { key: NODE_CLASS_LABEL, operator: 'DoesNotExist' };

const AFFINITY_WARNING =
  `ipp: added required node affinity "${NODE_CLASS_LABEL} DoesNotExist" because this pod ` +
  `tolerates the ${NODE_CLASS_LABEL} taint; ipp nodes are reserved for pods labelled ${CLASS_LABEL}.`;

export function enforcePod(req: AdmissionRequest, ctx: EnforceContext): Decision {
  if (isBinding(req) && req.operation === 'CREATE') {
    return enforceBinding(req, ctx);
  }
  if (req.resource?.resource === 'pods' && req.subResource === 'eviction' && req.operation === 'CREATE') {
    return enforceEviction(req, ctx);
  }
  if (req.kind.kind !== 'Pod' || req.subResource) return allow();
  if (!isRecord(req.object)) throw new TypeError('request.object must be a Pod');
  const pod = req.object as V1Pod;
  if (!isRecord(pod.spec)) throw new TypeError('request.object.spec must be an object');
  if (req.operation === 'CREATE') return enforceCreate(pod, req.namespace, req.userInfo?.username, ctx);
  if (req.operation === 'UPDATE') {
    if (!isRecord(req.oldObject)) throw new TypeError('request.oldObject must be a Pod on UPDATE');
    return enforceUpdate(pod, req.oldObject as V1Pod, req.userInfo?.username, ctx);
  }
  return allow();
}

/**
 * The node a request would put a pod on: the nodeName of a pod being created, or a binding's target;
 * undefined for any other request. The webhook reads that node from the API when its cache (ipp
 * nodes only) does not hold it, so the rules below can tell a node that has not registered yet.
 */
export function nodeNamedBy(req: AdmissionRequest): string | undefined {
  const o = req.object;
  if (!isRecord(o) || req.operation !== 'CREATE') return undefined;
  const name = isBinding(req)
    ? isRecord(o.target)
      ? o.target.name
      : undefined
    : req.subResource
      ? undefined
      : isRecord(o.spec)
        ? o.spec.nodeName
        : undefined;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

// pods/binding is what schedulers use; the legacy `bindings` resource reaches the same code in the apiserver.
const isBinding = (req: AdmissionRequest) =>
  (req.resource?.resource === 'pods' && req.subResource === 'binding') ||
  (req.resource?.resource === 'bindings' && !req.subResource);

function ippClassOfNode(ctx: EnforceContext, nodeName: string): string | undefined {
  return ctx.nodes.get(nodeName)?.metadata?.labels?.[NODE_CLASS_LABEL];
}

function enforceCreate(
  pod: V1Pod,
  namespace: string | undefined,
  user: string | undefined,
  ctx: EnforceContext,
): Decision {
  const spec = pod.spec as V1PodSpec;
  const trustedDaemonSet = isTrustedDaemonSetPod(pod, namespace || pod.metadata?.namespace, user, ctx);
  const mirror = isMirrorPodFromItsNode(pod, user);

  if (isPlaced(pod)) {
    const nodeName = spec.nodeName as string;
    const nodeClass = ippClassOfNode(ctx, nodeName);
    const trusted = mirror || trustedDaemonSet || (ctx.controllerUsernames ?? []).includes(user ?? '');
    const exists = ctx.nodeExists ? ctx.nodeExists(nodeName) : true;
    // A pod bound to a node that has not registered yet runs there the moment it does: the kubelet
    // admits it without looking at NoSchedule taints, so a future ipp node would receive it.
    if (exists === false && !trusted) {
      return deny(
        `node "${nodeName}" does not exist, and a pod may name only a node that has registered ` +
          `(a node registered later could be a dedicated ipp node). Remove spec.nodeName and let the scheduler choose.`,
      );
    }
    if (exists === undefined && !trusted) {
      return deny(
        `ipp could not check that node "${nodeName}" exists (the apiserver did not answer); retry in a moment, ` +
          `or remove spec.nodeName and let the scheduler choose.`,
        500,
        'InternalError',
      );
    }
    if (nodeClass !== undefined && !trusted) {
      return deny(
        // Not which class: a tenant walking node names would map every class's nodes.
        `node "${nodeName}" is an ipp node, reserved for the pods ipp places there. ` +
          `Remove spec.nodeName and let the scheduler choose a node; for a dedicated node of your own, ` +
          `label the pod ${CLASS_LABEL}=<class> instead.`,
      );
    }
  }
  if (labelOf(pod, CLASS_LABEL) !== undefined || trustedDaemonSet || mirror) return allow();
  const tolerations = listOf<V1Toleration>(spec.tolerations, 'spec.tolerations');
  if (!tolerations.some(toleratesIppNodes)) return allow();
  const patch = keepOffIppNodes(spec);
  return patch.length > 0 ? { allowed: true, patch, warnings: [AFFINITY_WARNING] } : allow();
}

function enforceUpdate(pod: V1Pod, old: V1Pod, user: string | undefined, ctx: EnforceContext): Decision {
  const controller = (ctx.controllerUsernames ?? []).includes(user ?? '');
  const gated = (p: V1Pod) =>
    listOf<{ name?: string }>(p.spec?.schedulingGates, 'spec.schedulingGates').some((g) => g.name === GATE);
  if (!controller && gated(old) && !gated(pod)) {
    // Lifting the gate by hand would let kube-scheduler place the pod before ipp gave it a node of its own.
    return deny(
      `the scheduling gate ${GATE} is lifted by ipp once the pod's dedicated node is ready; ` +
        `do not remove it by hand (kubectl describe pod shows ipp's Events about its progress).`,
    );
  }
  for (const [key, what] of [
    [POD_INSTANCE_ANNOTATION, 'which Instance ipp gave the pod'],
    [POD_PINNED_AT_ANNOTATION, 'when ipp pinned the pod to its node'],
  ] as const) {
    if (!controller && annotationOf(old, key) !== annotationOf(pod, key))
      return deny(`the annotation ${key} records ${what} and only ipp sets it.`);
  }
  const before = labelOf(old, CLASS_LABEL);
  const after = labelOf(pod, CLASS_LABEL);
  const finished = old.status?.phase === 'Succeeded' || old.status?.phase === 'Failed';
  // A finished pod may lose the label (clean-up tools), never gain or change it: with a claim written
  // on it while it was ordinary (no webhook sees those), it would count as a claimer of the class's
  // instance, and hold a warm one.
  if (before !== after && (!finished || after !== undefined)) {
    // The label decided the pod's gate, toleration and (once placed) its node; a new value would leave
    // a pod on a node of the wrong class, or an ordinary pod on a dedicated node.
    const where = isPlaced(old) ? ` (it already runs on node "${old.spec?.nodeName}")` : '';
    const change =
      after === undefined
        ? `removing the label ${CLASS_LABEL}`
        : before === undefined
          ? `adding the label ${CLASS_LABEL}`
          : `changing the label ${CLASS_LABEL} from "${before}" to "${after}"`;
    return deny(
      `${change} is not allowed on an existing pod${where}: the class is fixed when the pod is created. ` +
        `Change the label in the workload's pod template, or delete the pod and create it again.`,
    );
  }
  if (after !== undefined && !controller) {
    const had = new Set(listOf<V1Toleration>(old.spec?.tolerations, 'spec.tolerations').map((t) => JSON.stringify(t)));
    const foreign = listOf<V1Toleration>(pod.spec?.tolerations, 'spec.tolerations').filter(
      (t) => !had.has(JSON.stringify(t)) && toleratesIppNodes(t) && !(t.key === TAINT_KEY && t.value === after),
    );
    // The rule of creation (mutate.ts) holds for tolerations added later: the pin keeps the pod on its
    // own node today, but a pod that tolerates other classes' taints is one bad binding away from them.
    if (foreign.length > 0) {
      return deny(
        `adding ${foreign.map((t) => JSON.stringify(t)).join(', ')} would let this pod of class "${after}" tolerate ` +
          `the nodes of other InstanceClasses. Remove the toleration; ipp gives the pod the ones for "${after}" itself.`,
      );
    }
  }
  if (after !== undefined || isPlaced(old)) return allow();
  const admits = (p: V1Pod) => listOf<V1Toleration>(p.spec?.tolerations, 'spec.tolerations').some(toleratesIppNodes);
  if (admits(pod) && !admits(old) && keepOffIppNodes(pod.spec as V1PodSpec).length > 0) {
    // Node affinity of a created pod can no longer be required wholesale, so the only safe answer is no.
    return deny(
      `adding a toleration for the ${NODE_CLASS_LABEL} taint (or for every taint) to a pod that is not ` +
        `scheduled yet would let it onto ipp nodes, which are reserved for pods labelled ${CLASS_LABEL}. ` +
        `Set the toleration when the pod is created (ipp then keeps the pod off ipp nodes), or delete the pod and create it again.`,
    );
  }
  return allow();
}

function enforceBinding(req: AdmissionRequest, ctx: EnforceContext): Decision {
  const binding = req.object;
  if (!isRecord(binding) || !isRecord(binding.target) || typeof binding.target.name !== 'string') {
    throw new TypeError('request.object must be a Binding with target.name');
  }
  const nodeName = binding.target.name;
  const nodeClass = ippClassOfNode(ctx, nodeName);
  const user = req.userInfo?.username ?? '';
  if ((ctx.controllerUsernames ?? []).includes(user)) return controllerBinding(req, nodeName, nodeClass, ctx);
  if ((ctx.schedulers ?? DEFAULT_SCHEDULERS).includes(user)) return allow();
  // As for a pod created with spec.nodeName: a pod bound to a node that has not registered runs there
  // the moment it does, and the node registering under that name may be a dedicated ipp node.
  const exists = ctx.nodeExists ? ctx.nodeExists(nodeName) : true;
  if (exists === false) {
    return deny(
      `node "${nodeName}" does not exist; "${user}" may bind pod "${req.name ?? ''}" only to a node that has ` +
        `registered (a node registered later could be a dedicated ipp node).`,
    );
  }
  if (exists === undefined) {
    return deny(
      `ipp could not check that node "${nodeName}" exists (the apiserver did not answer); retry the binding in a moment.`,
      500,
      'InternalError',
    );
  }
  if (nodeClass === undefined) return allow();
  return deny(
    `node "${nodeName}" is an ipp node, reserved for the pods ipp places there; ` +
      `"${user}" may not bind pod "${req.name ?? ''}" to it. Bind the pod to another node, or label it ${CLASS_LABEL}=<class> ` +
      `when it is created so that ipp gives it a node.`,
  );
}

/**
 * The controller evicts only to drain an ipp node: pods labelled ipp-class, or any pod on an ipp
 * node. RBAC cannot narrow pods/eviction, and an Eviction carries no pod for a policy to look at, so
 * the pod is read from the controller's cache here: its token, if stolen, evicts nothing else (the
 * pods of kube-system, say). Other identities' evictions are RBAC's and PodDisruptionBudgets' business.
 */
function enforceEviction(req: AdmissionRequest, ctx: EnforceContext): Decision {
  const user = req.userInfo?.username ?? '';
  if (!(ctx.controllerUsernames ?? []).includes(user)) return allow();
  const namespace = req.namespace ?? '';
  const name = req.name ?? '';
  const pod = ctx.pods?.get(namespace, name);
  if (pod && labelOf(pod, CLASS_LABEL) !== undefined) return allow();
  const nodeName = pod?.spec?.nodeName;
  if (nodeName && ippClassOfNode(ctx, nodeName) !== undefined) return allow();
  return deny(
    pod
      ? `ipp evicts only the pods it drains from its own nodes (labelled ${CLASS_LABEL}, or on an ipp node); pod ${namespace}/${name} is neither.`
      : `pod ${namespace}/${name} is not in ipp's cache, and ipp evicts only the pods it drains from its own nodes; retry once the cache has it.`,
  );
}

/**
 * ipp itself binds (bind mode) only a pod of a class to a node of that class, and to the node of the
 * Instance the pod claims: its token, if stolen, binds nothing else anywhere.
 */
function controllerBinding(
  req: AdmissionRequest,
  nodeName: string,
  nodeClass: string | undefined,
  ctx: EnforceContext,
): Decision {
  if (!ctx.pods) return allow();
  const pod = ctx.pods.get(req.namespace ?? '', req.name ?? '');
  const podClass = labelOf(pod, CLASS_LABEL);
  const claim = annotationOf(pod, POD_INSTANCE_ANNOTATION);
  const node = ctx.nodes.get(nodeName);
  const nodeInstance = node?.metadata?.labels?.[NODE_INSTANCE_LABEL];
  const claimed = claim === undefined ? undefined : ctx.instances?.get(claim);
  // By providerID where the Instance is known (the cloud's word, as the controller matched it), by
  // the node's ipp.dev/instance label (its kubelet's word) only where it is not.
  const claimedNode =
    claim !== undefined &&
    (claimed?.status?.providerID
      ? claimed.spec.class === podClass && claimed.status.providerID === node?.spec?.providerID
      : claim === nodeInstance);
  if (pod && podClass !== undefined && podClass === nodeClass && claimedNode) return allow();
  return deny(
    `ipp binds only a pod labelled ${CLASS_LABEL} to the node of the Instance it claims; pod ` +
      `"${req.namespace}/${req.name}" (class ${podClass ?? 'none'}, Instance ${claim ?? 'none'}) does not belong on node ` +
      `"${nodeName}" (class ${nodeClass ?? 'none'}, Instance ${nodeInstance ?? 'none'}).`,
  );
}

/**
 * JSON patch adding `ipp.dev/class DoesNotExist` to every required nodeSelectorTerm (terms are ORed,
 * so one term without it would be a way onto ipp nodes), or creating the term. [] when already there.
 */
export function keepOffIppNodes(spec: V1PodSpec): PatchOp[] {
  const term: V1NodeSelectorTerm = { matchExpressions: [OFF_IPP_NODES] };
  const affinity: unknown = spec.affinity;
  if (!isRecord(affinity))
    return [
      {
        op: 'add',
        path: '/spec/affinity',
        value: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [term] } } },
      },
    ];
  const nodeAffinity = affinity.nodeAffinity;
  if (!isRecord(nodeAffinity))
    return [
      {
        op: 'add',
        path: '/spec/affinity/nodeAffinity',
        value: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [term] } },
      },
    ];
  const base = ['spec', 'affinity', 'nodeAffinity', 'requiredDuringSchedulingIgnoredDuringExecution'];
  const required = nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  if (!isRecord(required)) return [{ op: 'add', path: pointer(...base), value: { nodeSelectorTerms: [term] } }];
  const terms = listOf<V1NodeSelectorTerm>(required.nodeSelectorTerms, 'nodeSelectorTerms');
  if (terms.length === 0) return [{ op: 'add', path: pointer(...base, 'nodeSelectorTerms'), value: [term] }];
  const ops: PatchOp[] = [];
  terms.forEach((t, i) => {
    const exprs = listOf<V1NodeSelectorRequirement>(t.matchExpressions, 'matchExpressions');
    if (exprs.some((e) => e.key === OFF_IPP_NODES.key && e.operator === OFF_IPP_NODES.operator)) return;
    ops.push(
      exprs.length > 0
        ? { op: 'add', path: `${pointer(...base, 'nodeSelectorTerms', i, 'matchExpressions')}/-`, value: OFF_IPP_NODES }
        : { op: 'add', path: pointer(...base, 'nodeSelectorTerms', i, 'matchExpressions'), value: [OFF_IPP_NODES] },
    );
  });
  return ops;
}
