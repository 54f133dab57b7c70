// charts/ipp rendered by the real helm (v3, built once by test/testbed/helm.ts): lint, the value sets
// users install with, the schema, the flags the controller actually accepts, security settings, the
// RBAC shape, and the webhook configuration against src/webhook/configuration.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import type {
  V1Container,
  V1Deployment,
  V1MutatingWebhookConfiguration,
  V1PolicyRule,
  V1Role,
  V1Service,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import { parseOptions, type Options } from '../../../src/config/options.ts';
import { webhookConfiguration } from '../../../src/webhook/configuration.ts';
import { lint, one, render, renderText, type Manifest } from '../../testbed/chart.ts';
import { ensureHelm } from '../../testbed/helm.ts';

const NS = 'ipp-system';
const eks = {
  endpoint: 'https://ABCDEF.gr7.us-east-1.eks.amazonaws.com',
  certificateAuthority: 'LS0tLS1CRUdJTg==',
  serviceCidr: '10.100.0.0/16',
};

/** The value sets a user installs with. */
const SETS: Record<string, object> = {
  defaults: { clusterName: 'prod', aws: { eks } },
  simulated: { clusterName: 'demo', providers: ['simulated'] },
  aws: {
    clusterName: 'prod',
    providers: ['aws'],
    aws: { region: 'us-east-1', eks: { ...eks, clusterName: 'prod-eks' } },
    serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/ipp-controller' } },
    serviceMonitor: { enabled: true, additionalLabels: { release: 'kube-prometheus-stack' } },
    prometheusRule: { enabled: true, additionalLabels: { release: 'kube-prometheus-stack' } },
    grafanaDashboard: { enabled: true },
  },
  gce: {
    clusterName: 'prod',
    providers: ['gce'],
    gce: { project: 'prod-project' },
    serviceAccount: {
      annotations: { 'iam.gke.io/gcp-service-account': 'ipp-controller@prod-project.iam.gserviceaccount.com' },
    },
  },
  certManager: {
    clusterName: 'demo',
    providers: ['simulated'],
    webhook: { certManager: { enabled: true } },
    // A name of the user's: the webhooks' match conditions must name this one, not the default.
    serviceAccount: { name: 'mail-relay-ipp' },
  },
  bind: {
    clusterName: 'demo',
    providers: ['simulated', 'aws'],
    placement: 'bind',
    aws: { eks },
    webhook: { failurePolicy: 'Ignore', timeoutSeconds: 3 },
    trustedDaemonSetNamespaces: ['kube-system', 'monitoring'],
  },
};

const deploymentOf = (ms: Manifest[]) => one<V1Deployment>(ms, 'Deployment');
const containerOf = (ms: Manifest[]) => deploymentOf(ms).spec!.template.spec!.containers[0]!;

/** What the controller makes of the rendered container: its args, with the Downward API's env filled in. */
function optionsOf(ms: Manifest[]): Options {
  const c = containerOf(ms);
  const env: NodeJS.ProcessEnv = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = 'ipp-controller-7d9f-abcde';
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = NS;
    else throw new Error(`env ${e.name}: a source this test does not know: ${JSON.stringify(e.valueFrom)}`);
  }
  expect(c.command, 'the image entrypoint is the controller; the chart passes flags only').toBeUndefined();
  return parseOptions(c.args ?? [], env);
}

const rulesOf = (ms: Manifest[], kind: 'ClusterRole' | 'Role') =>
  ms
    .filter((m) => m.kind === kind)
    .flatMap((r) =>
      ((r as V1Role).rules ?? []).map((rule) => ({
        ...rule,
        role: r.metadata!.name!,
        namespace: r.metadata!.namespace,
      })),
    );

const grants = (rules: V1PolicyRule[], group: string, resource: string, verb: string) =>
  rules.filter((r) => r.apiGroups!.includes(group) && r.resources!.includes(resource) && r.verbs.includes(verb));

beforeAll(() => {
  ensureHelm();
}, 15 * 60_000);

// Every render is a helm process; on a loaded machine a test with ten of them takes seconds.
describe('charts/ipp', { timeout: 60_000 }, () => {
  it.each(Object.keys(SETS))('passes helm lint --strict with the %s values', (set) => {
    expect(lint(SETS[set]!)).toContain('0 chart(s) failed');
  });

  it.each(Object.keys(SETS))('renders parseable, named, namespaced objects with the %s values', (set) => {
    const ms = render(SETS[set]!);
    const clusterScoped = [
      'ClusterRole',
      'ClusterRoleBinding',
      'MutatingWebhookConfiguration',
      'Namespace',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ];
    for (const m of ms) {
      expect(m.apiVersion, `${m.kind}`).toMatch(/^([a-z0-9.-]+\/)?v[0-9a-z]+$/);
      expect(m.metadata?.name, `${m.kind} has a name`).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      if (clusterScoped.includes(m.kind!)) expect(m.metadata?.namespace, `${m.kind} is cluster-scoped`).toBeUndefined();
      else expect(m.metadata?.namespace, `${m.kind}/${m.metadata?.name}`).toBeTruthy();
    }
    const kinds = new Set(ms.map((m) => m.kind));
    for (const k of [
      'Deployment',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'Service',
      'PodDisruptionBudget',
      'MutatingWebhookConfiguration',
    ]) {
      expect(kinds, `${set} renders a ${k}`).toContain(k);
    }
  });

  it.each(Object.keys(SETS))(
    'passes the controller only flags src/config/options.ts accepts, consistent with the other objects (%s)',
    (set) => {
      const ms = render(SETS[set]!);
      const o = optionsOf(ms);
      const values = SETS[set] as { clusterName: string; providers?: string[]; placement?: string };
      expect(o.clusterName).toBe(values.clusterName);
      expect(o.providers).toEqual(values.providers ?? ['aws']);
      expect(o.placement).toBe(values.placement ?? 'pin');
      expect(o.namespace).toBe(NS);
      expect(o.identity).toBe('ipp-controller-7d9f-abcde');
      expect(o.leaderElect).toBe(true);

      const webhookSvc = one<V1Service>(ms, 'Service', o.webhookService);
      expect(webhookSvc.spec!.ports![0]).toMatchObject({ port: 443, targetPort: 'webhook' });
      const ports = Object.fromEntries(containerOf(ms).ports!.map((p) => [p.name, p.containerPort]));
      expect(ports.webhook).toBe(o.webhookPort);
      expect(ports['http-metrics']).toBe(o.metricsPort);
      expect(containerOf(ms).readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'http-metrics' });
      expect(containerOf(ms).livenessProbe!.httpGet).toEqual({ path: '/healthz', port: 'http-metrics' });
      one(ms, 'MutatingWebhookConfiguration', o.webhookConfigName);

      // The Lease the Role lets it renew is the one it elects on.
      const lease = rulesOf(ms, 'Role').find((r) => r.resources!.includes('leases') && r.verbs.includes('update'))!;
      expect(lease).toMatchObject({ namespace: NS, resourceNames: [o.leaderElectionId] });

      if (o.providers.includes('simulated')) {
        expect(one(ms, 'Namespace', o.simulatedNamespace)).toBeTruthy();
        expect(
          rulesOf(ms, 'Role').filter(
            (r) => r.namespace === o.simulatedNamespace && r.resources!.includes('configmaps'),
          ),
        ).toHaveLength(1);
      } else {
        expect(ms.filter((m) => m.kind === 'Namespace')).toEqual([]);
        expect(rulesOf(ms, 'Role').filter((r) => r.resources!.includes('configmaps'))).toEqual([]);
      }
      if (o.providers.includes('gce')) {
        expect(o.gceProject).toBe('prod-project');
        // Workload Identity only: nothing in the pod points the auth library at a key file.
        expect(JSON.stringify(deploymentOf(ms))).not.toMatch(/GOOGLE_APPLICATION_CREDENTIALS|\.json/);
      }
      if (o.providers.includes('aws')) {
        expect(o.eksEndpoint).toBe(eks.endpoint);
        expect(o.eksCertificateAuthority).toBe(eks.certificateAuthority);
        expect(o.eksServiceCidr).toBe(eks.serviceCidr);
      }

      if (o.webhookCertMode === 'files') {
        // cert-manager writes the Secret; the controller reads it from the mounted directory.
        const cert = one<Manifest & { spec: { secretName: string } }>(ms, 'Certificate', o.webhookService);
        // Signed by a CA of its own (a CA issuer), not self-signed: caBundle survives its renewal.
        const issuer = one<Manifest & { spec: { ca?: { secretName: string } } }>(ms, 'Issuer', o.webhookService);
        const ca = one<Manifest & { spec: { isCA: boolean; secretName: string } }>(
          ms,
          'Certificate',
          `${o.webhookService}-ca`,
        );
        expect(ca.spec.isCA).toBe(true);
        expect(issuer.spec.ca?.secretName).toBe(ca.spec.secretName);
        expect((cert.spec as unknown as { issuerRef: { name: string } }).issuerRef.name).toBe(o.webhookService);
        const pod = deploymentOf(ms).spec!.template.spec!;
        const vol = pod.volumes!.find((v) => v.secret?.secretName === cert.spec.secretName)!;
        expect(containerOf(ms).volumeMounts).toContainEqual({
          name: vol.name,
          mountPath: o.webhookCertDir,
          readOnly: true,
        });
        expect(grants(rulesOf(ms, 'Role'), '', 'secrets', 'get')).toEqual([]);
        expect(
          grants(rulesOf(ms, 'ClusterRole'), 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', 'patch'),
        ).toEqual([]);
      } else {
        expect(o.webhookCertMode).toBe('self');
        expect(ms.filter((m) => m.kind === 'Certificate' || m.kind === 'Issuer')).toEqual([]);
        expect(grants(rulesOf(ms, 'Role'), '', 'secrets', 'update')).toMatchObject([
          { namespace: NS, resourceNames: [o.webhookSecret] },
        ]);
        expect(
          grants(rulesOf(ms, 'ClusterRole'), 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', 'patch'),
        ).toMatchObject([{ resourceNames: [o.webhookConfigName] }]);
      }
    },
  );

  it('refuses a flag the controller does not know (the check above can fail)', () => {
    expect(() => parseOptions(['--cluster-name=x', '--leader-elect-retry=3s'], {})).toThrow(/unknown option/);
  });

  it('renders the MutatingWebhookConfiguration src/webhook/configuration.ts produces for the same settings', () => {
    for (const [set, values] of Object.entries(SETS)) {
      const ms = render(values);
      const o = optionsOf(ms);
      const rendered = one<V1MutatingWebhookConfiguration>(ms, 'MutatingWebhookConfiguration');
      const svc = one<V1Service>(ms, 'Service', o.webhookService);
      const webhook = (values as { webhook?: { failurePolicy?: 'Fail' | 'Ignore'; timeoutSeconds?: number } }).webhook;
      const expected = webhookConfiguration({
        name: o.webhookConfigName,
        client: { service: { namespace: NS, name: svc.metadata!.name!, port: svc.spec!.ports![0]!.port } },
        controllerNamespace: o.namespace,
        controllerUsername: `system:serviceaccount:${NS}:${one(ms, 'ServiceAccount').metadata!.name}`,
        trustedDaemonSetNamespaces: o.trustedDaemonSetNamespaces,
        certManagerCertificate:
          o.webhookCertMode === 'files'
            ? `${NS}/${one(ms, 'Certificate', svc.metadata!.name).metadata!.name}`
            : undefined,
        failurePolicy: webhook?.failurePolicy,
        timeoutSeconds: webhook?.timeoutSeconds,
      });
      expect(rendered.webhooks, set).toEqual(expected.webhooks);
      expect(rendered.metadata!.annotations, set).toEqual(expected.metadata!.annotations);
      // caBundle is never rendered: the controller (self) or cainjector (cert-manager) owns it.
      expect(rendered.webhooks!.every((w) => w.clientConfig.caBundle === undefined)).toBe(true);
    }
  });

  it('refuses to install into a shared namespace, which admission would leave unchecked', () => {
    for (const namespace of ['default', 'kube-system', 'kube-public', 'kube-node-lease'])
      expect(() => render(SETS.simulated!, { namespace })).toThrow(/install ipp into a namespace of its own/);
  });

  it('rejects bad values with a clear error', () => {
    expect(() => render({ providers: ['simulated'] })).toThrow(/clusterName is required: the name of this cluster/);
    expect(() => render({ clusterName: 'x', providers: ['simulated'], placement: 'anywhere' })).toThrow(
      /placement must be one of the following: "pin", "bind"/,
    );
    expect(() => render({ clusterName: 'x', providers: ['azure'] })).toThrow(/providers/);
    expect(() => render({ clusterName: 'x', providers: ['gce'], gce: { keyFile: '/k.json' } })).toThrow(/keyFile/);
    expect(() =>
      render({
        clusterName: 'x',
        providers: ['gce'],
        extraEnv: [{ name: 'GOOGLE_APPLICATION_CREDENTIALS', value: '/k.json' }],
      }),
    ).toThrow(/GOOGLE_APPLICATION_CREDENTIALS|extraEnv/);
    expect(() => render({ clusterName: 'x', providers: ['aws'] })).toThrow(
      /aws\.eks\.endpoint is required with the aws provider/,
    );
    expect(() => render({ clusterName: 'x', providers: ['simulated'], replicaCount: 3 })).toThrow(/replicaCount/);
    expect(() => render({ clusterName: 'x', providers: ['simulated'], webhook: { certMode: 'files' } })).toThrow(
      /certMode/,
    );
    expect(() =>
      render({ clusterName: 'x', providers: ['simulated'], webhook: { failurePolicy: 'Sometimes' } }),
    ).toThrow(/failurePolicy/);
    expect(() =>
      render({ clusterName: 'x', providers: ['simulated'], extraEnv: [{ name: 'AWS_SECRET_ACCESS_KEY', value: 'x' }] }),
    ).toThrow(/extraEnv/);
    expect(() => render({ clusterName: 'x', providers: ['simulated'], leaderElection: { enabled: false } })).toThrow(
      /set replicas to 1/,
    );
    // The same knobs with good values render.
    expect(
      render({ clusterName: 'x', providers: ['simulated'], leaderElection: { enabled: false }, replicas: 1 }).length,
    ).toBeGreaterThan(5);
  });

  it.each(Object.keys(SETS))('carries no credentials (%s)', (set) => {
    const text = renderText(SETS[set]!);
    const ms = render(SETS[set]!);
    expect(ms.filter((m) => m.kind === 'Secret')).toEqual([]);
    expect(text).not.toMatch(
      /AKIA[0-9A-Z]{16}|aws_secret_access_key|AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|AWS_SESSION_TOKEN|PRIVATE KEY|password/i,
    );
    const env = containerOf(ms).env ?? [];
    expect(env.filter((e) => e.valueFrom?.secretKeyRef)).toEqual([]);
    expect(containerOf(ms).envFrom).toBeUndefined();
  });

  it.each(Object.keys(SETS))(
    'runs every container non-root with a read-only root filesystem and no capabilities (%s)',
    (set) => {
      const ms = render(SETS[set]!);
      const pods = ms
        .filter((m) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(m.kind!))
        .map((m) => (m as unknown as V1Deployment).spec!.template.spec!);
      expect(pods.length).toBeGreaterThan(0);
      for (const pod of pods) {
        expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
        expect(pod.hostNetwork ?? false).toBe(false);
        expect(pod.automountServiceAccountToken ?? true).toBe(true);
        const containers: V1Container[] = [...(pod.initContainers ?? []), ...pod.containers];
        for (const c of containers) {
          expect(c.securityContext, c.name).toMatchObject({
            runAsNonRoot: true,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          });
          expect(c.securityContext!.capabilities!.add ?? []).toEqual([]);
          expect(c.securityContext!.runAsUser).not.toBe(0);
          expect(c.resources?.requests, c.name).toBeTruthy();
        }
      }
    },
  );

  it('keeps the controller off ipp nodes and its replicas apart', () => {
    const spec = deploymentOf(render(SETS.defaults!)).spec!;
    expect(spec.replicas).toBe(2);
    const pod = spec.template.spec!;
    expect(pod.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'ipp.dev/class', operator: 'DoesNotExist' }] },
    ]);
    expect(
      pod.affinity!.podAntiAffinity!.preferredDuringSchedulingIgnoredDuringExecution![0]!.podAffinityTerm.labelSelector!
        .matchLabels,
    ).toEqual(spec.selector.matchLabels);
    expect(pod.topologySpreadConstraints![0]!.labelSelector!.matchLabels).toEqual(spec.selector.matchLabels);
    expect(pod.priorityClassName).toBe('system-cluster-critical');
    // A user's own required node affinity keeps ipp's term in every alternative.
    const custom = deploymentOf(
      render({
        ...SETS.defaults!,
        priorityClassName: '',
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['system'] }] }],
            },
          },
        },
      }),
    ).spec!.template.spec!;
    expect(custom.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      {
        matchExpressions: [
          { key: 'ipp.dev/class', operator: 'DoesNotExist' },
          { key: 'pool', operator: 'In', values: ['system'] },
        ],
      },
    ]);
    expect(custom.priorityClassName).toBeUndefined();
  });

  it('grants least privilege: no wildcards, no secrets or configmaps cluster-wide, writes only where the code writes', () => {
    for (const [set, values] of Object.entries(SETS)) {
      const ms = render(values);
      const cluster = rulesOf(ms, 'ClusterRole');
      const all = [...cluster, ...rulesOf(ms, 'Role')];
      for (const r of all) {
        expect(r.verbs, `${set} ${r.role}`).not.toContain('*');
        expect(r.resources, `${set} ${r.role}`).not.toContain('*');
        expect(r.apiGroups, `${set} ${r.role}`).not.toContain('*');
        expect(r.verbs, `${set} ${r.role}: escalation verbs`).not.toEqual(expect.arrayContaining(['escalate']));
      }
      expect(
        cluster.filter((r) =>
          r.resources!.some((x) => ['secrets', 'configmaps', 'leases', 'serviceaccounts/token'].includes(x)),
        ),
        set,
      ).toEqual([]);
      expect(
        cluster.filter((r) => r.apiGroups!.includes('rbac.authorization.k8s.io')),
        set,
      ).toEqual([]);
      // Delete only for stranded pinned pods (never ran; the scope policy limits it to ipp pods); drain by eviction.
      expect(grants(cluster, '', 'pods', 'delete'), set).toHaveLength(1);
      expect(grants(cluster, '', 'pods/eviction', 'create'), set).toHaveLength(1);
      expect(grants(cluster, '', 'pods', 'update'), set).toEqual([]);
      expect(grants(cluster, '', 'pods', 'create'), set).toEqual([]);
      expect(grants(cluster, 'ipp.dev', 'instanceclasses', 'patch'), set).toEqual([]);
      expect(grants(cluster, 'ipp.dev', 'instanceclasses', 'delete'), set).toEqual([]);
      expect(grants(cluster, '', 'pods', 'patch')).toHaveLength(1);
      // ipp's own pod condition (the scope policy keeps it to that one condition), and the zone of a
      // waiting pod's volumes by direct reads: get only, no list or watch of the cluster's storage.
      expect(grants(cluster, '', 'pods/status', 'patch'), set).toHaveLength(1);
      expect(grants(cluster, '', 'pods/status', 'update'), set).toEqual([]);
      for (const [group, res] of [
        ['', 'persistentvolumeclaims'],
        ['', 'persistentvolumes'],
        ['storage.k8s.io', 'storageclasses'],
      ] as const) {
        expect(grants(cluster, group, res, 'get'), `${set} ${res}`).toHaveLength(1);
        for (const verb of ['list', 'watch', 'create', 'patch', 'update', 'delete'])
          expect(grants(cluster, group, res, verb), `${set} ${res} ${verb}`).toEqual([]);
      }
      expect(grants(cluster, '', 'nodes', 'delete')).toHaveLength(1);
      expect(grants(cluster, 'events.k8s.io', 'events', 'create')).toHaveLength(1);
      const o = optionsOf(ms);
      expect(grants(cluster, '', 'pods/binding', 'create'), `${set}: pods/binding only in bind mode`).toHaveLength(
        o.placement === 'bind' ? 1 : 0,
      );
      expect(
        grants(cluster, '', 'nodes', 'create'),
        `${set}: nodes create only for the simulated kubelet`,
      ).toHaveLength(o.providers.includes('simulated') ? 1 : 0);
      // Named objects are limited by name for every verb but create.
      for (const r of all.filter((x) =>
        x.resources!.some((res) => ['secrets', 'leases', 'mutatingwebhookconfigurations'].includes(res)),
      )) {
        if (r.verbs.includes('create')) expect(r.verbs, `${set} ${r.role}`).toEqual(['create']);
        else expect(r.resourceNames?.length, `${set} ${r.role} ${r.resources}`).toBe(1);
      }
      // Every binding names the chart's ServiceAccount and a role the chart renders.
      const sa = one<V1ServiceAccount>(ms, 'ServiceAccount');
      for (const b of ms.filter((m) => m.kind === 'ClusterRoleBinding' || m.kind === 'RoleBinding') as (Manifest & {
        subjects: object[];
        roleRef: { kind: string; name: string };
      })[]) {
        expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata!.name, namespace: NS }]);
        const roles = ms.filter(
          (m) =>
            m.kind === b.roleRef.kind &&
            m.metadata?.name === b.roleRef.name &&
            m.metadata?.namespace === b.metadata!.namespace,
        );
        expect(roles, `${set} ${b.kind} ${b.metadata!.namespace}/${b.metadata!.name}`).toHaveLength(1);
      }
      // The auditor reads DaemonSets only where it trusts them, and only by name (get).
      const ds = ms.filter((m) => m.kind === 'Role' && m.metadata!.name === 'ipp-daemonsets') as (Manifest & {
        rules: object[];
      })[];
      expect(ds.map((r) => r.metadata!.namespace).sort(), set).toEqual([...o.trustedDaemonSetNamespaces].sort());
      for (const r of ds) expect(r.rules).toEqual([{ apiGroups: ['apps'], resources: ['daemonsets'], verbs: ['get'] }]);
    }
  });

  it('annotates the ServiceAccount for IRSA or Workload Identity, and names it as the docs do', () => {
    const aws = render(SETS.aws!);
    expect(one<V1ServiceAccount>(aws, 'ServiceAccount', 'ipp').metadata!.annotations).toEqual({
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/ipp-controller',
    });
    expect(deploymentOf(aws).spec!.template.spec!.serviceAccountName).toBe('ipp');
    const gke = render({
      ...SETS.simulated!,
      serviceAccount: { annotations: { 'iam.gke.io/gcp-service-account': 'ipp@proj.iam.gserviceaccount.com' } },
    });
    expect(one<V1ServiceAccount>(gke, 'ServiceAccount').metadata!.annotations).toEqual({
      'iam.gke.io/gcp-service-account': 'ipp@proj.iam.gserviceaccount.com',
    });
    // Another release name: every object follows, and the MWC exempts that namespace.
    const other = render(SETS.simulated!, { release: 'ipp-b', namespace: 'ipp-b-system' });
    expect(one(other, 'MutatingWebhookConfiguration', 'ipp-b')).toBeTruthy();
    expect(one(other, 'Deployment', 'ipp-b-controller')).toBeTruthy();
  });

  it('scrapes the metrics Service with the ServiceMonitor only when enabled', () => {
    expect(render(SETS.defaults!).filter((m) => m.kind === 'ServiceMonitor')).toEqual([]);
    const ms = render(SETS.aws!);
    const sm = one<
      Manifest & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] } }
    >(ms, 'ServiceMonitor');
    expect(sm.metadata!.labels).toMatchObject({ release: 'kube-prometheus-stack' });
    const targets = ms.filter(
      (m) =>
        m.kind === 'Service' &&
        Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => m.metadata!.labels?.[k] === v),
    ) as V1Service[];
    expect(targets.map((s) => s.metadata!.name)).toEqual(['ipp-metrics']);
    expect(targets[0]!.spec!.ports!.map((p) => p.name)).toContain(sm.spec.endpoints[0]!.port);
  });
});
