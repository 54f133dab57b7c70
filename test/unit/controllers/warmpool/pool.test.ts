// poolPlan(): what a class's warm pool needs now.
import { describe, expect, it } from 'vitest';
import type { Instance, InstanceClassSpec } from '../../../../src/api/types.ts';
import { poolPlan, type PoolPlan } from '../../../../src/controllers/warmpool/pool.ts';
import { cls, instance } from '../fixtures.ts';

const T0 = Date.parse('2024-01-01T12:00:00Z');
const HOUR = 3_600_000;
const ago = (ms: number) => new Date(T0 - ms).toISOString();

function run(
  spec: Partial<InstanceClassSpec>,
  instances: Instance[],
  inUse: string[] = [],
  now = T0,
  creating = 0,
): PoolPlan {
  return poolPlan({ cls: cls(spec), instances, inUse: (i) => inUse.includes(i.metadata.name!), creating, now });
}
const warmReady = (name: string, age = HOUR) => instance(name, { phase: 'Ready', warm: true, created: ago(age) });
const warmBooting = (name: string, age = 60_000) =>
  instance(name, { phase: 'Launched', warm: true, created: ago(age) });
const removed = (p: PoolPlan) => p.remove.map((r) => `${r.inst.metadata.name}:${r.why}`);

describe('filling', () => {
  it('creates the whole pool at once when empty', () => {
    expect(run({ warmPool: { size: 3 } }, [])).toMatchObject({ desired: 3, create: 3, remove: [], ready: 0 });
  });

  it('refills after a hit: the taken instance (no longer labelled) does not count', () => {
    const taken = instance('taken', { phase: 'Ready' });
    expect(run({ warmPool: { size: 2 } }, [warmReady('w1'), taken])).toMatchObject({ create: 1, ready: 1 });
  });

  it('counts launching warm instances as on their way, not missing', () => {
    expect(run({ warmPool: { size: 2 } }, [warmReady('w1'), warmBooting('w2')])).toMatchObject({
      create: 0,
      ready: 1,
      launching: 1,
    });
  });

  it('does not count a warm-labelled instance that a pod uses, and never removes it', () => {
    const p = run({ warmPool: { size: 1 } }, [warmReady('w1', 48 * HOUR)], ['w1']);
    expect(p).toMatchObject({ create: 1, ready: 0 });
    expect(p.remove).toEqual([]);
  });

  it('ignores Instances being deleted', () => {
    const going = { ...warmReady('w1'), metadata: { ...warmReady('w1').metadata, deletionTimestamp: new Date() } };
    expect(run({ warmPool: { size: 1 } }, [going])).toMatchObject({ create: 1 });
  });

  it('counts its own creates the cache does not show yet as launching, so the next pass does not launch them again', () => {
    // Pool of 4: a burst took two, the refill of both is written but not cached yet.
    expect(run({ warmPool: { size: 4 } }, [warmReady('w1'), warmReady('w2')], [], T0, 2)).toMatchObject({
      create: 0,
      ready: 2,
      launching: 2,
    });
    // One more hit meanwhile: one more replacement, not three.
    expect(run({ warmPool: { size: 4 } }, [warmReady('w1')], [], T0, 2)).toMatchObject({ create: 1 });
  });

  it('holds nothing without a warm pool', () => {
    expect(run({}, [])).toMatchObject({ desired: 0, create: 0, remove: [] });
  });
});

describe('maxInstances', () => {
  it('counts creates the cache does not show yet against maxInstances', () => {
    const busy = [instance('b1', { phase: 'Ready' }), instance('b2', { phase: 'Ready' })];
    // Two busy, one warm Ready, one warm create in flight: the class is at its cap of 4.
    expect(run({ warmPool: { size: 3 }, maxInstances: 4 }, [...busy, warmReady('w1')], [], T0, 1)).toMatchObject({
      create: 0,
      capped: 1,
    });
  });

  it('never grows the class past maxInstances: busy instances count, and so do warm ones', () => {
    const busy = [instance('b1', { phase: 'Ready' }), instance('b2', { phase: 'Ready' })];
    expect(run({ warmPool: { size: 3 }, maxInstances: 4 }, busy)).toMatchObject({ create: 2, capped: 1 });
    expect(run({ warmPool: { size: 3 }, maxInstances: 4 }, [...busy, warmReady('w1'), warmReady('w2')])).toMatchObject({
      create: 0,
      capped: 1,
    });
  });

  it('at the cap, lets an aged warm instance go first, since its replacement cannot come first', () => {
    const p = run({ warmPool: { size: 1, maxAge: '1h' }, maxInstances: 2 }, [
      instance('b1', { phase: 'Ready' }),
      warmReady('old', 2 * HOUR),
    ]);
    expect(p.create).toBe(0);
    expect(removed(p)).toEqual(['old:Aged']);
  });
});

describe('ageing out: one at a time, the new one Ready before the old goes', () => {
  const spec = { warmPool: { size: 2, maxAge: '6h' } };

  it('launches one replacement for an aged instance and keeps the old one serving meanwhile', () => {
    const p = run(spec, [warmReady('old', 7 * HOUR), warmReady('w2')]);
    expect(p.create).toBe(1);
    expect(p.remove).toEqual([]);
  });

  it('waits while the replacement boots', () => {
    const p = run(spec, [warmReady('old', 7 * HOUR), warmReady('w2'), warmBooting('new')]);
    expect(p.create).toBe(0);
    expect(p.remove).toEqual([]);
  });

  it('removes the old one once the replacement is Ready', () => {
    const p = run(spec, [warmReady('old', 7 * HOUR), warmReady('w2'), warmReady('new', 60_000)]);
    expect(p.create).toBe(0);
    expect(removed(p)).toEqual(['old:Aged']);
  });

  it('replaces a whole aged pool one instance after the other, oldest first', () => {
    const both = [warmReady('a', 9 * HOUR), warmReady('b', 8 * HOUR)];
    expect(run(spec, both)).toMatchObject({ create: 1, remove: [] });
    expect(removed(run(spec, [...both, warmReady('c', 60_000)]))).toEqual(['a:Aged']);
    // b still waits for its own replacement, which starts only when nothing else boots.
    expect(run(spec, [both[1]!, warmReady('c', 60_000)])).toMatchObject({ create: 1, remove: [] });
  });

  it('says when the next warm instance ages out, so the controller looks again then', () => {
    expect(run(spec, [warmReady('w1', 5 * HOUR), warmReady('w2', HOUR)]).nextAgeOutMs).toBe(HOUR);
  });

  it('defaults maxAge to 24h', () => {
    expect(run({ warmPool: { size: 1 } }, [warmReady('w1', 23 * HOUR)])).toMatchObject({ create: 0, remove: [] });
    expect(run({ warmPool: { size: 1 } }, [warmReady('w1', 25 * HOUR)])).toMatchObject({ create: 1, remove: [] });
  });
});

describe('shrinking', () => {
  it('removes launching ones first, then the oldest Ready, when the size is lowered', () => {
    const p = run({ warmPool: { size: 1 } }, [warmReady('old', 3 * HOUR), warmReady('young'), warmBooting('boot')]);
    expect(p.create).toBe(0);
    expect(removed(p)).toEqual(['boot:Surplus', 'old:Surplus']);
  });

  it('holds the pool inside its schedule window and empties it outside', () => {
    const spec = { warmPool: { size: 2, schedule: [{ cron: '0 8 * * 1-5', duration: '10h' }] } };
    // 2024-01-01 is a Monday.
    expect(run(spec, [], [], Date.parse('2024-01-01T09:00:00Z'))).toMatchObject({ desired: 2, create: 2 });
    const night = run(spec, [warmReady('w1'), warmReady('w2')], [], Date.parse('2024-01-01T19:00:00Z'));
    expect(night.desired).toBe(0);
    expect(removed(night)).toEqual(['w1:Surplus', 'w2:Surplus']);
  });

  it('throws on a malformed maxAge (the controller reports it and holds the pool as is)', () => {
    expect(() => run({ warmPool: { size: 1, maxAge: 'soon' } }, [])).toThrow(/spec.warmPool.maxAge/);
  });
});
