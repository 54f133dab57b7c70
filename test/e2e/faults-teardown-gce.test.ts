// A teardown wave on GCE (issue "Faults", problem 6): each Instance torn down looks for copies of its
// VM with one aggregatedList filtered by its own label, never by listing every VM of the cluster
// (which, per Instance, would starve launches in a large wave). Garbage collection, which does list
// the cluster, runs every ten minutes here, so every cluster-wide list in the wave is a teardown's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGceFake, type FakeGce } from '../testbed/gce/index.ts';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import {
  createClass,
  deleteClasses,
  getClass,
  installCrds,
  listInstances,
  removeWebhookConfiguration,
  startIpp,
  type Ipp,
} from './support/ipp.ts';

const ZONES = ['us-central1-a', 'us-central1-b'];
const WAVE = 4;

describe('a teardown wave on GCE', () => {
  let c: Clients;
  let ns: string;
  let system: string;
  let ipp: Ipp;
  let gce: FakeGce;
  const cluster = `gcewave-${suffix()}`;
  const cls = `wave-${suffix()}`;

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'gcewave');
    system = await namespace(c, 'ipp-system');
    gce = await startGceFake({ kubeconfig: c.kc });
    ipp = await startIpp({
      clients: c,
      clusterName: cluster,
      namespace: system,
      providers: ['gce'],
      extraArgs: [`--gce-project=${gce.project}`, `--gce-endpoint=${gce.endpoint}`, '--gc-interval=10m'],
      env: { GCE_METADATA_HOST: gce.metadata.host, GOOGLE_APPLICATION_CREDENTIALS: undefined },
    });
  });

  afterAll(async () => {
    await ipp?.stop();
    for (const r of [...(gce?.state.managed.values() ?? [])]) gce.state.remove(r.mig, [r.name], true);
    await new Promise((r) => setTimeout(r, 500));
    await gce?.close();
    await removeWebhookConfiguration(c, cluster);
    for (const n of (await c.core.listNode()).items)
      if (n.spec?.providerID?.startsWith(`gce://${gce.project}/`))
        await c.core.deleteNode({ name: n.metadata!.name! }).catch(() => {});
    await c.core.deleteNamespace({ name: ns }).catch(() => {});
    await c.core.deleteNamespace({ name: system }).catch(() => {});
    await deleteClasses(c, [cls]);
  });

  it(`${WAVE} Instances torn down at once: each finds its VM's copies by its own label, none lists the cluster`, async () => {
    const groups = gce.nodePool({ cluster, cls, machineType: 'n2-standard-8', zones: ZONES });
    await createClass(c, cls, { instanceTypes: ['n2-standard-8'], idleTimeout: '3s', gce: { instanceGroups: groups } });
    await eventually(`InstanceClass ${cls} Ready`, async () => {
      expect((await getClass(c, cls)).status?.conditions?.find((x) => x.type === 'Ready')?.status).toBe('True');
    });
    await c.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'wave' },
        spec: {
          replicas: WAVE,
          selector: { matchLabels: { app: 'wave' } },
          template: {
            metadata: { labels: { app: 'wave', 'ipp-class': cls } },
            spec: { containers: [{ name: 'postfix', image: 'postfix' }] },
          },
        },
      },
    });
    await eventually(
      `${WAVE} pods Running`,
      async () => {
        const pods = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=wave' })).items;
        expect(pods.filter((p) => p.status?.phase === 'Running')).toHaveLength(WAVE);
      },
      120_000,
    );
    const before = gce.server.calls.length;
    await c.apps.deleteNamespacedDeployment({ name: 'wave', namespace: ns });
    await eventually(
      'every Instance torn down and its VM removed',
      async () => {
        expect(await listInstances(c, cls)).toEqual([]);
        expect([...gce.state.vms.values()].filter((v) => v.labels['ipp-dev-class'] === cls)).toEqual([]);
      },
      90_000,
    );
    const lists = gce.server.calls.slice(before).filter((x) => x.method === 'instances.aggregatedList');
    // One filtered lookup per Instance, none of the whole cluster.
    expect(lists.map((x) => x.filter)).not.toContain(`labels.ipp-dev-cluster = "${cluster}"`);
    expect(lists.length).toBeGreaterThanOrEqual(WAVE);
    for (const x of lists) expect(x.filter).toMatch(/\(labels\.ipp-dev-instance = "wave-[0-9a-f]+-[0-9a-f]+"\)/);
    console.log(`GCE teardown wave of ${WAVE}: ${lists.length} aggregatedList calls, all filtered by Instance label`);
  });
});
