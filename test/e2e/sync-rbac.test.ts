// The controller must never act on a cache that has not listed. Run the real controller with
// nothing but the chart's ServiceAccount, provision one pod, stop the controller; then, for each of
// nodes, Instances and pods, take LIST/WATCH on it away from the ServiceAccount and start the
// controller again. An empty node cache would expire the Instance as never registered, an empty
// Instance cache would collect the cloud instance as leaked, an empty pod cache would tear the node
// down as idle (the class's timeouts are seconds, so each of those would happen at once). Instead the
// replica stays unready, /readyz names the cache and the 403, nothing is deleted, and once the
// permission is back it becomes ready and leaves the running pod where it is.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  KubeConfig,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  type KubernetesObject,
  type V1PolicyRule,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Instance } from '../../src/api/types.ts';
import { RBAC_KINDS, render, type Manifest } from '../testbed/chart.ts';
import { ensureHelm } from '../testbed/helm.ts';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import {
  createClass,
  deleteClasses,
  installCrds,
  listInstances,
  removeWebhookConfiguration,
  startIpp,
  type Ipp,
} from './support/ipp.ts';

function tokenKubeconfig(admin: KubeConfig, user: string, token: string, dir: string): string {
  const cluster = admin.getCurrentCluster()!;
  const file = join(dir, 'sa.kubeconfig');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'testbed', cluster: { server: cluster.server, 'certificate-authority': cluster.caFile } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'testbed', user } }],
      'current-context': 'sa',
    }),
    { mode: 0o600 },
  );
  return file;
}

async function readyz(ipp: Ipp): Promise<{ status: number; body: string }> {
  const r = await fetch(`${ipp.metricsUrl}/readyz`);
  return { status: r.status, body: await r.text() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a controller whose ServiceAccount cannot list a resource', () => {
  let c: Clients;
  let system: string;
  let cloud: string;
  let workloads: string;
  let objects: Manifest[];
  let saKubeconfig: string;
  let clusterRole: string;
  let granted: V1PolicyRule[];
  let ipp: Ipp | undefined;
  const cluster = `sync-${suffix()}`;
  const release = `ipp-${cluster}`;
  const cls = `sync-${suffix()}`;
  const rbac = () => c.kc.makeApiClient(RbacAuthorizationV1Api);

  /** What must survive: the pod on its node, its Instance Ready, the node and the cloud instance. */
  async function world() {
    const pod = await c.core.readNamespacedPod({ name: 'relay', namespace: workloads });
    const [inst] = await listInstances(c, cls);
    const node = pod.spec?.nodeName
      ? await c.core.readNode({ name: pod.spec.nodeName }).catch(() => undefined)
      : undefined;
    const id = inst?.status?.providerID?.split('/').pop();
    const vm = id
      ? await c.core.readNamespacedConfigMap({ name: id, namespace: cloud }).catch(() => undefined)
      : undefined;
    return {
      pod: `${pod.status?.phase} on ${pod.spec?.nodeName}`,
      instance: inst
        ? `${inst.metadata.name} ${inst.status?.phase} ${inst.metadata.deletionTimestamp ? 'deleting' : ''}`
        : 'none',
      node: node ? `${node.metadata!.name}${node.spec?.unschedulable ? ' cordoned' : ''}` : 'none',
      cloud: vm ? vm.metadata!.name : 'none',
    };
  }
  let before: Awaited<ReturnType<typeof world>>;

  const startAsSa = (identity: string, waitReady: boolean) =>
    startIpp({
      clients: c,
      clusterName: cluster,
      namespace: system,
      kubeconfig: saKubeconfig,
      leaderElect: true,
      identity,
      waitReady,
      extraArgs: [
        `--leader-election-id=${release}-controller`,
        `--webhook-secret=${release}-webhook-tls`,
        `--simulated-namespace=${cloud}`,
      ],
    });

  beforeAll(async () => {
    ensureHelm();
    c = clients();
    await installCrds(c);
    system = await namespace(c, 'ipp-sync');
    cloud = await namespace(c, 'ipp-sync-cloud');
    workloads = await namespace(c, 'sync-work');
    const ms = render(
      { clusterName: cluster, providers: ['simulated'], simulated: { namespace: cloud } },
      { release, namespace: system },
    );
    objects = ms.filter(
      (m) =>
        RBAC_KINDS.includes(m.kind!) ||
        m.kind === 'ValidatingAdmissionPolicy' ||
        m.kind === 'ValidatingAdmissionPolicyBinding',
    );
    const api = KubernetesObjectApi.makeApiClient(c.kc);
    for (const m of objects) await api.create(m as KubernetesObject);
    clusterRole = objects.find((m) => m.kind === 'ClusterRole')!.metadata!.name!;
    granted = (await rbac().readClusterRole({ name: clusterRole })).rules ?? [];
    const sa = objects.find((m) => m.kind === 'ServiceAccount')!.metadata!.name!;
    const token = await c.core.createNamespacedServiceAccountToken({
      name: sa,
      namespace: system,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    saKubeconfig = tokenKubeconfig(
      c.kc,
      `system:serviceaccount:${system}:${sa}`,
      token.status!.token!,
      mkdtempSync(join(inject('testbedDir'), 'sync-rbac-')),
    );

    // Timeouts of seconds: a controller acting on an empty cache would destroy at once.
    await createClass(c, cls, {
      instanceTypes: ['sim.small'],
      idleTimeout: '3s',
      registrationTimeout: '3s',
      simulated: { bootDelay: '1s' },
    });
    ipp = await startAsSa('sync-a', true);
    await c.core.createNamespacedPod({
      namespace: workloads,
      body: {
        metadata: { name: 'relay', labels: { 'ipp-class': cls } },
        spec: { containers: [{ name: 'postfix', image: 'postfix' }] },
      },
    });
    before = await eventually(
      'the pod running on its own node',
      async () => {
        const w = await world();
        expect(w.pod).toMatch(/^Running on sim-/);
        expect(w.instance).toMatch(/ Ready $/);
        return w;
      },
      90_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${ipp!.logs()}`);
    });
    await ipp.stop();
    ipp = undefined;
  });

  afterAll(async () => {
    await ipp?.stop();
    await removeWebhookConfiguration(c, cluster);
    await c.core.deleteNamespace({ name: workloads }).catch(() => {});
    // No controller runs any more: release the Instances and remove the simulated nodes by hand.
    for (const n of (await c.core.listNode({ labelSelector: `ipp.dev/class=${cls}` }).catch(() => ({ items: [] })))
      .items)
      await c.core.deleteNode({ name: n.metadata!.name! }).catch(() => {});
    const api = KubernetesObjectApi.makeApiClient(c.kc);
    for (const m of objects ?? []) await api.delete(m as KubernetesObject).catch(() => {});
    for (const i of (await listInstances(c, cls).catch(() => [])) as Instance[])
      await c.custom
        .patchClusterCustomObject({
          group: 'ipp.dev',
          version: 'v1alpha1',
          plural: 'instances',
          name: i.metadata.name!,
          body: [{ op: 'remove', path: '/metadata/finalizers' }],
        })
        .catch(() => {});
    for (const ns of [system, cloud]) if (ns) await c.core.deleteNamespace({ name: ns }).catch(() => {});
    await deleteClasses(c, [cls]);
  });

  for (const [resource, label] of [
    ['nodes', 'nodes'],
    ['instances', 'instances'],
    ['pods', 'pods'],
  ] as const) {
    it(`without LIST on ${label}: not ready, says why, deletes nothing; ready and still nothing deleted once allowed`, async () => {
      const without = granted.map((r) =>
        r.resources?.includes(resource) ? { ...r, verbs: r.verbs.filter((v) => v !== 'list' && v !== 'watch') } : r,
      );
      await rbac().patchClusterRole({
        name: clusterRole,
        body: [{ op: 'replace', path: '/rules', value: without }],
      });
      try {
        ipp = await startAsSa(`sync-${resource}`, false);
        // Longer than every timeout of the class and than the GC's interval and grace period.
        const until = Date.now() + 15_000;
        let last = { status: 0, body: '' };
        while (Date.now() < until) {
          last = await readyz(ipp).catch(() => ({ status: 0, body: 'not listening yet' }));
          expect(last.status, `readyz while ${resource} cannot be listed: ${last.body}`).not.toBe(200);
          await sleep(500);
        }
        expect(last.status).toBe(503);
        expect(last.body).toMatch(
          new RegExp(`${resource} has not listed yet \\(last error: listing ${resource}: HTTP 403 Forbidden`),
        );
        expect(await world(), 'nothing deleted while the cache could not list').toEqual(before);
      } finally {
        await rbac().patchClusterRole({ name: clusterRole, body: [{ op: 'replace', path: '/rules', value: granted }] });
      }
      await eventually(
        'ready once the permission is back',
        async () => expect((await readyz(ipp!)).status).toBe(200),
        60_000,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${ipp!.logs()}`);
      });
      await sleep(8_000);
      expect(await world(), 'converged: the running pod keeps its node').toEqual(before);
      await ipp.stop();
      ipp = undefined;
    });
  }
});
