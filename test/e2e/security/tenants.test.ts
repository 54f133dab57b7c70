// A tenant with the built-in `edit` role in its own namespace, attacking the dedicated nodes:
// a DaemonSet that tolerates every taint (T1), a pod naming or bound to a node that has not
// registered yet (T4), an opted-in pod tolerating other classes' taints, at creation or later (T2).
// ipp's admission runs in this process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1DaemonSet, V1Pod } from '@kubernetes/client-node';
import { API_VERSION, CLASS_LABEL, GATE, NODE_CLASS_LABEL, TAINT_KEY } from '../../../src/api/names.ts';
import { clients, eventually, namespace, suffix, type Clients } from '../support/cluster.ts';
import { allowIsolationViolations } from '../support/invariant.ts';
import { deleteClasses, installCrds } from '../support/ipp.ts';
import { asNamespaceEditor, kwokNode, refusal, startTestAdmission, type TestAdmission } from './support.ts';

const sfx = suffix();
const cls = `sec-${sfx}`;
const ippNode = `sec-ipp-${sfx}`;
const plainNode = `sec-plain-${sfx}`;
const container = [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }];

const everywhere = (name: string): V1DaemonSet => ({
  metadata: { name },
  spec: {
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      // Tolerate every taint, and aim at this file's ipp node only (other files' nodes are not ours to touch).
      spec: { containers: container, tolerations: [{ operator: 'Exists' }], nodeSelector: { 'e2e-sec': sfx } },
    },
  },
});

describe('a namespace editor against the dedicated nodes', () => {
  let c: Clients;
  let tenant: Clients;
  let ns: string;
  let agents: string;
  let system: string;
  let admission: TestAdmission;

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'tenant');
    agents = await namespace(c, 'agents');
    system = await namespace(c, 'ipp-sec');
    allowIsolationViolations(agents); // trusted node agents, as configured below
    await c.custom.createClusterCustomObject({
      group: 'ipp.dev',
      version: 'v1alpha1',
      plural: 'instanceclasses',
      body: {
        apiVersion: API_VERSION,
        kind: 'InstanceClass',
        metadata: { name: cls },
        spec: { simulated: {}, instanceTypes: ['sim.small'], namespaces: [ns] },
      },
    });
    await kwokNode(c, ippNode, cls, { 'e2e-sec': sfx });
    await kwokNode(c, plainNode, undefined, { 'e2e-sec-plain': sfx });
    admission = await startTestAdmission(c, {
      controllerNamespace: system,
      // The platform team's own agents namespace is trusted; the tenant's is not.
      trust: { daemonSetNamespaces: ['kube-system', agents] },
    });
    tenant = await asNamespaceEditor(c, ns, `tenant-${sfx}`);
  });

  afterAll(async () => {
    await admission?.stop();
    for (const name of [ns, agents, system]) if (name) await c.core.deleteNamespace({ name }).catch(() => {});
    for (const name of [ippNode, plainNode]) await c.core.deleteNode({ name }).catch(() => {});
    await deleteClasses(c, [cls]);
  });

  it('keeps the pods of a tenant DaemonSet that tolerates everything off ipp nodes', async () => {
    await tenant.apps.createNamespacedDaemonSet({ namespace: ns, body: everywhere('sniffer') });
    const p = await eventually('the DaemonSet controller to create the pod for the ipp node', async () => {
      const [p] = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=sniffer' })).items;
      expect(p).toBeDefined();
      return p!;
    });
    const terms = p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    expect(terms?.length).toBeGreaterThan(0);
    for (const t of terms ?? [])
      expect(t.matchExpressions).toContainEqual({ key: NODE_CLASS_LABEL, operator: 'DoesNotExist' });
    await eventually('the scheduler to refuse the ipp node', async () => {
      const now = await c.core.readNamespacedPod({ namespace: ns, name: p.metadata!.name! });
      expect(now.status?.conditions?.find((x) => x.type === 'PodScheduled')?.reason).toBe('Unschedulable');
    });
    expect((await c.core.readNamespacedPod({ namespace: ns, name: p.metadata!.name! })).spec?.nodeName).toBeUndefined();
  });

  it('still lets a DaemonSet of a trusted namespace onto ipp nodes (node agents belong everywhere)', async () => {
    await c.apps.createNamespacedDaemonSet({ namespace: agents, body: everywhere('cni') });
    const p = await eventually(
      'the trusted DaemonSet pod running on the ipp node',
      async () => {
        const [p] = (await c.core.listNamespacedPod({ namespace: agents, labelSelector: 'app=cni' })).items;
        expect(p?.spec?.nodeName).toBe(ippNode);
        return p!;
      },
      90_000,
    );
    expect(JSON.stringify(p.spec?.affinity)).not.toContain('DoesNotExist');
  });

  it('refuses a pod naming a node that has not registered yet; one naming a shared node is fine', async () => {
    const named = (name: string, nodeName: string): V1Pod => ({
      metadata: { name },
      spec: { nodeName, containers: container },
    });
    expect(
      await refusal(tenant.core.createNamespacedPod({ namespace: ns, body: named('early', `future-${sfx}`) })),
    ).toContain(`node "future-${sfx}" does not exist, and a pod may name only a node that has registered`);
    await tenant.core.createNamespacedPod({ namespace: ns, body: named('direct', plainNode) });
    const sneaky = await refusal(tenant.core.createNamespacedPod({ namespace: ns, body: named('sneaky', ippNode) }));
    expect(sneaky).toContain(`node "${ippNode}" is an ipp node,`);
    // Nor which class: walking node names would map every class's nodes.
    expect(sneaky).not.toContain(cls);
  });

  it('gives an opted-in pod both class tolerations, and refuses one tolerating other classes', async () => {
    const p = await tenant.core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'relay', labels: { [CLASS_LABEL]: cls } }, spec: { containers: container } },
    });
    expect(p.spec?.schedulingGates).toEqual([{ name: GATE }]);
    expect(p.spec?.tolerations).toEqual(
      expect.arrayContaining([
        { key: TAINT_KEY, operator: 'Equal', value: cls, effect: 'NoSchedule' },
        { key: TAINT_KEY, operator: 'Equal', value: cls, effect: 'NoExecute' },
      ]),
    );
    expect(
      await refusal(
        tenant.core.createNamespacedPod({
          namespace: ns,
          body: {
            metadata: { name: 'greedy', labels: { [CLASS_LABEL]: cls } },
            spec: { containers: container, tolerations: [{ key: TAINT_KEY, operator: 'Exists' }] },
          },
        }),
      ),
    ).toContain(`which would admit it to nodes of other InstanceClasses than "${cls}"`);
    // Nor may it add one later: the apiserver calls the webhook for any change of an opted-in pod's tolerations.
    const widen = (toleration: object) =>
      tenant.core.patchNamespacedPod({
        namespace: ns,
        name: 'relay',
        body: [{ op: 'add', path: '/spec/tolerations/-', value: toleration }],
      });
    expect(await refusal(widen({ operator: 'Exists' }))).toContain(
      `would let this pod of class "${cls}" tolerate the nodes of other InstanceClasses`,
    );
    await widen({ key: 'example.com/maintenance', operator: 'Exists', effect: 'NoSchedule' });
  });

  it('refuses a binding to a node that has not registered yet (a rogue binder, not kube-scheduler)', async () => {
    // Nobody schedules it; the admin binds it as a scheduler of its own would.
    await c.core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'squat' }, spec: { schedulerName: 'nobody', containers: container } },
    });
    expect(
      await refusal(
        c.core.createNamespacedBinding({
          namespace: ns,
          body: { metadata: { name: 'squat' }, target: { kind: 'Node', name: `future-${sfx}` } },
        }),
      ),
    ).toContain(`node "future-${sfx}" does not exist;`);
    expect((await c.core.readNamespacedPod({ namespace: ns, name: 'squat' })).spec?.nodeName).toBeUndefined();
  });
});
