// The chart's RBAC on the real apiserver: render charts/ipp (simulated provider), apply only its
// ServiceAccount, (Cluster)Roles and bindings, mint a token for that ServiceAccount with the
// TokenRequest API, and run the real controller with nothing but that token. A labelled pod must get
// its own node and the node must be torn down when idle (the RBAC is enough), and the same token
// must be refused what the controller has no business doing (the RBAC is not too much).
import { pinnedNodeOf } from '../../src/api/pods.ts';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  KubernetesObjectApi,
  NodeV1Api,
  RbacAuthorizationV1Api,
  V1MicroTime,
  type KubernetesObject,
  type V1ResourceAttributes,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  GATE,
  GROUP,
  NODE_CLASS_LABEL,
  POD_INSTANCE_ANNOTATION,
  QUARANTINE_ANNOTATION,
  TAINT_KEY,
  VERSION,
} from '../../src/api/names.ts';
import { ENFORCE_EVICTION_WEBHOOK } from '../../src/webhook/configuration.ts';
import { INSTANCE_AVAILABLE } from '../../src/controllers/provisioning/condition.ts';
import { mergePatch, strategicMergePatch } from '../../src/kube/patch.ts';
import { RBAC_KINDS, render, type Manifest } from '../testbed/chart.ts';
import { ensureHelm } from '../testbed/helm.ts';
import { apiserverMetric, clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import {
  createClass,
  deleteClasses,
  installCrds,
  listInstances,
  removeWebhookConfiguration,
  startIpp,
  type Ipp,
} from './support/ipp.ts';

/** HTTP status of a failed client-node call (ApiException.code), or 'ok'. */
async function statusOf(call: () => Promise<unknown>): Promise<number | 'ok'> {
  try {
    await call();
    return 'ok';
  } catch (e) {
    const code = (e as { code?: number }).code;
    if (typeof code !== 'number') throw e;
    return code;
  }
}

/** A kubeconfig for the testbed's apiserver (server and CA from the admin's) that authenticates with `token`. */
function tokenKubeconfig(admin: KubeConfig, user: string, token: string, dir: string): string {
  const cluster = admin.getCurrentCluster()!;
  const file = join(dir, 'sa.kubeconfig');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'testbed',
          cluster: {
            server: cluster.server,
            ...(cluster.caFile
              ? { 'certificate-authority': cluster.caFile }
              : { 'certificate-authority-data': cluster.caData }),
          },
        },
      ],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'testbed', user } }],
      'current-context': 'sa',
    }),
    { mode: 0o600 },
  );
  return file;
}

describe('the chart RBAC, as the only permissions of the controller', () => {
  let c: Clients;
  /** Release namespace (leases, webhook Secret) and the simulated cloud's namespace. */
  let system: string;
  let cloud: string;
  let workloads: string;
  let rbac: Manifest[];
  let sa: string;
  let username: string;
  let saKubeconfig: string;
  let asSa: KubeConfig;
  let ipp: Ipp | undefined;
  const cluster = `rbac-${suffix()}`;
  // Release ipp-<cluster>: fullname = release name, which is also the webhook configuration startIpp installs.
  const release = `ipp-${cluster}`;
  const cls = `rbac-${suffix()}`;
  let scope: Manifest[];

  beforeAll(async () => {
    ensureHelm();
    c = clients();
    await installCrds(c);
    system = await namespace(c, 'ipp-rbac');
    cloud = await namespace(c, 'ipp-rbac-cloud');
    workloads = await namespace(c, 'rbac-work');

    const ms = render(
      { clusterName: cluster, providers: ['simulated'], simulated: { namespace: cloud } },
      { release, namespace: system },
    );
    rbac = ms.filter((m) => RBAC_KINDS.includes(m.kind!));
    // The permissions, plus the admission policy that narrows them by label.
    scope = ms.filter(
      (m) =>
        (m.kind === 'ValidatingAdmissionPolicy' || m.kind === 'ValidatingAdmissionPolicyBinding') &&
        m.metadata!.name === `${release}-controller-scope`,
    );
    const objects = KubernetesObjectApi.makeApiClient(c.kc);
    for (const m of [...rbac, ...scope]) await objects.create(m as KubernetesObject);
    sa = rbac.find((m) => m.kind === 'ServiceAccount')!.metadata!.name!;
    username = `system:serviceaccount:${system}:${sa}`;

    const token = await c.core.createNamespacedServiceAccountToken({
      name: sa,
      namespace: system,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    saKubeconfig = tokenKubeconfig(
      c.kc,
      username,
      token.status!.token!,
      mkdtempSync(join(inject('testbedDir'), 'chart-rbac-')),
    );
    asSa = new KubeConfig();
    asSa.loadFromFile(saKubeconfig);
  });

  afterAll(async () => {
    await ipp?.stop();
    await removeWebhookConfiguration(c, cluster);
    const objects = KubernetesObjectApi.makeApiClient(c.kc);
    for (const m of [...(rbac ?? []), ...(scope ?? [])]) await objects.delete(m as KubernetesObject).catch(() => {});
    await c.core.deleteNode({ name: `plain-${cluster}` }).catch(() => {});
    for (const ns of [workloads, system, cloud]) if (ns) await c.core.deleteNamespace({ name: ns }).catch(() => {});
    await deleteClasses(c, [cls]);
  });

  it("applies only the chart's RBAC objects: a ServiceAccount, roles and their bindings", () => {
    expect(new Set(rbac.map((m) => m.kind))).toEqual(new Set(RBAC_KINDS));
    const roles = rbac.filter((m) => m.kind === 'Role').map((m) => `${m.metadata!.namespace}/${m.metadata!.name}`);
    expect(roles.sort()).toEqual(
      [`${cloud}/${release}-simulated`, `${system}/${release}`, `kube-system/${release}-daemonsets`].sort(),
    );
  });

  it('authenticates the minted token as the ServiceAccount', async () => {
    const review = await asSa.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
      body: { spec: { resourceAttributes: { verb: 'patch', resource: 'pods', namespace: workloads } } },
    });
    expect(review.status!.allowed).toBe(true);
  });

  it('is enough to give a labelled pod its own node and to tear the node down when idle', async () => {
    await createClass(c, cls, { instanceTypes: ['sim.small'], idleTimeout: '3s', simulated: { bootDelay: '1s' } });
    ipp = await startIpp({
      clients: c,
      clusterName: cluster,
      namespace: system,
      kubeconfig: saKubeconfig,
      controllerUsername: username,
      leaderElect: true,
      identity: 'rbac-a',
      // The chart's names: the Lease and the webhook Secret its Role allows, the simulated namespace its other Role covers.
      extraArgs: [
        `--leader-election-id=${release}-controller`,
        `--webhook-secret=${release}-webhook-tls`,
        `--simulated-namespace=${cloud}`,
      ],
    });

    await c.core.createNamespacedPod({
      namespace: workloads,
      body: {
        // As `kubectl apply` makes it: the claim must add its annotation beside last-applied, never
        // replace the map (the scope policy refuses a claim that drops another annotation).
        metadata: {
          name: 'relay',
          labels: { 'ipp-class': cls },
          annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"kind":"Pod"}' },
        },
        spec: { containers: [{ name: 'postfix', image: 'postfix' }] },
      },
    });
    const pod = await eventually(
      'the labelled pod running on a node of its own',
      async () => {
        const p = await c.core.readNamespacedPod({ name: 'relay', namespace: workloads });
        expect(p.status?.phase, JSON.stringify(p.status?.conditions)).toBe('Running');
        return p;
      },
      90_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${ipp!.logs()}`);
    });
    expect(pod.spec!.schedulingGates ?? []).not.toContainEqual({ name: GATE });
    const node = await c.core.readNode({ name: pod.spec!.nodeName! });
    expect(node.metadata!.labels![NODE_CLASS_LABEL]).toBe(cls);
    // Pinned by name (DESIGN step 5): the scheduler may consider that node only.
    expect(pinnedNodeOf(pod)).toBe(node.metadata!.name);
    const others = (await c.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node.metadata!.name}` }))
      .items;
    expect(others.map((p) => `${p.metadata!.namespace}/${p.metadata!.name}`)).toEqual([`${workloads}/relay`]);

    // It held the chart's Lease, kept its CA in the chart's Secret and wrote caBundle into the configuration.
    const lease = await c.kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: `${release}-controller`, namespace: system });
    expect(lease.spec!.holderIdentity).toBe('rbac-a');
    await c.core.readNamespacedSecret({ name: `${release}-webhook-tls`, namespace: system });
    // Events (events.k8s.io) about the pod were written with the ServiceAccount's token.
    await eventually('a Provisioning Event for the pod', async () => {
      const events = await c.kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: workloads });
      expect(events.items.filter((e) => e.regarding?.name === 'relay').map((e) => e.reason)).toContain('Provisioning');
    });

    await c.core.deleteNamespacedPod({ name: 'relay', namespace: workloads, gracePeriodSeconds: 0 });
    await eventually(
      'the Instance, its node and its simulated instance gone after idleTimeout',
      async () => {
        expect((await listInstances(c, cls)).map((i) => i.metadata.name)).toEqual([]);
        expect(
          (await c.core.listNode({ labelSelector: `${NODE_CLASS_LABEL}=${cls}` })).items.map((n) => n.metadata!.name),
        ).toEqual([]);
        expect(
          (await c.core.listNamespacedConfigMap({ namespace: cloud, labelSelector: `ipp.dev/cluster=${cluster}` }))
            .items,
        ).toEqual([]);
      },
      90_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${ipp!.logs()}`);
    });

    // Not one request of the whole run was refused.
    // Not RBAC's doing: Events about an earlier file's pods in a namespace being deleted are refused
    // by the apiserver with a 403 too. Any other refusal is a missing permission.
    const refusals = readFileSync(ipp.logFile, 'utf8')
      .split('\n')
      .filter((l) => /forbidden|HTTP 403/i.test(l) && !l.includes('because it is being terminated'));
    expect(refusals).toEqual([]);
  });

  it("drains a running pod through the chart's eviction webhook when its Instance is deleted", async () => {
    // The token's evictions pass enforce.evictions.ipp.dev (the chart names the ServiceAccount as the
    // controller): if the drain of an ipp node did not, a deleted Instance would never let its machine go.
    const evictionsAllowed = () =>
      apiserverMetric(c, 'apiserver_admission_webhook_request_total', {
        name: ENFORCE_EVICTION_WEBHOOK,
        rejected: 'false',
      });
    const before = await evictionsAllowed();
    await c.core.createNamespacedPod({
      namespace: workloads,
      body: {
        metadata: { name: 'relay-2', labels: { 'ipp-class': cls } },
        spec: { containers: [{ name: 'postfix', image: 'postfix' }] },
      },
    });
    const pod = await eventually(
      'relay-2 running on a node of its own',
      async () => {
        const p = await c.core.readNamespacedPod({ name: 'relay-2', namespace: workloads });
        expect(p.status?.phase).toBe('Running');
        return p;
      },
      90_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${ipp!.logs()}`);
    });
    const instance = pod.metadata!.annotations![POD_INSTANCE_ANNOTATION]!;
    const nodeName = pod.spec!.nodeName!;
    await c.custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instances', name: instance });
    await eventually(
      'relay-2 evicted, then its node and Instance gone',
      async () => {
        expect(await statusOf(() => c.core.readNamespacedPod({ name: 'relay-2', namespace: workloads }))).toBe(404);
        expect(await statusOf(() => c.core.readNode({ name: nodeName }))).toBe(404);
        expect((await listInstances(c, cls)).map((i) => i.metadata.name)).not.toContain(instance);
      },
      90_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${ipp!.logs()}`);
    });
    expect(await evictionsAllowed()).toBeGreaterThan(before);
    expect(ipp!.logs()).not.toMatch(/eviction failed/);
  });

  it('refuses what the controller must not do (SelfSubjectAccessReview)', async () => {
    const authz = asSa.makeApiClient(AuthorizationV1Api);
    const can = async (a: V1ResourceAttributes) =>
      (await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: a } } })).status!.allowed;
    const denied: V1ResourceAttributes[] = [
      { verb: 'list', resource: 'secrets' },
      { verb: 'get', resource: 'secrets', namespace: 'kube-system', name: 'anything' },
      { verb: 'get', resource: 'secrets', namespace: system, name: 'another-secret' },
      { verb: 'update', resource: 'secrets', namespace: system, name: 'another-secret' },
      { verb: 'list', resource: 'secrets', namespace: system },
      // pods delete and pods/eviction create are granted (stranded pods, drain): the scope policy
      // keeps deletion to ipp pods (tested below).
      { verb: 'create', resource: 'pods', namespace: workloads },
      { verb: 'update', resource: 'pods', namespace: workloads },
      { verb: 'create', resource: 'pods', subresource: 'exec', namespace: workloads },
      { verb: 'create', resource: 'pods', subresource: 'binding', namespace: workloads }, // pin mode: kube-scheduler binds
      { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: system, name: sa },
      { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' },
      { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
      {
        verb: 'patch',
        group: 'admissionregistration.k8s.io',
        resource: 'mutatingwebhookconfigurations',
        name: 'someone-elses',
      },
      {
        verb: 'delete',
        group: 'admissionregistration.k8s.io',
        resource: 'mutatingwebhookconfigurations',
        name: release,
      },
      { verb: 'create', group: 'admissionregistration.k8s.io', resource: 'validatingwebhookconfigurations' },
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: system, name: 'another-lease' },
      {
        verb: 'update',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: 'kube-system',
        name: 'kube-scheduler',
      },
      { verb: 'patch', group: GROUP, resource: 'instanceclasses' },
      { verb: 'delete', group: GROUP, resource: 'instanceclasses' },
      { verb: 'patch', group: 'node.k8s.io', resource: 'runtimeclasses' },
      { verb: 'list', resource: 'configmaps', namespace: system },
      { verb: 'list', resource: 'configmaps', namespace: 'kube-system' },
      { verb: 'update', resource: 'nodes' },
      { verb: 'update', resource: 'pods', subresource: 'status', namespace: workloads },
      // The zone of a waiting pod's volumes is read object by object: no list, no watch, no write.
      { verb: 'list', resource: 'persistentvolumeclaims', namespace: workloads },
      { verb: 'watch', resource: 'persistentvolumes' },
      { verb: 'patch', resource: 'persistentvolumes' },
      { verb: 'list', group: 'storage.k8s.io', resource: 'storageclasses' },
      { verb: 'create', resource: 'namespaces' },
      { verb: 'impersonate', resource: 'users' },
    ];
    const wrongly: V1ResourceAttributes[] = [];
    for (const a of denied) if (await can(a)) wrongly.push(a);
    expect(wrongly).toEqual([]);

    // The same reviews do say yes where the chart grants: the negative answers above are meaningful.
    const allowed: V1ResourceAttributes[] = [
      { verb: 'patch', resource: 'pods', namespace: workloads },
      { verb: 'patch', resource: 'pods', subresource: 'status', namespace: workloads },
      { verb: 'get', resource: 'persistentvolumeclaims', namespace: workloads },
      { verb: 'get', resource: 'persistentvolumes' },
      { verb: 'get', group: 'storage.k8s.io', resource: 'storageclasses' },
      { verb: 'delete', resource: 'nodes' },
      {
        verb: 'update',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: system,
        name: `${release}-controller`,
      },
      { verb: 'update', resource: 'secrets', namespace: system, name: `${release}-webhook-tls` },
      {
        verb: 'patch',
        group: 'admissionregistration.k8s.io',
        resource: 'mutatingwebhookconfigurations',
        name: release,
      },
      { verb: 'patch', group: GROUP, resource: 'instanceclasses', subresource: 'status' },
      { verb: 'create', group: 'node.k8s.io', resource: 'runtimeclasses' },
      { verb: 'delete', group: 'node.k8s.io', resource: 'runtimeclasses' },
      { verb: 'create', resource: 'configmaps', namespace: cloud },
      { verb: 'create', group: 'events.k8s.io', resource: 'events', namespace: workloads },
    ];
    const missing: V1ResourceAttributes[] = [];
    for (const a of allowed) if (!(await can(a))) missing.push(a);
    expect(missing).toEqual([]);
  });

  it('gets 403 from the apiserver for direct calls outside its role', async () => {
    const core = asSa.makeApiClient(CoreV1Api);
    const rbacApi = asSa.makeApiClient(RbacAuthorizationV1Api);
    const custom = asSa.makeApiClient(CustomObjectsApi);
    await c.core.createNamespacedPod({
      namespace: workloads,
      body: { metadata: { name: 'victim' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
    });
    await c.core.createNamespacedSecret({
      namespace: system,
      body: { metadata: { name: 'not-ipps' }, stringData: { k: 'v' } },
    });

    expect(await statusOf(() => core.listSecretForAllNamespaces())).toBe(403);
    expect(await statusOf(() => core.readNamespacedSecret({ name: 'not-ipps', namespace: system }))).toBe(403);
    // RBAC grants pod deletion (stranded pinned pods); the scope policy keeps it to ipp pods.
    expect(await statusOf(() => core.deleteNamespacedPod({ name: 'victim', namespace: workloads }))).toBe(403);
    expect(
      await statusOf(() =>
        rbacApi.createClusterRoleBinding({
          body: {
            metadata: { name: `steal-${cluster}` },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
            subjects: [{ kind: 'ServiceAccount', name: sa, namespace: system }],
          },
        }),
      ),
    ).toBe(403);
    expect(
      await statusOf(() =>
        custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instanceclasses', name: cls }),
      ),
    ).toBe(403);
    expect(await statusOf(() => core.listNamespacedConfigMap({ namespace: 'kube-system' }))).toBe(403);
    // Still alive and untouched.
    await c.core.readNamespacedPod({ name: 'victim', namespace: workloads });
    expect(
      await statusOf(() =>
        c.kc.makeApiClient(RbacAuthorizationV1Api).readClusterRoleBinding({ name: `steal-${cluster}` }),
      ),
    ).toBe(404);
  });

  it('is kept to ipp pods and ipp nodes by the ValidatingAdmissionPolicy, which RBAC alone cannot do', async () => {
    expect(scope.map((m) => m.kind).sort()).toEqual(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
    const core = asSa.makeApiClient(CoreV1Api);
    await c.core.createNamespacedPod({
      namespace: workloads,
      body: { metadata: { name: 'plain' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
    });
    await c.core.createNode({ body: { metadata: { name: `plain-${cluster}` } } });
    const label = [{ op: 'add', path: '/metadata/labels', value: { touched: 'yes' } }];
    // RBAC allows both calls; the policy refuses them (it may take a moment to be loaded).
    await eventually('the policy to refuse patching a pod without ipp-class', async () => {
      await expect(core.patchNamespacedPod({ name: 'plain', namespace: workloads, body: label })).rejects.toMatchObject(
        { body: expect.stringContaining('may only change or delete pods labelled ipp-class') },
      );
    });
    await expect(
      core.patchNamespacedPodStatus(
        {
          name: 'plain',
          namespace: workloads,
          body: { status: { conditions: [{ type: INSTANCE_AVAILABLE, status: 'False', reason: 'X' }] } },
        },
        strategicMergePatch,
      ),
    ).rejects.toMatchObject({ body: expect.stringContaining('may only change or delete pods labelled ipp-class') });
    await expect(core.deleteNode({ name: `plain-${cluster}` })).rejects.toMatchObject({
      body: expect.stringContaining('may only change or delete nodes labelled ipp.dev/class'),
    });
    await c.core.readNode({ name: `plain-${cluster}` });
    expect(
      (await c.core.readNamespacedPod({ name: 'plain', namespace: workloads })).metadata?.labels?.touched,
    ).toBeUndefined();
  });

  it('may not turn its token against the cluster: its webhook configuration, pods beyond the pin, Events about anything', async () => {
    const admission = asSa.makeApiClient(AdmissionregistrationV1Api);
    const core = asSa.makeApiClient(CoreV1Api);
    const cfg = await c.kc
      .makeApiClient(AdmissionregistrationV1Api)
      .readMutatingWebhookConfiguration({ name: release });
    // What the controller does: caBundle (here: the same value again, so the running webhook keeps working).
    await admission.patchMutatingWebhookConfiguration({
      name: release,
      body: [
        { op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: cfg.webhooks![0]!.clientConfig.caBundle },
      ],
    });
    const refused = async (p: Promise<unknown>, message: string) =>
      expect(p).rejects.toMatchObject({ code: 403, body: expect.stringContaining(message) });
    const webhookOnly = 'may only change caBundle in its webhook configuration';
    await refused(
      admission.patchMutatingWebhookConfiguration({
        name: release,
        body: [{ op: 'replace', path: '/webhooks/0/clientConfig/url', value: 'https://attacker.example/mutate' }],
      }),
      webhookOnly,
    );
    await refused(
      admission.patchMutatingWebhookConfiguration({
        name: release,
        body: [{ op: 'replace', path: '/webhooks/0/failurePolicy', value: 'Ignore' }],
      }),
      webhookOnly,
    );
    await refused(
      admission.patchMutatingWebhookConfiguration({
        name: release,
        body: [{ op: 'add', path: '/webhooks/0/objectSelector', value: { matchLabels: { never: 'x' } } }],
      }),
      webhookOnly,
    );

    // An ipp pod, gated by the webhook: the token may lift the gate and pin it, nothing else.
    await c.core.createNamespacedPod({
      namespace: workloads,
      body: {
        metadata: { name: 'target', labels: { 'ipp-class': cls } },
        spec: { containers: [{ name: 'c', image: 'postfix' }] },
      },
    });
    try {
      const pinOnly = 'may change only the pin of a pod';
      const patch = (body: object[]) => core.patchNamespacedPod({ name: 'target', namespace: workloads, body });
      await refused(patch([{ op: 'replace', path: '/spec/containers/0/image', value: 'attacker/miner' }]), pinOnly);
      await refused(patch([{ op: 'add', path: '/metadata/labels/team', value: 'x' }]), pinOnly);
      await refused(patch([{ op: 'add', path: '/spec/tolerations/-', value: { operator: 'Exists' } }]), pinOnly);
      await refused(patch([{ op: 'add', path: '/metadata/annotations', value: { note: 'x' } }]), pinOnly);
      await refused(
        patch([{ op: 'add', path: '/spec/nodeSelector', value: { 'kubernetes.io/hostname': 'shared-node' } }]),
        'may only lift the gate ipp.dev/provision and pin the pod to one node',
      );

      // Its status: ipp's own condition, nothing else (the status subresource reaches labels too).
      const status = (body: object) =>
        core.patchNamespacedPodStatus({ name: 'target', namespace: workloads, body }, strategicMergePatch);
      const ours = { type: INSTANCE_AVAILABLE, status: 'False', reason: 'NoZoneFits', message: 'test' };
      await status({ status: { conditions: [ours] } });
      const conditionOnly = 'may only set its own condition ipp.dev/InstanceAvailable';
      await refused(status({ status: { conditions: [{ type: 'Ready', status: 'True' }] } }), conditionOnly);
      await refused(
        status({ status: { conditions: [{ type: 'PodScheduled', status: 'True', reason: 'x' }] } }),
        conditionOnly,
      );
      await refused(status({ status: { phase: 'Failed' } }), conditionOnly);
      await refused(status({ status: { podIP: '10.0.0.9', podIPs: [{ ip: '10.0.0.9' }] } }), conditionOnly);
      await refused(status({ metadata: { labels: { team: 'x' } } }), pinOnly);
      await refused(status({ metadata: { annotations: { note: 'x' } } }), pinOnly);
      const after = await c.core.readNamespacedPod({ name: 'target', namespace: workloads });
      // Ours was written (the running controller may already have set it back to True: the pod has its
      // instance); none of the refused ones landed.
      expect(after.status?.conditions?.map((x) => x.type)).toContain(INSTANCE_AVAILABLE);
      expect(after.status?.conditions?.map((x) => x.type)).not.toContain('Ready');
      expect(after.status?.phase).toBe('Pending');
    } finally {
      await c.core.deleteNamespacedPod({ name: 'target', namespace: workloads, gracePeriodSeconds: 0 });
      // Its Instance (if one was launched meanwhile) goes after idleTimeout; leave nothing behind.
      await eventually(
        'no Instance of the class left',
        async () => expect(await listInstances(c, cls)).toEqual([]),
        90_000,
      );
    }

    const event = (kind: string, name: string) => ({
      metadata: { generateName: 'ipp-' },
      eventTime: new V1MicroTime(Date.now()),
      reportingController: 'ipp.dev/controller',
      reportingInstance: 'rbac-a',
      action: 'Audit',
      reason: 'Forged',
      type: 'Warning',
      regarding: { apiVersion: 'v1', kind, name, namespace: system },
      note: 'forged',
    });
    const events = asSa.makeApiClient(EventsV1Api);
    await refused(
      events.createNamespacedEvent({ namespace: system, body: event('Secret', 'not-ipps') as never }),
      'may only report Events about pods, nodes, Instances and InstanceClasses',
    );
    await events.createNamespacedEvent({ namespace: system, body: event('Pod', 'anything') as never });
  });

  it('may only cordon and quarantine an ipp node, never strip its taints or relabel it', async () => {
    const name = `ipp-rbac-node-${cluster}`;
    await c.core.createNode({
      body: {
        metadata: { name, labels: { [NODE_CLASS_LABEL]: cls } },
        spec: { taints: [{ key: TAINT_KEY, value: cls, effect: 'NoSchedule' }] },
      },
    });
    try {
      const core = asSa.makeApiClient(CoreV1Api);
      const refused = (p: Promise<unknown>) =>
        expect(p).rejects.toMatchObject({ code: 403, body: expect.stringContaining('may only cordon a node') });
      // What the controller does: cordon, quarantine (annotation and cordon), release.
      await core.patchNode({ name, body: [{ op: 'add', path: '/spec/unschedulable', value: true }] });
      await core.patchNode(
        { name, body: { metadata: { annotations: { [QUARANTINE_ANNOTATION]: 'labels tampered' } } } },
        mergePatch,
      );
      await core.patchNode(
        { name, body: { metadata: { annotations: { [QUARANTINE_ANNOTATION]: null } } } },
        mergePatch,
      );
      // What a stolen token would: open the node to ordinary pods, or make it another class's.
      await refused(core.patchNode({ name, body: [{ op: 'remove', path: '/spec/taints' }] }));
      await refused(
        core.patchNode({ name, body: { metadata: { labels: { [NODE_CLASS_LABEL]: 'other' } } } }, mergePatch),
      );
      await refused(core.patchNode({ name, body: { metadata: { annotations: { note: 'x' } } } }, mergePatch));
      const after = await c.core.readNode({ name });
      // (kube-controller-manager adds its own unschedulable taint to the cordoned node.)
      expect(after.spec?.taints).toContainEqual({ key: TAINT_KEY, value: cls, effect: 'NoSchedule' });
      expect(after.metadata?.labels?.[NODE_CLASS_LABEL]).toBe(cls);
      expect(after.spec?.unschedulable).toBe(true);
    } finally {
      await c.core.deleteNode({ name }).catch(() => {});
    }
  });

  it('may only write the RuntimeClasses ipp-<class> it made, never anyone else’s', async () => {
    const admin = c.kc.makeApiClient(NodeV1Api);
    const node = asSa.makeApiClient(NodeV1Api);
    const sandbox = `gvisor-${cluster}`;
    // Not the class of the tests above: the controller they ran made ipp-<cls> already.
    const own = `ipp-rc-${cluster}`;
    await admin.createRuntimeClass({ body: { metadata: { name: sandbox }, handler: 'runsc' } });
    // (The apiserver escapes the message's "<class>" in JSON.)
    const refused = (p: Promise<unknown>) =>
      expect(p).rejects.toMatchObject({
        code: 403,
        body: expect.stringContaining('it made (owned by their InstanceClass)'),
      });
    // The class's real UID: kube-controller-manager's garbage collector deletes a dependent whose owner
    // UID does not resolve, and did so between this test's read and its write.
    const { metadata } = (await c.custom.getClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'instanceclasses',
      name: cls,
    })) as { metadata: { uid: string } };
    const owner = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'InstanceClass',
      name: cls,
      uid: metadata.uid,
      controller: true,
    };
    try {
      // Another sandbox's RuntimeClass may not be deleted (to be created again with another handler),
      // nor one of another name created, nor an ipp-* one without its class.
      await refused(node.deleteRuntimeClass({ name: sandbox }));
      await refused(
        node.createRuntimeClass({
          body: { metadata: { name: `x-${sandbox}`, ownerReferences: [owner] }, handler: 'runc' },
        }),
      );
      await refused(node.createRuntimeClass({ body: { metadata: { name: own }, handler: 'runc' } }));
      // Its own, as the RuntimeClass controller writes it.
      await node.createRuntimeClass({
        body: { metadata: { name: own, ownerReferences: [owner] }, handler: 'runc' },
      });
      const made = await admin.readRuntimeClass({ name: own });
      await refused(
        node.replaceRuntimeClass({ name: own, body: { ...made, metadata: { ...made.metadata, ownerReferences: [] } } }),
      );
      await node.deleteRuntimeClass({ name: own });
      expect((await admin.readRuntimeClass({ name: sandbox })).handler).toBe('runsc');
    } finally {
      await admin.deleteRuntimeClass({ name: sandbox }).catch(() => {});
      await admin.deleteRuntimeClass({ name: own }).catch(() => {});
    }
  });
});
