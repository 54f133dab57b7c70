import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../../../providers/aws/batch.ts';
import { serial } from '../../../../providers/gce/provider.ts';

describe('grouping of createInstances per group', () => {
  it('launches arriving while a call is in flight share the next call; a lone one goes at once', async () => {
    const calls: string[][] = [];
    let release!: () => void;
    const firstDone = new Promise<void>((r) => (release = r));
    const c = new Coalescer<string, true>({
      gate: serial(),
      take: (waiting) => Math.min(waiting.length, 3),
      serve: async (names) => {
        calls.push(names);
        if (calls.length === 1) await firstDone;
        return names.map(() => true as const);
      },
      retry: (_n, e) => Promise.reject(e),
    });
    const first = c.submit('mig', 'a');
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toEqual([['a']]);
    const rest = ['b', 'c', 'd', 'e'].map((n) => c.submit('mig', n));
    await new Promise((r) => setTimeout(r, 10));
    // Still one call: the rest wait for the group's gate.
    expect(calls).toHaveLength(1);
    release();
    await Promise.all([first, ...rest]);
    // At most 3 per call (maxGroupSize), in arrival order.
    expect(calls).toEqual([['a'], ['b', 'c', 'd'], ['e']]);
  });

  it('a failed call does not block the calls after it', async () => {
    const run = serial();
    await expect(run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(run(() => Promise.resolve(7))).resolves.toBe(7);
  });
});
