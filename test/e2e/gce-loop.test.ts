// The GCE loop end to end on the testbed: the real controller process (--providers=gce) with the
// real @google-cloud/compute client against the project's fake Compute Engine, the real
// apiserver/scheduler/kwok. The fake plays GKE's node pools: each VM that reaches RUNNING registers
// its Node as a GKE kubelet would (name = VM name, the pool's labels and taint, providerID
// gce://…), and nothing else: no per-Instance label. The controller authenticates only through the
// fake metadata server (GCE_METADATA_HOST), as under Workload Identity.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GATE, NODE_CLASS_LABEL } from '../../src/api/names.ts';
import type { Instance, InstanceClassSpec } from '../../src/api/types.ts';
import { startGceFake, type FakeGce } from '../testbed/gce/index.ts';
import type { FakeVm } from '../testbed/gce/state.ts';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import {
  createClass,
  deleteClasses,
  getClass,
  installCrds,
  listInstances,
  metric,
  removeWebhookConfiguration,
  startIpp,
  type Ipp,
} from './support/ipp.ts';

const ZONES = ['us-central1-a', 'us-central1-b'];

describe('the GCE loop with the real controller and the fake Compute Engine', () => {
  let c: Clients;
  let ns: string;
  let system: string;
  let ipp: Ipp;
  let gce: FakeGce;
  const cluster = `gceloop-${suffix()}`;
  const classes: string[] = [];

  const start = () =>
    startIpp({
      clients: c,
      clusterName: cluster,
      namespace: system,
      providers: ['gce'],
      extraArgs: [
        `--gce-project=${gce.project}`,
        `--gce-endpoint=${gce.endpoint}`,
        '--gc-interval=2s',
        '--gc-grace-period=5s',
      ],
      // Workload Identity: the metadata server, and no key anywhere.
      env: { GCE_METADATA_HOST: gce.metadata.host, GOOGLE_APPLICATION_CREDENTIALS: undefined },
    });

  /** A class backed by a node pool of its own (one group per zone), Ready once the controller saw it. */
  const gceClass = async (
    prefix: string,
    machineType = 'n2-standard-8',
  ): Promise<{ name: string; groups: { zone: string; name: string }[] }> => {
    const name = `${prefix}-${suffix()}`;
    const groups = gce.nodePool({ cluster, cls: name, machineType, zones: ZONES });
    const spec: InstanceClassSpec = {
      instanceTypes: [machineType],
      idleTimeout: '3s',
      gce: { instanceGroups: groups },
    };
    await createClass(c, name, spec);
    classes.push(name);
    await eventually(`InstanceClass ${name} Ready`, async () => {
      expect((await getClass(c, name)).status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({
        status: 'True',
        reason: 'Valid',
      });
    });
    return { name, groups };
  };

  const deploy = (name: string, cls: string, replicas = 1) =>
    c.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name },
        spec: {
          replicas,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name, 'ipp-class': cls } },
            spec: { containers: [{ name: 'postfix', image: 'postfix' }] },
          },
        },
      },
    });
  const scale = (name: string, replicas: number) =>
    c.apps.patchNamespacedDeploymentScale({
      name,
      namespace: ns,
      body: [{ op: 'replace', path: '/spec/replicas', value: replicas }],
    });

  const vms = (labels: Record<string, string>): FakeVm[] =>
    [...gce.state.vms.values()].filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  const providerIdOf = (v: FakeVm) => `gce://${v.project}/${v.zone}/${v.name}`;
  const creates = () => gce.server.calls.filter((x) => x.method === 'instanceGroupManagers.createInstances');
  const namesIn = (call: { body?: unknown }) =>
    ((call.body as { instances?: { name: string }[] } | undefined)?.instances ?? []).map((i) => i.name);

  const theInstance = (cls: string, check: (i: Instance) => void = () => {}) =>
    eventually(`the Instance of class ${cls}`, async () => {
      const all = await listInstances(c, cls);
      expect(all).toHaveLength(1);
      check(all[0]!);
      return all[0]!;
    });

  /** The one VM made for the Instance `name` (labelled with it once it exists). */
  const vmFor = (name: string) =>
    eventually(`a VM for Instance ${name}`, async () => {
      const found = vms({ 'ipp-dev-cluster': cluster, 'ipp-dev-instance': name });
      expect(found).toHaveLength(1);
      return found[0]!;
    });

  /** The deployment's one pod Running on `node`, placed there by the controller (gate lifted). */
  const runningOn = (app: string, node: string) =>
    eventually(
      `pod of ${app} Running on ${node}`,
      async () => {
        const pods = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items;
        expect(pods).toHaveLength(1);
        const p = pods[0]!;
        expect(p.spec!.schedulingGates ?? [], 'still gated').not.toContainEqual({ name: GATE });
        expect(p.status?.phase, JSON.stringify(p.status?.conditions)).toBe('Running');
        expect(p.spec!.nodeName).toBe(node);
        return p;
      },
      90_000,
    );

  /** Scale to zero: idle teardown deletes the Node and removes the VM from its group, then the Instance goes. */
  const tornDown = async (app: string, cls: string, vm: FakeVm) => {
    await scale(app, 0);
    await eventually(
      `class ${cls} torn down`,
      async () => {
        expect(await listInstances(c, cls)).toEqual([]);
        await expect(c.core.readNode({ name: vm.name })).rejects.toThrow();
        expect(gce.state.vms.has(`${vm.project}/${vm.zone}/${vm.name}`)).toBe(false);
        expect(gce.state.managed.has(`${vm.project}/${vm.zone}/${vm.name}`)).toBe(false);
      },
      90_000,
    );
    // Removed through its group, never behind the group's back.
    expect(
      gce.server.calls.filter(
        (x) =>
          x.method === 'instanceGroupManagers.deleteInstances' &&
          JSON.stringify(x.body).includes(`/instances/${vm.name}"`),
      ),
    ).not.toEqual([]);
    expect(gce.server.count('instances.delete')).toBe(0);
  };

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'gceloop');
    system = await namespace(c, 'ipp-system');
    gce = await startGceFake({ kubeconfig: c.kc });
    ipp = await start();
  });

  const cleanUp = async () => {
    await c.apps.deleteCollectionNamespacedDeployment({ namespace: ns });
    for (const i of (await listInstances(c)).filter((x) => classes.includes(x.spec.class)))
      await c.custom
        .deleteClusterCustomObject({
          group: 'ipp.dev',
          version: 'v1alpha1',
          plural: 'instances',
          name: i.metadata.name!,
        })
        .catch(() => {});
    await eventually(
      'every Instance of this file torn down',
      async () => {
        expect(
          (await listInstances(c)).filter((i) => classes.includes(i.spec.class)).map((i) => i.metadata.name),
        ).toEqual([]);
        expect(vms({ 'ipp-dev-cluster': cluster }).filter((v) => classes.includes(v.labels['ipp-dev-class']!))).toEqual(
          [],
        );
      },
      60_000,
    );
  };

  afterEach(async () => {
    gce.state.stockouts.clear();
    if (ipp.process.exitCode === null && ipp.process.signalCode === null) await cleanUp();
  });

  afterAll(async () => {
    await ipp?.stop();
    // VMs left by a failed test: out of their groups, and their Nodes with them.
    for (const r of [...(gce?.state.managed.values() ?? [])]) gce.state.remove(r.mig, [r.name], true);
    await new Promise((r) => setTimeout(r, 500));
    await gce?.close();
    await removeWebhookConfiguration(c, cluster);
    for (const n of (await c.core.listNode()).items)
      if (n.spec?.providerID?.startsWith(`gce://${gce.project}/`))
        await c.core.deleteNode({ name: n.metadata!.name! }).catch(() => {});
    await c.core.deleteNamespace({ name: ns }).catch(() => {});
    await c.core.deleteNamespace({ name: system }).catch(() => {});
    await deleteClasses(c, classes);
  });

  it('pod → Instance → createInstances in the second group (stockout in the first) → GKE node joins → pod pinned and Running → scale to zero → deleteInstances', async () => {
    const { name: cls, groups } = await gceClass('metal', 'c3-standard-192-metal');
    gce.state.stockouts.add(`c3-standard-192-metal/${ZONES[0]}`);
    await deploy('relay', cls);

    const inst = await theInstance(cls);
    const name = inst.metadata.name!;
    const vm = await vmFor(name);
    expect(vm.zone).toBe(ZONES[1]);
    expect(vm.createdBy!.name).toBe(groups[1]!.name);
    expect(vm.labels).toMatchObject({ 'ipp-dev-cluster': cluster, 'ipp-dev-class': cls, 'ipp-dev-instance': name });
    // Tried in the first group (stuck on the stockout, then taken out), made in the second.
    const mine = creates().filter((x) => namesIn(x).includes(vm.name));
    expect(mine.length).toBeGreaterThanOrEqual(2);
    expect(new Set(mine.map((x) => x.requestId)).size).toBe(mine.length);
    await theInstance(cls, (x) =>
      expect(x.status).toMatchObject({
        provider: 'gce',
        providerID: providerIdOf(vm),
        zone: ZONES[1],
        instanceType: 'c3-standard-192-metal',
      }),
    );

    // The node GKE's kubelet registers: the pool's labels and taint, no per-Instance label.
    const node = await eventually(`Node ${vm.name}`, () => c.core.readNode({ name: vm.name }));
    expect(node.spec!.providerID).toBe(providerIdOf(vm));
    expect(node.metadata!.labels![NODE_CLASS_LABEL]).toBe(cls);
    expect(node.spec!.taints).toContainEqual({ key: NODE_CLASS_LABEL, value: cls, effect: 'NoSchedule' });
    expect(node.spec!.taints).toContainEqual({ key: NODE_CLASS_LABEL, value: cls, effect: 'NoExecute' });
    await runningOn('relay', vm.name);
    await theInstance(cls, (x) => expect(x.status).toMatchObject({ phase: 'Ready', nodeName: vm.name }));

    // Workload Identity: the controller's token came from the metadata server (the fake accepts no
    // other), and no call was refused.
    expect(gce.metadata.tokenRequests).toBeGreaterThan(0);
    expect(gce.server.calls.filter((x) => x.outcome === 'unauthorized')).toEqual([]);

    await tornDown('relay', cls, vm);
  });

  it('capacity in the first group gone: the next pod goes straight to the second group', async () => {
    const { name: cls } = await gceClass('capacity');
    gce.state.stockouts.add(`n2-standard-8/${ZONES[0]}`);
    await deploy('capacity', cls);
    const first = await vmFor((await theInstance(cls)).metadata.name!);
    expect(first.zone).toBe(ZONES[1]);
    const before = creates().length;
    await scale('capacity', 2);
    const second = await eventually('a second VM', async () => {
      const all = vms({ 'ipp-dev-cluster': cluster, 'ipp-dev-class': cls }).filter((v) => v.name !== first.name);
      expect(all).toHaveLength(1);
      return all[0]!;
    });
    expect(second.zone).toBe(ZONES[1]);
    // Remembered: the second launch asked only the second group.
    const after = creates()
      .slice(before)
      .filter((x) => namesIn(x).includes(second.name));
    expect(after).toHaveLength(1);
    expect(JSON.stringify(after[0])).not.toContain(ZONES[0]);
  });

  it('throttling: createInstances is retried with the same requestId, and one VM is made', async () => {
    const { name: cls } = await gceClass('throttle');
    gce.server.throttle(3, { method: 'instanceGroupManagers.createInstances' });
    const before = creates().length;
    await deploy('throttle', cls);
    const inst = await theInstance(cls, (x) => expect(x.status?.providerID).toBeDefined());
    const vm = await vmFor(inst.metadata.name!);
    const calls = creates()
      .slice(before)
      .filter((x) => x.outcome !== 'throttled' || true);
    expect(calls.map((x) => x.outcome)).toEqual(['throttled', 'throttled', 'throttled', 'answered']);
    expect(new Set(calls.map((x) => x.requestId)).size).toBe(1);
    expect(vms({ 'ipp-dev-cluster': cluster, 'ipp-dev-class': cls }).map(providerIdOf)).toEqual([
      inst.status!.providerID,
    ]);
    expect(vm.name).toBe(inst.status!.providerID!.split('/').pop());
  });

  it('controller SIGKILLed between createInstances and the status write: after restart still exactly one VM', async () => {
    const { name: cls } = await gceClass('killed');
    // The group accepts the name, but the answer is held until the controller is gone.
    gce.server.lose('instanceGroupManagers.createInstances', 1, 120_000);
    const before = creates().length;
    await deploy('killed', cls);
    const name = (await theInstance(cls)).metadata.name!;
    // Accepted by the group (the fake records the call only once its answer is sent or lost).
    await eventually('createInstances accepted', async () =>
      expect([...gce.state.managed.values()].filter((r) => r.name.startsWith(`ipp-${name}-`))).toHaveLength(1),
    );
    await ipp.kill();
    await eventually('the held answer lost with the process', async () =>
      expect(
        creates()
          .slice(before)
          .map((x) => x.outcome),
      ).toEqual(['lost']),
    );
    const held = await theInstance(cls);
    expect(held.metadata.name).toBe(name);
    expect(held.status?.providerID).toBeUndefined();

    ipp = await start();
    const vm = await vmFor(name);
    await theInstance(cls, (x) => expect(x.status?.providerID).toBe(providerIdOf(vm)));
    // Found in its group by its UID-derived name, not asked for again.
    expect(creates().length - before).toBe(1);
    await runningOn('killed', vm.name);
    expect(vms({ 'ipp-dev-cluster': cluster, 'ipp-dev-class': cls }).map((v) => v.name)).toEqual([vm.name]);
    await tornDown('killed', cls, vm);
  });

  it("garbage collection removes a leaked VM of this cluster after the grace period and never touches another cluster's", async () => {
    const { name: cls, groups } = await gceClass('leak');
    const other = `other-${suffix()}`;
    const theirs = gce.nodePool({ cluster: other, cls, machineType: 'n2-standard-8', zones: [ZONES[0]!] });
    const mig = (g: { zone: string; name: string }) => gce.state.migs.get(`${gce.project}/${g.zone}/${g.name}`)!;
    // VMs someone made in the groups without any Instance (a crash before the Instance was written).
    const leakedName = `ipp-${cls}-0000leaked000000`;
    const foreignName = `ipp-${cls}-0000foreign00000`;
    const collectedBefore = (await metric(ipp, 'ipp_leaked_instances_collected_total', { provider: 'gce' })) ?? 0;
    const started = Date.now();
    gce.state.accept(mig(groups[0]!), [leakedName]);
    gce.state.accept(mig(theirs[0]!), [foreignName]);

    const gone = await eventually(
      'the leaked VM removed from its group',
      async () => {
        expect(gce.state.managed.has(`${gce.project}/${ZONES[0]}/${leakedName}`)).toBe(false);
        expect(gce.state.vms.has(`${gce.project}/${ZONES[0]}/${leakedName}`)).toBe(false);
        return Date.now();
      },
      60_000,
      100,
    );
    expect(gone - started).toBeGreaterThanOrEqual(4_000);
    expect(await metric(ipp, 'ipp_leaked_instances_collected_total', { provider: 'gce' })).toBe(collectedBefore + 1);

    const lists = () => gce.server.count('instances.aggregatedList');
    const listed = lists();
    await eventually(
      'two more garbage collections',
      async () => expect(lists() - listed).toBeGreaterThanOrEqual(2),
      30_000,
    );
    expect(gce.state.vms.get(`${gce.project}/${ZONES[0]}/${foreignName}`)?.status).toBe('RUNNING');
    const touched = gce.server.calls.filter((x) => JSON.stringify(x.body ?? '').includes(foreignName));
    expect(touched).toEqual([]);
    gce.state.remove(mig(theirs[0]!), [foreignName], true);
  });
});
