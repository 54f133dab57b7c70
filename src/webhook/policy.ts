// The ValidatingAdmissionPolicy that checks the FINAL pod, after every mutating webhook ran
// (docs/security.md, T5). ipp's mutating webhooks see the pod as it was when they were called; a
// webhook running after them can add a broad toleration to an ordinary pod, or the ipp-class label
// to a pod ipp never gated, and reinvocation only re-calls webhooks that matched the first time.
// Validating admission runs after all mutation, in-process, so this catches both. The chart's
// templates/final-pod-policy.yaml renders the same objects (test/unit/webhook/policy.test.ts).
import type {
  V1ValidatingAdmissionPolicy,
  V1ValidatingAdmissionPolicyBinding,
  V1MatchCondition,
} from '@kubernetes/client-node';
import { CLASS_LABEL, NODE_CLASS_LABEL, SCHEDULER_NAME } from '../api/names.ts';
import type { PlacementMode } from './admission.ts';
import { enforceConditions, GATED, LABELS, PLACED, TOLERATES } from './configuration.ts';

export interface FinalPodPolicyOptions {
  /** Default `ipp-final-pod`. */
  name?: string;
  /** Namespace of the controller: excluded, as from the webhooks. */
  controllerNamespace: string;
  placement: PlacementMode;
  trustedDaemonSetNamespaces?: readonly string[];
}

const REQUIRED = (o: string) => `${o}.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`;
/** Every required node selector term keeps the pod off ipp nodes (terms are ORed). */
const KEPT_OFF = (o: string) =>
  `(has(${o}.spec.affinity) && has(${o}.spec.affinity.nodeAffinity) && has(${REQUIRED(o)}) && ` +
  `size(${REQUIRED(o)}.nodeSelectorTerms) > 0 && ${REQUIRED(o)}.nodeSelectorTerms.all(t, has(t.matchExpressions) && ` +
  `t.matchExpressions.exists(e, e.key == '${NODE_CLASS_LABEL}' && e.operator == 'DoesNotExist')))`;
const OPTED_IN = (o: string) => `('${CLASS_LABEL}' in ${LABELS(o)})`;

export function finalPodValidations(
  placement: PlacementMode,
): { expression: string; message: string; reason: string }[] {
  const held =
    placement === 'pin'
      ? `(${GATED('object')} && !${PLACED('object')})`
      : `(has(object.spec.schedulerName) && object.spec.schedulerName == '${SCHEDULER_NAME}' && !${PLACED('object')})`;
  return [
    {
      expression:
        `${OPTED_IN('object')} || !${TOLERATES('object')} || ${KEPT_OFF('object')} || ` +
        `(request.operation == 'UPDATE' && (${PLACED('oldObject')} || ${TOLERATES('oldObject')}))`,
      message:
        `this pod tolerates the ${NODE_CLASS_LABEL} taint but lacks the required node affinity ` +
        `"${NODE_CLASS_LABEL} DoesNotExist" that ipp adds: a mutating webhook that ran after ipp's added the toleration. ` +
        `ipp nodes are reserved for pods labelled ${CLASS_LABEL}; fix or reorder that webhook.`,
      reason: 'Forbidden',
    },
    {
      expression: `request.operation != 'CREATE' || !${OPTED_IN('object')} || ${held}`,
      message:
        placement === 'pin'
          ? `this pod is labelled ${CLASS_LABEL} but is not held by ipp's scheduling gate: a mutating webhook that ran ` +
            `after ipp's added the label (or removed the gate). Set ${CLASS_LABEL} in the pod's manifest instead.`
          : `this pod is labelled ${CLASS_LABEL} but does not use scheduler "${SCHEDULER_NAME}": a mutating webhook that ran ` +
            `after ipp's added the label (or changed schedulerName). Set ${CLASS_LABEL} in the pod's manifest instead.`,
      reason: 'Forbidden',
    },
  ];
}

export function finalPodPolicy(
  o: FinalPodPolicyOptions,
): [V1ValidatingAdmissionPolicy, V1ValidatingAdmissionPolicyBinding] {
  const name = o.name ?? 'ipp-final-pod';
  // Node agents and the kubelet's own mirror pods are exempt, exactly as from the webhooks.
  const exempt: V1MatchCondition[] = enforceConditions(
    o.trustedDaemonSetNamespaces ? { daemonSetNamespaces: o.trustedDaemonSetNamespaces } : {},
  ).filter((c) => c.name !== 'ipp-relevant');
  const policy: V1ValidatingAdmissionPolicy = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name, labels: { 'app.kubernetes.io/name': 'ipp' } },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods'] },
        ],
        namespaceSelector: {
          matchExpressions: [
            {
              key: 'kubernetes.io/metadata.name',
              operator: 'NotIn',
              values: [...new Set(['kube-system', o.controllerNamespace])],
            },
          ],
        },
      },
      matchConditions: exempt,
      validations: finalPodValidations(o.placement),
    },
  };
  const binding: V1ValidatingAdmissionPolicyBinding = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name, labels: { 'app.kubernetes.io/name': 'ipp' } },
    spec: { policyName: name, validationActions: ['Deny'] },
  };
  return [policy, binding];
}
