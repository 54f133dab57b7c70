// The final-pod ValidatingAdmissionPolicy: the chart renders exactly what src/webhook/policy.ts
// builds (the e2e tests install the latter and prove it on the real apiserver).
import { describe, expect, it } from 'vitest';
import { one, render, type Manifest } from '../../testbed/chart.ts';
import { finalPodPolicy } from '../../../src/webhook/policy.ts';

const base = { clusterName: 'demo', providers: ['simulated'] };

describe('final-pod policy', () => {
  it.each([
    ['pin', {}],
    ['bind', { placement: 'bind' }],
    ['more trusted namespaces', { trustedDaemonSetNamespaces: ['kube-system', 'monitoring'] }],
  ])('the chart renders what policy.ts builds (%s)', (_what, extra) => {
    const values = { ...base, ...extra } as { placement?: 'pin' | 'bind'; trustedDaemonSetNamespaces?: string[] };
    const ms = render(values);
    const [policy, binding] = finalPodPolicy({
      name: 'ipp-final-pod',
      controllerNamespace: 'ipp-system',
      placement: values.placement ?? 'pin',
      trustedDaemonSetNamespaces: values.trustedDaemonSetNamespaces,
    });
    const rendered = one<Manifest>(ms, 'ValidatingAdmissionPolicy', 'ipp-final-pod');
    expect(rendered.spec).toEqual(policy.spec);
    expect(one<Manifest>(ms, 'ValidatingAdmissionPolicyBinding', 'ipp-final-pod').spec).toEqual(binding.spec);
  });

  it('is left out when disabled', () => {
    const ms = render({ ...base, finalPodPolicy: { enabled: false } });
    expect(ms.filter((m) => m.metadata?.name === 'ipp-final-pod')).toEqual([]);
  });
});

describe('network policy', () => {
  it('is off by default; when on, admits only the webhook and metrics ports, from the listed peers', () => {
    expect(render(base).filter((m) => m.kind === 'NetworkPolicy')).toEqual([]);
    const apiserver = { ipBlock: { cidr: '10.0.0.0/16' } };
    const np = one<Manifest & { spec: { ingress: unknown[]; policyTypes: string[] } }>(
      render({ ...base, networkPolicy: { enabled: true, webhookFrom: [apiserver] } }),
      'NetworkPolicy',
    );
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress).toEqual([
      { ports: [{ port: 'webhook', protocol: 'TCP' }], from: [apiserver] },
      { ports: [{ port: 'http-metrics', protocol: 'TCP' }] },
    ]);
  });
});

describe('class taints policy', () => {
  it("warns, without refusing, about a class whose own user data drops ipp's taints", () => {
    const ms = render(base);
    const policy = one<Manifest & { spec: { validations: { expression: string; message: string }[] } }>(
      ms,
      'ValidatingAdmissionPolicy',
      'ipp-class-taints',
    );
    expect(policy.spec.validations[0]!.expression).toContain("'{{ipp:register-with-taints}}'");
    expect(policy.spec.validations[0]!.message).toContain('Put {{ipp:register-with-taints}} on the kubelet');
    expect(one<Manifest & { spec: object }>(ms, 'ValidatingAdmissionPolicyBinding', 'ipp-class-taints').spec).toEqual({
      policyName: 'ipp-class-taints',
      validationActions: ['Warn'],
    });
  });
});
