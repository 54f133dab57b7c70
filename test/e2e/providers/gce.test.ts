// The GCE provider with the real @google-cloud/compute client (REST transport) against the
// project's fake Compute Engine, authenticated through the fake metadata server exactly as GKE
// Workload Identity does (GCE_METADATA_HOST; no key file anywhere). One fake serves the file; each
// test owns a cluster name of its own.
import compute from '@google-cloud/compute';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceClass } from '../../../src/api/types.ts';
import {
  InsufficientCapacityError,
  NotFoundError,
  NotOwnedError,
  QuotaExceededError,
} from '../../../providers/errors.ts';
import { GceProvider, type GceProviderOptions } from '../../../providers/gce/provider.ts';
import { vmName } from '../../../providers/gce/names.ts';
import type { LaunchRequest } from '../../../providers/types.ts';
import { startGceFake, type FakeGce } from '../../testbed/gce/index.ts';
import { suffix } from '../support/cluster.ts';

let gce: FakeGce;
const savedEnv = { ...process.env };

beforeAll(async () => {
  gce = await startGceFake();
  process.env.GCE_METADATA_HOST = gce.metadata.host;
  delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
});
afterAll(async () => {
  process.env = savedEnv;
  await gce?.close();
});

function provider(clusterName: string, extra: Partial<GceProviderOptions> = {}): GceProvider {
  return new GceProvider({
    clusterName,
    endpoint: gce.endpoint,
    logger: pino({ level: 'silent' }),
    retry: { attempts: 6, baseMs: 20, maxMs: 200 },
    pollMs: 50,
    project: gce.project,
    ...extra,
  });
}

function instanceClass(name: string, groups: { zone: string; name: string }[], types: string[]): InstanceClass {
  return { metadata: { name }, spec: { instanceTypes: types, gce: { instanceGroups: groups } } };
}

function launch(cluster: string, cls: InstanceClass, name: string, uid = `uid-${name}-${suffix()}`): LaunchRequest {
  const c = cls.metadata.name!;
  return {
    instance: { name, uid },
    class: cls,
    tags: { 'ipp.dev/cluster': cluster, 'ipp.dev/class': c, 'ipp.dev/instance': name },
    node: {
      labels: { 'ipp.dev/class': c, 'ipp.dev/instance': name },
      taints: [{ key: 'ipp.dev/class', value: c, effect: 'NoSchedule' }],
    },
  };
}

/** A class of its own node pool in two zones (or `zones`), in the fake's project unless `pool.project`. */
function setup(
  machineType = 'n2-standard-4',
  zones = ['us-central1-a', 'us-central1-b'],
  pool: { project?: string; extra?: Record<string, unknown> } = {},
) {
  const cluster = `gce-${suffix()}`;
  const cls = `mail-${suffix()}`;
  const groups = gce.nodePool({ cluster, cls, machineType, zones, ...pool });
  const c = instanceClass(cls, groups, [machineType]);
  if (pool.project) c.spec.gce!.project = pool.project;
  return { cluster, groups, cls: c };
}

const vmsOf = (cluster: string) => [...gce.state.vms.values()].filter((v) => v.labels['ipp-dev-cluster'] === cluster);
const calls = (method: string, outcome?: Parameters<FakeGce['server']['count']>[1]) =>
  gce.server.count(method, outcome);

describe('GceProvider on the fake Compute Engine', () => {
  it('adds a VM to the first group by createInstances, labels it, and answers its providerID; the token came from the metadata server', async () => {
    const { cluster, groups, cls } = setup();
    const tokens = gce.metadata.tokenRequests;
    const p = provider(cluster);
    const req = launch(cluster, cls, 'mail-a');
    const ci = await p.create(req);
    const name = vmName(req.instance.uid, 'mail-a');
    expect(name).toMatch(/^ipp-mail-a-[0-9a-f]{8}$/);
    expect(ci.providerID).toBe(`gce://${gce.project}/${groups[0]!.zone}/${name}`);
    expect(ci.instanceType).toBe('n2-standard-4');
    expect(ci.tags).toMatchObject({
      'ipp.dev/cluster': cluster,
      'ipp.dev/class': cls.metadata.name,
      'ipp.dev/instance': 'mail-a',
    });
    const [vm, ...more] = vmsOf(cluster);
    expect(more).toEqual([]);
    expect(vm!.name).toBe(name);
    expect(vm!.createdBy!.name).toBe(groups[0]!.name);
    expect(vm!.labels['ipp-dev-instance']).toBe('mail-a');
    const create = gce.server.calls.filter((c) => c.method === 'instanceGroupManagers.createInstances').at(-1)!;
    expect(create.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(create.body).toEqual({ instances: [{ name }] });
    // A fresh provider asked the metadata server for its token (no key file, no other source).
    expect(gce.metadata.tokenRequests).toBe(tokens + 1);
    expect(gce.server.calls.some((c) => c.outcome === 'unauthorized')).toBe(false);
    expect(await p.get(ci.providerID)).toMatchObject({ providerID: ci.providerID, instanceType: 'n2-standard-4' });
  });

  it('create again for the same Instance (a restarted controller): the same VM, no second createInstances', async () => {
    const { cluster, cls } = setup();
    const req = launch(cluster, cls, 'mail-twice');
    const first = await provider(cluster).create(req);
    const before = calls('instanceGroupManagers.createInstances');
    const second = await provider(cluster).create(req);
    expect(second.providerID).toBe(first.providerID);
    expect(calls('instanceGroupManagers.createInstances')).toBe(before);
    expect(vmsOf(cluster)).toHaveLength(1);
  });

  it('answer of createInstances lost: the retry carries the same requestId and GCE makes one VM', async () => {
    const { cluster, cls } = setup();
    gce.server.lose('instanceGroupManagers.createInstances');
    const before = gce.server.calls.length;
    const ci = await provider(cluster).create(launch(cluster, cls, 'mail-lost'));
    const creates = gce.server.calls.slice(before).filter((c) => c.method === 'instanceGroupManagers.createInstances');
    expect(creates.map((c) => c.outcome)).toEqual(['lost', 'answered']);
    expect(creates[0]!.requestId).toBe(creates[1]!.requestId);
    expect(vmsOf(cluster).map((v) => v.name)).toEqual([ci.providerID.split('/').pop()]);
  });

  it('controller killed after createInstances, before it learned the outcome: the restarted one adopts the VM', async () => {
    const { cluster, groups, cls } = setup();
    const req = launch(cluster, cls, 'mail-killed');
    gce.server.lose('instanceGroupManagers.createInstances');
    await expect(provider(cluster, { retry: { attempts: 1 } }).create(req)).rejects.toThrow();
    // A restart takes seconds; the lost operation is done by then and its name listed in the group. (Restarted
    // sooner, the same requestId gets the same operation back: the requestId test above.)
    const key = `${gce.project}/${groups[0]!.zone}/${vmName(req.instance.uid, 'mail-killed')}`;
    await expect.poll(() => gce.state.managed.has(key), { timeout: 5_000 }).toBe(true);
    const before = calls('instanceGroupManagers.createInstances');
    const ci = await provider(cluster).create(req);
    expect(calls('instanceGroupManagers.createInstances')).toBe(before);
    expect(vmsOf(cluster).map((v) => v.name)).toEqual([ci.providerID.split('/').pop()]);
    expect(vmsOf(cluster)[0]!.labels['ipp-dev-instance']).toBe('mail-killed');
  });

  it('stockout in the first group: the VM is taken out of it and made in the next one, which is remembered', async () => {
    const { cluster, groups, cls } = setup('c3-standard-192-metal');
    gce.state.stockouts.add(`c3-standard-192-metal/${groups[0]!.zone}`);
    try {
      const p = provider(cluster);
      const a = await p.create(launch(cluster, cls, 'metal-a'));
      expect(a.zone).toBe(groups[1]!.zone);
      // The stuck attempt left the first group (deleteInstances), so it does not retry forever.
      expect([...gce.state.managed.values()].filter((r) => r.mig.name === groups[0]!.name)).toEqual([]);
      const creates = calls('instanceGroupManagers.createInstances');
      const b = await p.create(launch(cluster, cls, 'metal-b'));
      expect(b.zone).toBe(groups[1]!.zone);
      expect(calls('instanceGroupManagers.createInstances') - creates).toBe(1);
      gce.state.stockouts.add(`c3-standard-192-metal/*`);
      const err = await p.create(launch(cluster, cls, 'metal-c')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InsufficientCapacityError);
      expect(err).not.toBeInstanceOf(QuotaExceededError);
      expect((err as Error).message).toContain('ZONE_RESOURCE_POOL_EXHAUSTED');
    } finally {
      gce.state.stockouts.clear();
    }
  });

  it('a restarted controller finds its earlier attempt stuck on a stockout: takes it out and makes the VM in the next group', async () => {
    const { cluster, groups, cls } = setup();
    gce.state.stockouts.add(`n2-standard-4/${groups[0]!.zone}`);
    try {
      const req = launch(cluster, cls, 'stuck-a');
      gce.server.lose('instanceGroupManagers.createInstances');
      await expect(provider(cluster, { retry: { attempts: 1 } }).create(req)).rejects.toThrow();
      const stuck = `${gce.project}/${groups[0]!.zone}/${vmName(req.instance.uid, 'stuck-a')}`;
      await expect
        .poll(() => gce.state.managed.get(stuck)?.lastAttempt?.[0]?.code, { timeout: 5_000 })
        .toBe('ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS');
      const ci = await provider(cluster).create(req);
      expect(ci.zone).toBe(groups[1]!.zone);
      await expect.poll(() => gce.state.managed.has(stuck), { timeout: 5_000 }).toBe(false);
      expect(vmsOf(cluster).map((v) => v.zone)).toEqual([groups[1]!.zone]);
    } finally {
      gce.state.stockouts.clear();
    }
  });

  it('a VM its group accepted and then keeps failing to make (a stockout) is reported stalled; the replacement skips that group', async () => {
    const { cluster, groups, cls } = setup();
    // Returned as pending at once, before the group's first try: the stockout shows only later.
    const p = provider(cluster, { createTimeoutMs: 1 });
    expect(p.validate(cls)).toEqual([]);
    gce.state.stockouts.add(`n2-standard-4/${groups[0]!.zone}`);
    try {
      const ci = await p.create(launch(cluster, cls, 'stalled-a'));
      expect(ci.state).toBe('pending');
      const name = ci.providerID.split('/').pop()!;
      const member = `${gce.project}/${groups[0]!.zone}/${name}`;
      expect(await p.stalled(ci.providerID, cls)).toBeUndefined();
      await expect
        .poll(() => gce.state.managed.get(member)?.lastAttempt?.[0]?.code, { timeout: 5_000 })
        .toBe('ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS');
      // A fresh provider (the first one reuses its listing for a few seconds), as after a restart.
      const q = provider(cluster);
      expect(q.validate(cls)).toEqual([]);
      const err = await q.stalled(ci.providerID, cls);
      expect(err).toBeInstanceOf(InsufficientCapacityError);
      expect(err!.message).toContain(`${groups[0]!.zone}/${groups[0]!.name}`);
      expect(err!.message).toContain('ZONE_RESOURCE_POOL_EXHAUSTED');
      // Asking changes nothing in the cloud: taking it out of its group is its Instance's termination.
      expect(gce.state.managed.has(member)).toBe(true);
      expect(await q.get(ci.providerID, cls)).toMatchObject({ state: 'pending' });
      // The replacement goes straight to the next group: one createInstances, none in the stocked-out group.
      const creates = calls('instanceGroupManagers.createInstances');
      const next = await q.create(launch(cluster, cls, 'stalled-b'));
      expect(next.zone).toBe(groups[1]!.zone);
      expect(calls('instanceGroupManagers.createInstances') - creates).toBe(1);
      expect(await q.stalled(next.providerID, cls)).toBeUndefined();
      await q.delete(ci.providerID, cls);
      await expect.poll(() => gce.state.managed.has(member), { timeout: 5_000 }).toBe(false);
      expect(await q.stalled(ci.providerID, cls)).toBeUndefined();
    } finally {
      gce.state.stockouts.clear();
    }
  });

  it('quota used up in every zone: reported as quota, not as capacity', async () => {
    const { cluster, groups, cls } = setup();
    for (const g of groups) gce.state.quotaExhausted.add(g.zone);
    try {
      const err = await provider(cluster)
        .create(launch(cluster, cls, 'quota-a'))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QuotaExceededError);
      expect((err as Error).message).toMatch(/QUOTA_EXCEEDED.*CPUS/);
      expect(vmsOf(cluster)).toEqual([]);
    } finally {
      gce.state.quotaExhausted.clear();
    }
  });

  it.each([429, 403] as const)('throttled (%i rateLimitExceeded): retried with backoff, one VM', async (status) => {
    const { cluster, cls } = setup();
    gce.server.throttle(3, { status, method: 'instanceGroupManagers.createInstances' });
    const before = calls('instanceGroupManagers.createInstances', 'throttled');
    const ci = await provider(cluster).create(launch(cluster, cls, 'mail-throttled'));
    expect(calls('instanceGroupManagers.createInstances', 'throttled') - before).toBe(3);
    expect(vmsOf(cluster).map((v) => v.name)).toEqual([ci.providerID.split('/').pop()]);
  });

  it('a burst of one class costs one createInstances per group, not one per pod', async () => {
    const { cluster, cls } = setup();
    const p = provider(cluster);
    const before = calls('instanceGroupManagers.createInstances');
    const got = await Promise.all(Array.from({ length: 12 }, (_, k) => p.create(launch(cluster, cls, `burst-${k}`))));
    expect(calls('instanceGroupManagers.createInstances') - before).toBeLessThanOrEqual(2);
    expect(new Set(got.map((g) => g.providerID)).size).toBe(12);
    expect(vmsOf(cluster)).toHaveLength(12);
    for (const [k, g] of got.entries()) expect(g.tags['ipp.dev/instance']).toBe(`burst-${k}`);
  });

  it('delete goes through deleteInstances; then NotFound; a VM deleted directly is recreated by its group', async () => {
    const { cluster, cls, groups } = setup();
    const p = provider(cluster);
    const ci = await p.create(launch(cluster, cls, 'mail-del'));
    const direct = await p.create(launch(cluster, cls, 'mail-direct'));
    const before = calls('instanceGroupManagers.deleteInstances');
    await p.delete(ci.providerID);
    expect(calls('instanceGroupManagers.deleteInstances') - before).toBe(1);
    expect(calls('instances.delete')).toBe(0); // ipp removed it through its group
    await expect
      .poll(() => vmsOf(cluster).map((v) => v.name), { timeout: 5_000 })
      .not.toContain(ci.providerID.split('/').pop());
    await expect(p.delete(ci.providerID)).rejects.toBeInstanceOf(NotFoundError);
    await expect(p.get(ci.providerID)).rejects.toBeInstanceOf(NotFoundError);
    expect(gce.state.targetSize(gce.state.migs.get(`${gce.project}/${groups[0]!.zone}/${groups[0]!.name}`)!)).toBe(1);

    // Why ipp never calls instances.delete: the group makes the VM again under the same name.
    const name = direct.providerID.split('/').pop()!;
    const instances = new compute.InstancesClient({
      apiEndpoint: '127.0.0.1',
      port: Number(new URL(gce.endpoint).port),
      protocol: 'http',
      fallback: true,
    } as ConstructorParameters<typeof compute.InstancesClient>[0]);
    await instances.delete({ project: gce.project, zone: direct.zone, instance: name });
    await instances.close();
    expect(calls('instances.delete')).toBe(1);
    await expect
      .poll(() => gce.state.managed.get(`${gce.project}/${direct.zone}/${name}`)?.currentAction, { timeout: 5_000 })
      .toBe('RECREATING');
    await expect
      .poll(() => gce.state.vms.get(`${gce.project}/${direct.zone}/${name}`)?.status, { timeout: 5_000 })
      .toBe('RUNNING');
  });

  it('a VM made again under its name after a delete is deleted again: the first deleteInstances requestId is spent', async () => {
    // The Instance's VM name comes from its UID: a launch retried in the same group (after a stockout
    // there, or a delete of a VM that was still coming up) makes a VM of the same name, and GCE answers
    // a requestId it has seen within the hour with the old, finished operation.
    const { cluster, cls } = setup('n2-standard-4', ['us-central1-a']);
    const p = provider(cluster);
    const req = launch(cluster, cls, 'mail-again');
    const name = vmName(req.instance.uid, 'mail-again');
    const gone = () => expect.poll(() => vmsOf(cluster).map((v) => v.name), { timeout: 5_000 }).not.toContain(name);
    await p.delete((await p.create(req)).providerID);
    await gone();
    const again = await p.create(req);
    expect(again.providerID.split('/').pop()).toBe(name);
    await p.delete(again.providerID);
    await gone();
    await expect(p.get(again.providerID)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a VM its group has accepted but not made yet is pending, not gone, and its delete takes it out of the group', async () => {
    const { cluster, groups, cls } = setup('n2-standard-4', ['us-central1-a']);
    const timings = gce.state.timings;
    gce.state.timings = { ...timings, createMs: 120_000 }; // a zone slow to make it (a stockout retried alike)
    try {
      const req = launch(cluster, cls, 'mail-slow');
      const ci = await provider(cluster, { createTimeoutMs: 300 }).create(req);
      expect(ci.state).toBe('pending');
      const member = `${gce.project}/${groups[0]!.zone}/${vmName(req.instance.uid, 'mail-slow')}`;
      expect(gce.state.managed.get(member)?.currentAction).toBe('CREATING');
      // A restarted controller: it has validated the class (as the InstanceClass controller does at start).
      const p = provider(cluster);
      expect(p.validate(cls)).toEqual([]);
      // Not gone: garbage collection would delete its Instance as vanished, and termination would
      // call it deleted while the group went on making it.
      expect(await p.get(ci.providerID)).toMatchObject({ providerID: ci.providerID, state: 'pending' });
      // Its group cannot be listed (throttled past every retry): the VM's fate is unknown, not "gone".
      const blind = provider(cluster, { retry: { attempts: 2, baseMs: 10, maxMs: 20 } });
      expect(blind.validate(cls)).toEqual([]);
      gce.server.throttle(2, { method: 'instanceGroupManagers.listManagedInstances' });
      const unknown = await blind.get(ci.providerID).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(unknown).toBeInstanceOf(Error);
      expect(unknown).not.toBeInstanceOf(NotFoundError);
      expect(await blind.get(ci.providerID)).toMatchObject({ state: 'pending' });
      // Another class's group in that zone cannot be listed: named with its class, the VM is still found.
      const otherName = `other-${suffix()}`;
      const other = instanceClass(
        otherName,
        gce.nodePool({ cluster, cls: otherName, machineType: 'n2-standard-4', zones: [groups[0]!.zone] }),
        ['n2-standard-4'],
      );
      const picky = provider(cluster, { retry: { attempts: 2, baseMs: 10, maxMs: 20 } });
      expect(picky.validate(other)).toEqual([]);
      expect(picky.validate(cls)).toEqual([]);
      gce.server.throttle(2, { method: 'instanceGroupManagers.listManagedInstances' });
      expect(await picky.get(ci.providerID, cls)).toMatchObject({ state: 'pending' });
      // A controller that has just started, its classes not validated yet: termination names the class.
      const fresh = provider(cluster);
      await fresh.delete(ci.providerID, cls);
      await expect.poll(() => gce.state.managed.has(member), { timeout: 5_000 }).toBe(false);
      await expect(fresh.get(ci.providerID)).rejects.toBeInstanceOf(NotFoundError);
      await expect(fresh.delete(ci.providerID, cls)).rejects.toBeInstanceOf(NotFoundError);
    } finally {
      gce.state.timings = timings;
    }
  });

  it('a zone of its groups the aggregated list cannot reach fails the list: half a list is not "no VMs there"', async () => {
    const { cluster, groups, cls } = setup();
    const p = provider(cluster);
    const ci = await p.create(launch(cluster, cls, 'mail-far'));
    // A zone where none of the classes' groups are: nothing of ours there.
    gce.state.unreachable.add('europe-west9-c');
    try {
      expect((await p.list()).map((c) => c.providerID)).toEqual([ci.providerID]);
      gce.state.unreachable.add(groups[1]!.zone);
      await expect(p.list()).rejects.toThrow(/could not be listed/);
    } finally {
      gce.state.unreachable.clear();
    }
    expect((await p.list()).map((c) => c.providerID)).toEqual([ci.providerID]);
  });

  it('warns of a cluster name that a GCE label cannot hold as it is (another cluster could share its label)', () => {
    const said = (clusterName: string) => {
      const lines: string[] = [];
      provider(clusterName, { logger: pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) }) });
      return lines.join('');
    };
    expect(said('Prod')).toMatch(/ipp-dev-cluster=prod: a cluster of that name/);
    expect(said('team.a')).toMatch(/=team-a/);
    expect(said('team-a')).toBe('');
  });

  it("list sees only this cluster's VMs; another cluster's are neither listed nor deletable", async () => {
    const mine = setup();
    const theirs = setup();
    const p = provider(mine.cluster);
    const ci = await p.create(launch(mine.cluster, mine.cls, 'same-name'));
    const other = await provider(theirs.cluster).create(launch(theirs.cluster, theirs.cls, 'same-name'));
    const listed = await p.list();
    expect(listed.map((c) => c.providerID)).toEqual([ci.providerID]);
    expect(listed[0]!.tags['ipp.dev/instance']).toBe('same-name');
    // Not "gone" (which would delete its Instance): there, and not ours.
    await expect(p.delete(other.providerID)).rejects.toBeInstanceOf(NotOwnedError);
    await expect(p.get(other.providerID)).rejects.toBeInstanceOf(NotOwnedError);
    expect(vmsOf(theirs.cluster)).toHaveLength(1);
  });

  it('a restarted controller finds and lists the VMs of a class in a project of its own', async () => {
    const { cluster, cls } = setup('n2-standard-4', ['us-central1-a'], { project: 'tenant-project' });
    const ci = await provider(cluster).create(launch(cluster, cls, 'elsewhere'));
    expect(ci.providerID).toMatch(/^gce:\/\/tenant-project\//);
    // A fresh provider, as after a restart: it knows the class from validating it (the InstanceClass
    // controller validates every class at start), never having launched for it.
    const restarted = provider(cluster);
    expect(restarted.validate(cls)).toEqual([]);
    expect((await restarted.findByInstance('elsewhere')).map((c) => c.providerID)).toEqual([ci.providerID]);
    expect((await restarted.list()).map((c) => c.providerID)).toEqual([ci.providerID]);
  });

  it('a class naming a project it may not read does not stop teardown or collection in the others', async () => {
    const mine = setup();
    const p = provider(mine.cluster);
    const ci = await p.create(launch(mine.cluster, mine.cls, 'kept-working'));
    const typo = instanceClass(`typo-${suffix()}`, [{ zone: 'us-central1-a', name: 'pool' }], ['n2-standard-4']);
    typo.spec.gce!.project = `no-access-${suffix()}`;
    gce.server.forbiddenProjects.add(typo.spec.gce!.project);
    expect(p.validate(typo)).toEqual([]);
    expect((await p.findByInstance('kept-working')).map((c) => c.providerID)).toEqual([ci.providerID]);
    expect((await p.list()).map((c) => c.providerID)).toEqual([ci.providerID]);
  });

  it('host isolation comes from the template: metal is BareMetal, threadsPerCore 1 is SMT off; a group that cannot deliver it is refused', async () => {
    const metal = setup('c3-standard-192-metal');
    metal.cls.spec.hostIsolation = 'BareMetal';
    const m = await provider(metal.cluster).create(launch(metal.cluster, metal.cls, 'metal-iso'));
    expect(m.hostIsolation).toEqual({ level: 'BareMetal', smt: 'On', nestedVirtualization: true });

    const smtOn = setup();
    smtOn.cls.spec.smt = 'Off';
    const err = await provider(smtOn.cluster)
      .create(launch(smtOn.cluster, smtOn.cls, 'smt-on'))
      .catch((e: unknown) => e);
    expect((err as Error).name).toBe('InvalidConfigError');
    expect((err as Error).message).toMatch(/cannot deliver the class's host isolation: SMT is on/);
    expect(vmsOf(smtOn.cluster)).toEqual([]);

    const { cluster, cls } = setup('n2-standard-8', ['us-central1-a'], {
      extra: { advancedMachineFeatures: { threadsPerCore: 1 } },
    });
    cls.spec.smt = 'Off';
    const off = await provider(cluster).create(launch(cluster, cls, 'smt-off'));
    expect(off.hostIsolation).toMatchObject({ level: 'VM', smt: 'Off' });
  });

  it('refuses a key file: GOOGLE_APPLICATION_CREDENTIALS set is an error that says why', () => {
    expect(() => provider('x', { env: { GOOGLE_APPLICATION_CREDENTIALS: '/var/run/key.json' } })).toThrow(
      /Workload Identity.*never a key file/,
    );
  });

  it('a template without the ipp labels is a configuration error naming the node pool setting', async () => {
    const { cluster, cls } = setup();
    const err = await provider(`${cluster}-other`)
      .create(launch(`${cluster}-other`, cls, 'nolabel'))
      .catch((e: unknown) => e);
    expect((err as Error).name).toBe('InvalidConfigError');
    expect((err as Error).message).toMatch(/lacks the GCE labels ipp-dev-cluster=.*--labels=/);
  });
});
