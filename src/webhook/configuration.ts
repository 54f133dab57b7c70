// Lives in src/ beside the server because it is the definition of which requests reach the webhook:
// the chart's templates/webhook.yaml renders the same object (test/unit/chart/chart.test.ts keeps the
// two in step), and the demo and e2e tests install it from here when they run without Helm.
import type {
  V1MatchCondition,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  AdmissionregistrationV1WebhookClientConfig,
} from '@kubernetes/client-node';
import {
  CLASS_LABEL,
  GATE,
  POD_INSTANCE_ANNOTATION,
  POD_PINNED_AT_ANNOTATION,
  RUNTIME_CLASS_PREFIX,
  TAINT_KEY,
} from '../api/names.ts';
import {
  DEFAULT_DAEMONSET_CREATORS,
  DEFAULT_TRUSTED_DAEMONSET_NAMESPACES,
  MIRROR_ANNOTATION,
  type DaemonSetTrust,
} from './admission.ts';
import { ENFORCE_PATH, MUTATE_PATH } from './server.ts';

export const DEFAULT_CONFIGURATION_NAME = 'ipp';
export const MUTATE_WEBHOOK = 'mutate.pods.ipp.dev';
export const ENFORCE_WEBHOOK = 'enforce.pods.ipp.dev';
export const ENFORCE_BINDING_WEBHOOK = 'enforce.bindings.ipp.dev';
export const ENFORCE_EVICTION_WEBHOOK = 'enforce.evictions.ipp.dev';

export interface WebhookConfigurationOptions {
  /** Default `ipp`. */
  name?: string;
  /** The Service in front of the controller pods, or a URL base for a webhook outside the cluster. */
  client: { service: { namespace: string; name: string; port: number } } | { url: string };
  /** Namespace of the controller: never sent to the webhook (it could not admit its own pods). */
  controllerNamespace: string;
  /** Base64 PEM; omit with cert-manager (cainjector fills it) or when the controller patches it. */
  caBundle?: string;
  /** `<namespace>/<Certificate>` for cert-manager's cainjector. */
  certManagerCertificate?: string;
  failurePolicy?: 'Fail' | 'Ignore';
  timeoutSeconds?: number;
  /** Usernames whose pods/binding requests never reach the webhook. Default: kube-scheduler. */
  trustedBinders?: string[];
  /**
   * The controller's own identity (system:serviceaccount:<ns>:<sa>). Its bindings (bind mode) are
   * checked like anyone's (only ipp pods, only to nodes of their class): a stolen token must not
   * bind arbitrary pods onto dedicated nodes. Every replica serves the webhook, so the leader's
   * bindings wait on no other process. With it, a webhook of its own sees the controller's evictions
   * (enforce.evictions.ipp.dev): only pods it drains from ipp nodes; and its claims and pins (the
   * gate lifted, ipp's annotations written) no longer call enforce.pods.ipp.dev (enforcePodCondition).
   */
  controllerUsername?: string;
  /** Namespaces whose DaemonSet pods skip enforcement (as in enforce.ts); default kube-system. */
  trustedDaemonSetNamespaces?: readonly string[];
}

// CEL shared by the match conditions. Pods without an ipp-relevant toleration, nodeName or label
// change never wait on the enforcement webhook, so the rest of the cluster does not depend on it.
export const LABELS = (o: string) => `(has(${o}.metadata.labels) ? ${o}.metadata.labels : {})`;
// '<none>' cannot be a label value, so an absent label differs from an empty one.
const CLASS_OF = (o: string) => `('${CLASS_LABEL}' in ${LABELS(o)} ? ${LABELS(o)}['${CLASS_LABEL}'] : '<none>')`;
export const TOLERATES = (o: string) =>
  `(has(${o}.spec.tolerations) && ${o}.spec.tolerations.exists(t, ` +
  `(has(t.key) && t.key != '') ? t.key == '${TAINT_KEY}' : (has(t.operator) && t.operator == 'Exists')))`;
export const PLACED = (o: string) => `(has(${o}.spec.nodeName) && ${o}.spec.nodeName != '')`;

export const GATED = (o: string) =>
  `(has(${o}.spec.schedulingGates) && ${o}.spec.schedulingGates.exists(g, g.name == '${GATE}'))`;
const ANNOTATIONS = (o: string) => `(has(${o}.metadata.annotations) ? ${o}.metadata.annotations : {})`;
/**
 * Added, removed or changed. Presence is compared, not a stand-in value for "absent": an annotation may
 * hold any string, and one written as that stand-in would read as unchanged and skip the webhook.
 */
const ANNOTATION_CHANGED = (key: string) => {
  const [now, before] = [ANNOTATIONS('object'), ANNOTATIONS('oldObject')];
  return (
    `(('${key}' in ${now}) != ('${key}' in ${before}) || ` +
    `('${key}' in ${now} && '${key}' in ${before} && ${now}['${key}'] != ${before}['${key}']))`
  );
};
/** The annotations only ipp writes: an update changing one is the enforcement webhook's to judge. */
const OWN_ANNOTATIONS_CHANGED = [POD_INSTANCE_ANNOTATION, POD_PINNED_AT_ANNOTATION]
  .map(ANNOTATION_CHANGED)
  .join(' || ');

const TOLERATIONS = (o: string) => `(has(${o}.spec.tolerations) ? ${o}.spec.tolerations : [])`;

/** Lifting the gate or writing ipp's annotations: changes only the controller may make. */
const CONTROLLER_ONLY_CHANGES = `(${GATED('oldObject')} && !${GATED('object')}) || ${OWN_ANNOTATIONS_CHANGED}`;

/**
 * On UPDATE: a class label changed, an ordinary pod newly tolerating ipp nodes, an opted-in pod's
 * tolerations changed at all (it already tolerates its own class's taint, so "newly tolerating" would
 * miss a toleration of every taint added later), the gate lifted, or ipp's annotations touched.
 * The last two are refused to everyone but the controller and allowed to it (enforce.ts): made by the
 * controller's own identity, they are decided here, without a call. Every pod ipp places costs two
 * such writes (the claim, the pin), and each call would sit in the pin's path, on the webhook's
 * TLS connection and in the controller's CPU. The controller changing a class label, or adding an
 * ipp toleration to a pod not labelled ipp-class, still reaches the webhook, which refuses those to it
 * as to anyone. (A toleration it adds to an opted-in pod is sent and allowed, as before: the
 * controller-scope policy, not this webhook, keeps its token from that.)
 */
export function enforcePodCondition(controllerUsername?: string): string {
  const controllerOnly = controllerUsername
    ? `(request.userInfo.username != '${controllerUsername}' && (${CONTROLLER_ONLY_CHANGES}))`
    : CONTROLLER_ONLY_CHANGES;
  return (
    `request.operation == 'CREATE' ? (${PLACED('object')} || (!('${CLASS_LABEL}' in ${LABELS('object')}) && ${TOLERATES('object')})) : ` +
    `(${CLASS_OF('object')} != ${CLASS_OF('oldObject')} || (${TOLERATES('object')} && !${TOLERATES('oldObject')}) || ` +
    `(${CLASS_OF('object')} != '<none>' && ${TOLERATIONS('object')} != ${TOLERATIONS('oldObject')}) || ` +
    `${controllerOnly})`
  );
}
/** The condition for a configuration that does not name the controller: every such change is sent. */
export const ENFORCE_POD_CONDITION = enforcePodCondition();

/**
 * Which pods the mutating webhook sees: labelled ipp-class, or naming a RuntimeClass ipp-<class>.
 * An objectSelector cannot look at spec.runtimeClassName, so this is a match condition; other pods
 * are decided by the apiserver without a call.
 */
export const OPTED_IN_CONDITION =
  `'${CLASS_LABEL}' in ${LABELS('object')} || ` +
  `(has(object.spec.runtimeClassName) && object.spec.runtimeClassName.startsWith('${RUNTIME_CLASS_PREFIX}'))`;

export const cel = (xs: readonly string[]) => `[${xs.map((x) => `'${x}'`).join(', ')}]`;

/**
 * Match conditions of the enforcement webhook (ANDed). Real DaemonSet and mirror pods are exempt by
 * enforce.ts anyway; skipping the call keeps node agents and static pods independent of ipp's uptime.
 */
export function enforceConditions(trust: DaemonSetTrust = {}, controllerUsername?: string): V1MatchCondition[] {
  const creators = trust.daemonSetCreators ?? DEFAULT_DAEMONSET_CREATORS;
  const namespaces = trust.daemonSetNamespaces ?? DEFAULT_TRUSTED_DAEMONSET_NAMESPACES;
  return [
    {
      name: 'not-a-trusted-daemonset-pod',
      expression:
        `request.operation != 'CREATE' || !(request.namespace in ${cel(namespaces)} && ` +
        `request.userInfo.username in ${cel(creators)} && ` +
        `has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, r.kind == 'DaemonSet' && has(r.controller) && r.controller))`,
    },
    {
      name: 'not-a-mirror-pod',
      expression:
        `request.operation != 'CREATE' || !(has(object.metadata.annotations) && '${MIRROR_ANNOTATION}' in object.metadata.annotations && ` +
        `${PLACED('object')} && request.userInfo.username == 'system:node:' + object.spec.nodeName)`,
    },
    { name: 'ipp-relevant', expression: enforcePodCondition(controllerUsername) },
  ];
}

function clientConfig(opts: WebhookConfigurationOptions, path: string): AdmissionregistrationV1WebhookClientConfig {
  const cfg: AdmissionregistrationV1WebhookClientConfig =
    'url' in opts.client
      ? { url: `${opts.client.url.replace(/\/+$/, '')}${path}` }
      : { service: { ...opts.client.service, path } };
  if (opts.caBundle) cfg.caBundle = opts.caBundle;
  return cfg;
}

export function webhookConfiguration(opts: WebhookConfigurationOptions): V1MutatingWebhookConfiguration {
  const common = {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: opts.failurePolicy ?? 'Fail',
    timeoutSeconds: opts.timeoutSeconds ?? 5,
    matchPolicy: 'Equivalent',
    namespaceSelector: {
      matchExpressions: [
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: [...new Set(['kube-system', opts.controllerNamespace])],
        },
      ],
    },
  } satisfies Partial<V1MutatingWebhook>;
  const binders = opts.trustedBinders ?? ['system:kube-scheduler'];
  const bindingConditions: V1MatchCondition[] =
    binders.length > 0
      ? [{ name: 'not-a-trusted-binder', expression: `!(request.userInfo.username in ${cel(binders)})` }]
      : [];

  const webhooks: V1MutatingWebhook[] = [
    {
      ...common,
      name: MUTATE_WEBHOOK,
      clientConfig: clientConfig(opts, MUTATE_PATH),
      rules: [
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
      ],
      matchConditions: [{ name: 'opted-in', expression: OPTED_IN_CONDITION }],
      // Another webhook may add a toleration or rewrite the spec after us; being called again keeps the gate.
      reinvocationPolicy: 'IfNeeded',
    },
    {
      ...common,
      name: ENFORCE_WEBHOOK,
      clientConfig: clientConfig(opts, ENFORCE_PATH),
      rules: [
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          operations: ['CREATE', 'UPDATE'],
          resources: ['pods'],
          scope: 'Namespaced',
        },
      ],
      matchConditions: enforceConditions(
        opts.trustedDaemonSetNamespaces ? { daemonSetNamespaces: opts.trustedDaemonSetNamespaces } : {},
        opts.controllerUsername,
      ),
      // A later webhook adding a toleration must not escape the affinity.
      reinvocationPolicy: 'IfNeeded',
    },
    {
      ...common,
      name: ENFORCE_BINDING_WEBHOOK,
      clientConfig: clientConfig(opts, ENFORCE_PATH),
      rules: [
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          operations: ['CREATE'],
          resources: ['pods/binding', 'bindings'],
          scope: 'Namespaced',
        },
      ],
      ...(bindingConditions.length > 0 ? { matchConditions: bindingConditions } : {}),
      reinvocationPolicy: 'Never',
    },
  ];
  if (opts.controllerUsername) {
    // The controller's own evictions only (drains): no one else waits on this webhook. In every
    // namespace, kube-system included: a stolen token must not evict what runs there either.
    webhooks.push({
      ...common,
      name: ENFORCE_EVICTION_WEBHOOK,
      clientConfig: clientConfig(opts, ENFORCE_PATH),
      rules: [
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          operations: ['CREATE'],
          resources: ['pods/eviction'],
          scope: 'Namespaced',
        },
      ],
      namespaceSelector: {},
      matchConditions: [
        { name: 'is-the-ipp-controller', expression: `request.userInfo.username == '${opts.controllerUsername}'` },
      ],
      reinvocationPolicy: 'Never',
    });
  }
  const metadata: V1MutatingWebhookConfiguration['metadata'] = {
    name: opts.name ?? DEFAULT_CONFIGURATION_NAME,
    labels: { 'app.kubernetes.io/name': 'ipp' },
  };
  if (opts.certManagerCertificate)
    metadata.annotations = { 'cert-manager.io/inject-ca-from': opts.certManagerCertificate };
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata, webhooks };
}
