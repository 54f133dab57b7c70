// Garbage collection's shell with a fake cloud: leaked instances are terminated only when found
// leaked on two passes and unclaimed in a direct read, a few per pass; vanished ones confirmed with a
// direct read before their Instance is deleted.
import { beforeEach, describe, expect, it } from 'vitest';
import { GarbageCollector, MAX_COLLECTED_PER_PASS } from '../../../../src/controllers/garbagecollection/controller.ts';
import type { CloudInstance } from '../../../../providers/types.ts';
import { fakes, type Fakes } from '../../fake/cluster.ts';
import { instance } from '../fixtures.ts';

const T0 = Date.parse('2024-01-01T00:00:00Z');
const cloud = (providerID: string, instanceName: string, launchedAt = T0): CloudInstance => ({
  providerID,
  instanceType: 'sim.large',
  zone: 'zone-a',
  state: 'running',
  tags: { 'ipp.dev/instance': instanceName },
  launchedAt: new Date(launchedAt),
});

let f: Fakes;
let gc: GarbageCollector;
beforeEach(() => {
  f = fakes(T0 + 10 * 60_000);
  gc = new GarbageCollector({ ...f.ctx, gracePeriodMs: 5 * 60_000 });
});

describe('GarbageCollector', () => {
  it('terminates a cloud instance no Instance accounts for, and counts it', async () => {
    f.provider.instances.set('fake:///leak', cloud('fake:///leak', 'gone'));
    f.provider.instances.set('fake:///mine', cloud('fake:///mine', 'kept'));
    f.cluster.instanceList = [instance('kept', { phase: 'Ready', providerID: 'fake:///mine' })];
    await gc.collect();
    expect(f.provider.deleteCalls).toEqual([]); // one pass's verdict is not enough
    await gc.collect();
    expect(f.provider.deleteCalls).toEqual(['fake:///leak']);
    expect(await f.metrics.leakedInstancesCollected.get()).toMatchObject({ values: [{ value: 1 }] });
  });

  it('spares a young unaccounted instance (its Instance may not be written yet)', async () => {
    f.provider.instances.set('fake:///young', cloud('fake:///young', 'x', T0 + 9 * 60_000));
    await gc.collect();
    expect(f.provider.deleteCalls).toEqual([]);
  });

  it('deletes an Instance whose cloud instance is gone only after a direct read confirms it', async () => {
    const i = instance('lost', {
      phase: 'Ready',
      providerID: 'fake:///lost',
      launchedAt: new Date(T0).toISOString(),
      resourceVersion: '5',
    });
    i.status!.provider = 'simulated';
    f.cluster.instanceList = [i];
    await gc.collect();
    expect(f.provider.getCalls).toEqual(['fake:///lost']);
    // At the version read: a same-name Instance written since is another one (409, left alone).
    expect(f.writes.log).toEqual([['instances.delete', 'lost', '5']]);
    expect(f.events.map((e) => e.reason)).toEqual(['InstanceVanished']);
  });

  it('deletes no Instance whose cloud instance is tagged for another cluster, and stops the pass (--cluster-name changed)', async () => {
    f.cluster.instanceList = ['a', 'b'].map((n) => {
      const i = instance(n, { phase: 'Ready', providerID: `fake:///${n}`, launchedAt: new Date(T0).toISOString() });
      i.status!.provider = 'simulated';
      f.provider.foreign.add(`fake:///${n}`);
      return i;
    });
    await gc.collect();
    expect(f.writes.log).toEqual([]);
    expect(f.events).toEqual([]);
    expect(f.provider.getCalls).toEqual(['fake:///a']);
  });

  it('keeps an Instance the list missed but a direct read finds', async () => {
    const i = instance('lagging', {
      phase: 'Ready',
      providerID: 'fake:///lag',
      launchedAt: new Date(T0).toISOString(),
    });
    i.status!.provider = 'simulated';
    f.cluster.instanceList = [i];
    const real = cloud('fake:///lag', 'lagging');
    f.provider.list = async () => [];
    f.provider.instances.set(real.providerID, real);
    await gc.collect();
    expect(f.writes.log).toEqual([]);
  });

  it('keeps an instance the cache calls leaked when the API server has its Instance (a stale or emptied cache)', async () => {
    f.provider.instances.set('fake:///a', cloud('fake:///a', 'a'));
    f.provider.instances.set('fake:///b', cloud('fake:///b', 'b'));
    f.cluster.instanceList = [];
    f.cluster.apiInstances = [
      instance('a', { phase: 'Ready', providerID: 'fake:///a' }),
      instance('b', { phase: 'Pending' }), // about to record its providerID
    ];
    await gc.collect();
    await gc.collect();
    expect(f.provider.deleteCalls).toEqual([]);
  });

  it('terminates a duplicate whose Instance recorded another cloud instance', async () => {
    f.provider.instances.set('fake:///dup', cloud('fake:///dup', 'a'));
    f.cluster.instanceList = [];
    f.cluster.apiInstances = [instance('a', { phase: 'Ready', providerID: 'fake:///real' })];
    await gc.collect();
    await gc.collect();
    expect(f.provider.deleteCalls).toEqual(['fake:///dup']);
  });

  it('forgets a suspect that stops looking leaked, and terminates at most a few per pass', async () => {
    const n = MAX_COLLECTED_PER_PASS + 3;
    for (let k = 0; k < n; k++) f.provider.instances.set(`fake:///${k}`, cloud(`fake:///${k}`, `gone-${k}`));
    f.cluster.instanceList = [instance('gone-0', { phase: 'Ready', providerID: 'fake:///0' })];
    await gc.collect();
    f.cluster.instanceList = []; // gone-0 now looks leaked, but only on one pass
    await gc.collect();
    expect(f.provider.deleteCalls).toHaveLength(MAX_COLLECTED_PER_PASS);
    expect(f.provider.deleteCalls).not.toContain('fake:///0');
    await gc.collect();
    expect(new Set(f.provider.deleteCalls)).toEqual(new Set([...Array(n).keys()].map((k) => `fake:///${k}`)));
  });
});
