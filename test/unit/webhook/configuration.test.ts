import { describe, expect, it } from 'vitest';
import {
  ENFORCE_POD_CONDITION,
  enforcePodCondition,
  OPTED_IN_CONDITION,
  webhookConfiguration,
} from '../../../src/webhook/configuration.ts';

const service = { namespace: 'ipp-system', name: 'ipp-webhook', port: 9443 };

describe('webhookConfiguration', () => {
  const cfg = webhookConfiguration({ client: { service }, controllerNamespace: 'ipp-system' });
  const [mutate, enforce, bindings] = cfg.webhooks!;

  it('sends only opted-in pods (label or ipp-* RuntimeClass) to the mutating webhook, failing closed, never from kube-system or the controller namespace', () => {
    expect(mutate).toMatchObject({
      name: 'mutate.pods.ipp.dev',
      failurePolicy: 'Fail',
      timeoutSeconds: 5,
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      reinvocationPolicy: 'IfNeeded',
      matchConditions: [{ name: 'opted-in', expression: OPTED_IN_CONDITION }],
      namespaceSelector: {
        matchExpressions: [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'ipp-system'] },
        ],
      },
      rules: [{ operations: ['CREATE'], resources: ['pods'], apiGroups: [''], apiVersions: ['v1'] }],
      clientConfig: { service: { ...service, path: '/mutate-pods' } },
    });
    expect(mutate!.clientConfig.caBundle).toBeUndefined();
    // A selector on the label alone would never send a pod that opts in by runtimeClassName.
    expect(mutate!.objectSelector).toBeUndefined();
    expect(OPTED_IN_CONDITION).toBe(
      "'ipp-class' in (has(object.metadata.labels) ? object.metadata.labels : {}) || " +
        "(has(object.spec.runtimeClassName) && object.spec.runtimeClassName.startsWith('ipp-'))",
    );
  });

  it('scopes the enforcement webhooks with match conditions', () => {
    expect(enforce).toMatchObject({ name: 'enforce.pods.ipp.dev' });
    expect(enforce!.matchConditions!.map((m) => m.name)).toEqual([
      'not-a-trusted-daemonset-pod',
      'not-a-mirror-pod',
      'ipp-relevant',
    ]);
    expect(enforce!.matchConditions![2]!.expression).toBe(ENFORCE_POD_CONDITION);
    expect(enforce!.matchConditions![0]!.expression).toContain(
      "['system:serviceaccount:kube-system:daemon-set-controller', 'system:kube-controller-manager']",
    );
    expect(enforce!.objectSelector).toBeUndefined();
    expect(enforce!.rules![0]!.operations).toEqual(['CREATE', 'UPDATE']);
    expect(bindings).toMatchObject({
      name: 'enforce.bindings.ipp.dev',
      rules: [{ resources: ['pods/binding', 'bindings'], operations: ['CREATE'] }],
      matchConditions: [{ expression: "!(request.userInfo.username in ['system:kube-scheduler'])" }],
    });
  });

  it("sends the controller's own bindings to the webhook too (a stolen token must not bind anything anywhere)", () => {
    const c = webhookConfiguration({
      client: { service },
      controllerNamespace: 'ipp-system',
      controllerUsername: 'system:serviceaccount:ipp-system:ipp',
    });
    expect(c.webhooks!.find((w) => w.name === 'enforce.bindings.ipp.dev')!.matchConditions![0]!.expression).toBe(
      "!(request.userInfo.username in ['system:kube-scheduler'])",
    );
  });

  it("decides the controller's own claims and pins without a call; its relabels and tolerations still go", () => {
    const user = 'system:serviceaccount:ipp-system:ipp';
    const c = webhookConfiguration({
      client: { service },
      controllerNamespace: 'ipp-system',
      controllerUsername: user,
    });
    const expr = c.webhooks!.find((w) => w.name === 'enforce.pods.ipp.dev')!.matchConditions![2]!.expression;
    expect(expr).toBe(enforcePodCondition(user));
    // Only the gate and ipp's annotations are exempted for the controller: the label and toleration
    // clauses come before the one clause that names it, outside it.
    const [sent, exempted] = expr.split(`(request.userInfo.username != '${user}' && (`) as [string, string];
    expect(exempted).toBeDefined();
    expect(sent).toContain("('ipp-class' in (has(object.metadata.labels)");
    expect(sent).toContain('object.spec.tolerations.exists(');
    expect(exempted).toMatch(/^\(\(has\(oldObject\.spec\.schedulingGates\)/);
    expect(exempted).toContain("'ipp.dev/instance' in");
    expect(exempted).toContain("'ipp.dev/pinned-at' in");
    expect(exempted).not.toContain('ipp-class');
    // A configuration that does not name the controller sends every such change, whoever makes it.
    expect(ENFORCE_POD_CONDITION).not.toContain('request.userInfo.username');
  });

  it("sends the controller's own evictions, in every namespace, and nobody else's", () => {
    const c = webhookConfiguration({
      client: { service },
      controllerNamespace: 'ipp-system',
      controllerUsername: 'system:serviceaccount:ipp-system:ipp',
    });
    expect(c.webhooks!.find((w) => w.name === 'enforce.evictions.ipp.dev')).toMatchObject({
      rules: [{ resources: ['pods/eviction'], operations: ['CREATE'] }],
      namespaceSelector: {},
      matchConditions: [{ expression: "request.userInfo.username == 'system:serviceaccount:ipp-system:ipp'" }],
      failurePolicy: 'Fail',
    });
    // Without the controller's identity there is nothing to match it on: no such webhook.
    const without = webhookConfiguration({ client: { service }, controllerNamespace: 'ipp-system' });
    expect(without.webhooks!.map((w) => w.name)).not.toContain('enforce.evictions.ipp.dev');
  });

  it('takes a URL instead of a Service, a caBundle, a cert-manager Certificate, and the policy knobs', () => {
    const c = webhookConfiguration({
      name: 'x',
      client: { url: 'https://127.0.0.1:8443/' },
      controllerNamespace: 'kube-system',
      caBundle: 'Q0E=',
      certManagerCertificate: 'ipp-system/ipp-webhook',
      failurePolicy: 'Ignore',
      timeoutSeconds: 3,
    });
    expect(c.metadata).toMatchObject({
      name: 'x',
      annotations: { 'cert-manager.io/inject-ca-from': 'ipp-system/ipp-webhook' },
    });
    expect(c.webhooks!.map((w) => w.clientConfig)).toEqual([
      { url: 'https://127.0.0.1:8443/mutate-pods', caBundle: 'Q0E=' },
      { url: 'https://127.0.0.1:8443/enforce-pods', caBundle: 'Q0E=' },
      { url: 'https://127.0.0.1:8443/enforce-pods', caBundle: 'Q0E=' },
    ]);
    expect(c.webhooks!.every((w) => w.failurePolicy === 'Ignore' && w.timeoutSeconds === 3)).toBe(true);
    expect(c.webhooks![0]!.namespaceSelector!.matchExpressions![0]!.values).toEqual(['kube-system']);
  });
});
