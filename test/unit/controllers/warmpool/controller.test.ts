// The warm-pool shell with fake writers: creates labelled Instances, removes aged ones at the version
// judged, waits for its own writes to show in the cache, and reports the pool's size as metrics.
import { beforeEach, describe, expect, it } from 'vitest';
import { ORPHAN_GRACE_MS, WarmPoolController } from '../../../../src/controllers/warmpool/controller.ts';
import { ProvisioningController } from '../../../../src/controllers/provisioning/controller.ts';
import { fakes, type Fakes } from '../../fake/cluster.ts';
import { cls, instance, node, pod } from '../fixtures.ts';

const T0 = Date.parse('2024-01-02T00:00:00Z');
const HOUR = 3_600_000;
let f: Fakes;
let controller: WarmPoolController;
let n: number;
beforeEach(() => {
  f = fakes(T0);
  n = 0;
  controller = new WarmPoolController({ ...f.ctx, newName: (c) => `${c}-w${++n}` });
});

const gauge = async () =>
  (await f.metrics.registry.getSingleMetric('ipp_warm_instances')!.get()).values.map(
    (v) => `${v.labels.class}/${v.labels.state}=${v.value}`,
  );

describe('WarmPoolController', () => {
  it('creates the pool as warm-labelled Instances, and counts them as launching before the cache shows them', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 2 } })];
    await controller.reconcile('metal');
    expect(f.writes.log).toEqual([
      ['instances.create', 'metal-w1', 'metal', { warm: true }],
      ['instances.create', 'metal-w2', 'metal', { warm: true }],
    ]);
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: 30_000 });
    expect(f.writes.log).toHaveLength(2);
    expect(await gauge()).toEqual(['metal/ready=0', 'metal/launching=2']);
    const now = new Date(T0).toISOString();
    f.cluster.instanceList = [
      instance('metal-w1', { warm: true, created: now }),
      instance('metal-w2', { warm: true, created: now }),
    ];
    await controller.reconcile('metal');
    expect(f.writes.log).toHaveLength(2);
    expect(await gauge()).toEqual(['metal/ready=0', 'metal/launching=2']);
  });

  it('removes the unused warm instances of a deleted class, once it has been missing for a while', async () => {
    f.cluster.classList = [];
    f.cluster.instanceList = [
      instance('metal-w1', { warm: true, phase: 'Ready', resourceVersion: '4' }),
      instance('metal-w2', { warm: true, phase: 'Ready', resourceVersion: '5' }),
      instance('metal-busy', { phase: 'Ready' }),
    ];
    // Taken by a pod already (its claim is written before the warm label goes): not touched.
    f.cluster.podList = [pod('web', { claim: 'metal-w2' })];
    // Missing for a moment (a cache gap) costs nothing.
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: ORPHAN_GRACE_MS });
    expect(f.writes.log).toEqual([]);
    f.clock.now += ORPHAN_GRACE_MS;
    await controller.reconcile('metal');
    expect(f.writes.log).toEqual([['instances.delete', 'metal-w1', '4']]);
    expect(f.events.map((e) => `${e.regarding.name}/${e.reason}`)).toEqual(['metal-w1/WarmClassDeleted']);
  });

  it('launches a refill once when two passes of the class overlap before the cache shows its creates', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 3 } })];
    await Promise.all([controller.reconcile('metal'), controller.reconcile('metal')]);
    expect(f.writes.of('instances.create')).toHaveLength(3);
  });

  it('does not launch again what a refill that failed half-way may have written', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 3 } })];
    // The first create times out: the API server may have written it, or not.
    f.writes.failNext.set('instances.create', { code: 504, body: { reason: 'Timeout', message: 'timed out' } });
    await expect(controller.reconcile('metal')).rejects.toMatchObject({ code: 504 });
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create').map(([name]) => name)).toEqual(['metal-w1', 'metal-w4', 'metal-w5']);
    // It had been written after all: the pool is full, nothing more.
    const now = new Date(T0).toISOString();
    f.cluster.instanceList = ['metal-w1', 'metal-w4', 'metal-w5'].map((n) => instance(n, { warm: true, created: now }));
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create')).toHaveLength(3);
  });

  it('counts a create the API server refused as never written, and launches it again', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 2 } })];
    f.writes.failNext.set('instances.create', { code: 429, body: { reason: 'TooManyRequests', message: 'slow down' } });
    await expect(controller.reconcile('metal')).rejects.toMatchObject({ code: 429 });
    await controller.reconcile('metal');
    // The refused one and the one never sent, launched by the retry.
    expect(f.writes.of('instances.create')).toHaveLength(3);
  });

  it('forgets a create the cache never shows once the expectation times out, and refills', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 1 } })];
    await controller.reconcile('metal');
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create')).toHaveLength(1);
    f.clock.now += 30_000;
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create')).toHaveLength(2);
  });

  it('keeps counting a create while the Instance watch has shown nothing since it was sent (a watch down, writes up)', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 1 } })];
    await controller.reconcile('metal');
    f.clock.now += 60_000;
    f.cluster.instancesSilentForMs = 60_000;
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create')).toHaveLength(1);
    // The watch is back and still does not show it: then it was not written after all.
    f.cluster.instancesSilentForMs = 0;
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create')).toHaveLength(2);
  });

  it('keeps counting its create when a provisioning pass of the class reads the shared record meanwhile', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 1 } })];
    await controller.reconcile('metal');
    f.clock.now += 60_000;
    f.cluster.instancesSilentForMs = 60_000;
    f.cluster.podList = [pod('web-1')];
    await new ProvisioningController({ ...f.ctx, newName: () => 'metal-p' }).reconcile('metal').catch(() => {});
    f.cluster.podList = [];
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create').filter(([, , o]) => (o as { warm?: boolean })?.warm)).toHaveLength(1);
  });

  it('counts Instances provisioning is creating for pods against maxInstances before the cache shows them', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 2 }, maxInstances: 3 })];
    f.cluster.instanceList = [instance('metal-busy', { phase: 'Ready' })];
    f.ctx.creates.add('metal', 'metal-for-pod', false, T0);
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create')).toEqual([['metal-w1', 'metal', { warm: true }]]);
  });

  it('refills once a pod has taken a warm instance', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 2 } })];
    f.cluster.instanceList = [
      instance('metal-a', { phase: 'Ready', warm: true, created: new Date(T0 - HOUR).toISOString() }),
      instance('metal-b', { phase: 'Ready', created: new Date(T0 - HOUR).toISOString() }),
    ];
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create')).toEqual([['metal-w1', 'metal', { warm: true }]]);
    expect(await gauge()).toEqual(['metal/ready=1', 'metal/launching=0']);
  });

  it('never removes a warm-labelled instance a pod uses, and counts it out of the pool', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 1, maxAge: '1h' } })];
    f.cluster.instanceList = [
      instance('metal-a', { phase: 'Ready', warm: true, providerID: 'sim:///n1', created: '2024-01-01T00:00:00Z' }),
    ];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'metal-a' })];
    f.cluster.podList = [pod('web', { nodeName: 'n1', gated: false, phase: 'Running' })];
    await controller.reconcile('metal');
    expect(f.writes.of('instances.delete')).toEqual([]);
    expect(f.writes.of('instances.create')).toHaveLength(1);
  });

  it('removes an aged instance at the version judged once its replacement is Ready, and says why', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 1, maxAge: '6h' } })];
    f.cluster.instanceList = [
      instance('metal-old', { phase: 'Ready', warm: true, created: '2024-01-01T00:00:00Z', resourceVersion: '11' }),
      instance('metal-new', { phase: 'Ready', warm: true, created: new Date(T0 - 60_000).toISOString() }),
    ];
    const r = await controller.reconcile('metal');
    expect(f.writes.log).toEqual([['instances.delete', 'metal-old', '11']]);
    expect(f.events.map((e) => `${e.regarding.name}/${e.reason}`)).toEqual(['metal-old/WarmAgedOut']);
    expect(r).toEqual({ requeueAfterMs: 6 * HOUR - 60_000 }); // when metal-new ages out
  });

  it('leaves an instance a pod took meanwhile (409 on the delete) and looks again soon', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 0 } })];
    f.cluster.instanceList = [instance('metal-a', { phase: 'Ready', warm: true })];
    f.writes.failNext.set('instances.delete', { code: 409, body: { reason: 'Conflict', message: 'changed' } });
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: 250 });
    expect(f.events).toEqual([]);
  });

  it('comes back when the next warm instance ages out', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 1, maxAge: '2h' } })];
    f.cluster.instanceList = [
      instance('metal-a', { phase: 'Ready', warm: true, created: new Date(T0 - HOUR).toISOString() }),
    ];
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: HOUR });
  });

  it('does not fill the pool of a class its provider refuses', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 2 } })];
    f.provider.validationProblems = ['instance type sim.large is unknown'];
    await controller.reconcile('metal');
    expect(f.writes.log).toEqual([]);
  });

  it('holds the pool as it is when spec.warmPool cannot be read, and says so on the class', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 2, schedule: [{ cron: '0 25 * * *', duration: '1h' }] } })];
    await controller.reconcile('metal');
    expect(f.writes.log).toEqual([]);
    expect(f.events.map((e) => `${e.regarding.kind}/${e.reason}/${e.type}`)).toEqual([
      'InstanceClass/InvalidWarmPool/Warning',
    ]);
    expect(f.events[0]!.note).toContain('hour "25"');
  });

  it('replaces a warm instance launched under a weaker host isolation than the class now asks for', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 1 }, hostIsolation: 'DedicatedHardware' })];
    const weak = instance('metal-vm', {
      phase: 'Ready',
      warm: true,
      providerID: 'sim:///n1',
      created: '2024-01-01T23:00:00Z',
    });
    weak.status!.hostIsolation = { level: 'VM', smt: 'On' };
    f.cluster.instanceList = [weak];
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create')).toEqual([['metal-w1', 'metal', { warm: true }]]);
  });

  it('replaces a warm Ready instance whose node lost its taints: provisioning would never take it', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 1 } })];
    const open = instance('metal-open', {
      phase: 'Ready',
      warm: true,
      providerID: 'sim:///n1',
      created: '2024-01-01T23:00:00Z',
    });
    f.cluster.instanceList = [open];
    f.cluster.nodeList = [node('n1', { class: 'metal', instance: 'metal-open', untainted: true })];
    await controller.reconcile('metal');
    expect(f.writes.of('instances.create')).toEqual([['metal-w1', 'metal', { warm: true }]]);
  });

  it('is woken by resync only for classes with a pool or warm instances left', () => {
    f.cluster.classList = [cls({ warmPool: { size: 1 } }), cls({}, 'plain'), cls({}, 'was-warm')];
    f.cluster.instanceList = [instance('x', { warm: true, class: 'was-warm' })];
    expect([...controller.wakes.resync!(f.cluster)]).toEqual(['metal', 'was-warm']);
  });

  it('is woken by an Instance only if its class has a pool or the Instance is warm', () => {
    f.cluster.classList = [cls({ warmPool: { size: 1 } }), cls({}, 'plain')];
    const wake = (i: ReturnType<typeof instance>) => [...controller.wakes.instance!(i, f.cluster)];
    expect(wake(instance('a'))).toEqual(['metal']);
    expect(wake(instance('b', { class: 'plain' }))).toEqual([]);
    expect(wake(instance('c', { class: 'plain', warm: true }))).toEqual(['plain']);
  });

  it('removes a class’s warm series (gauge, hits, misses) when the class is deleted', async () => {
    const hits = () => f.metrics.registry.getSingleMetric('ipp_warm_hits_total')!.get();
    f.cluster.classList = [cls({ warmPool: { size: 1 } }), cls({ warmPool: { size: 1 } }, 'other')];
    await controller.reconcile('metal');
    await controller.reconcile('other');
    f.metrics.warmHits.inc({ class: 'metal' });
    f.metrics.warmHits.inc({ class: 'other' });
    expect(await gauge()).toEqual(['metal/ready=0', 'metal/launching=0', 'other/ready=0', 'other/launching=0']);
    f.cluster.classList = [cls({ warmPool: { size: 1 } }, 'other')];
    await controller.reconcile('metal');
    expect(await gauge()).toEqual(['other/ready=0', 'other/launching=0']);
    expect((await hits()).values.map((v) => v.labels.class)).toEqual(['other']);
  });

  it('exports no series for a class that has no pool and no warm instance left', async () => {
    f.cluster.classList = [cls({})];
    await controller.reconcile('metal');
    expect(await gauge()).toEqual([]);
    f.cluster.classList = [cls({ warmPool: { size: 1 } })];
    f.cluster.instanceList = [
      instance('metal-w0', {
        warm: true,
        phase: 'Ready',
        providerID: 'sim:///n0',
        created: new Date(T0).toISOString(),
      }),
    ];
    await controller.reconcile('metal');
    expect(await gauge()).toEqual(['metal/ready=1', 'metal/launching=0']);
    f.cluster.classList = [cls({})]; // the pool taken off the class, its instances gone
    f.cluster.instanceList = [];
    await controller.reconcile('metal');
    expect(await gauge()).toEqual([]);
  });
});

describe('surplus', () => {
  const pool = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      instance(`metal-${i}`, { phase: 'Ready', warm: true, created: new Date(T0 - (i + 1) * 60_000).toISOString() }),
    );

  it('keeps one extra for a while (the next pod takes it), and removes it if the pool stays over its size', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 2 } })];
    f.cluster.instanceList = pool(3);
    expect(await controller.reconcile('metal')).toEqual({ requeueAfterMs: 30_000 });
    expect(f.writes.log).toEqual([]);
    f.clock.now += 30_000;
    await controller.reconcile('metal');
    expect(f.writes.of('instances.delete')).toEqual([['metal-2', undefined]]);
  });

  it('empties the pool at once when its size drops to 0 (schedule window closed)', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 0 } })];
    f.cluster.instanceList = pool(2);
    await controller.reconcile('metal');
    expect(f.writes.of('instances.delete')).toHaveLength(2);
  });

  it('never removes an instance a pod was given a moment ago, before the claim reaches the cache', async () => {
    f.cluster.classList = [cls({ warmPool: { size: 0 } })];
    f.cluster.instanceList = pool(2);
    f.ctx.claims.add('metal-0', f.clock.now);
    await controller.reconcile('metal');
    expect(f.writes.of('instances.delete')).toEqual([['metal-1', undefined]]);
  });
});
