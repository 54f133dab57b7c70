import { describe, expect, it } from 'vitest';
import { Random } from '../../chaos/random.ts';
import { FAULT_KINDS, faultSchedule } from '../../chaos/schedule.ts';

describe('chaos fault schedule', () => {
  it('is a function of the seed: the same seed replays the same faults', () => {
    expect(faultSchedule(42, 120_000, 5_000)).toEqual(faultSchedule(42, 120_000, 5_000));
    expect(faultSchedule(42, 120_000, 5_000)).not.toEqual(faultSchedule(43, 120_000, 5_000));
  });

  it('has every kind once among its first faults, all marked to be ensured, then only random ones', () => {
    for (const seed of [1, 2, 3, 705448258]) {
      const s = faultSchedule(seed, 600_000, 6_000);
      const first = s.filter((f) => f.ensure);
      expect(first.map((f) => f.kind).sort()).toEqual([...FAULT_KINDS].sort());
      expect(s.length).toBeGreaterThan(FAULT_KINDS.length);
    }
  });

  it('keeps every fault inside the duration, in time order, with parameters in range', () => {
    const s = faultSchedule(7, 60_000, 3_000);
    expect(s.map((f) => f.at)).toEqual([...s.map((f) => f.at)].sort((a, b) => a - b));
    for (const f of s) {
      expect(f.at).toBeGreaterThanOrEqual(0);
      expect(f.at).toBeLessThan(60_000);
      if ('windowMs' in f) expect(f.windowMs).toBeGreaterThanOrEqual(2_000);
      if (f.kind === 'cloud-capacity') expect(f.zones[0]).toBe('sim-zone-a');
      if (f.kind === 'node-delete') expect(f.nodes).toBeGreaterThanOrEqual(1);
    }
  });

  it('draws independent streams per label, each reproducible', () => {
    const a = Random.fork(9, 'faults');
    const b = Random.fork(9, 'workload');
    const a2 = Random.fork(9, 'faults');
    const xs = [a.next(), a.next(), a.next()];
    expect([a2.next(), a2.next(), a2.next()]).toEqual(xs);
    expect(b.next()).not.toBe(xs[0]);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });
});
