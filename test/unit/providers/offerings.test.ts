import { describe, expect, it } from 'vitest';
import { InsufficientCapacityError, ThrottledError } from '../../../providers/errors.ts';
import { launchFirstAvailable, offerings, UnavailableOfferings } from '../../../providers/offerings.ts';
import type { InstanceClass } from '../../../src/api/types.ts';

const cls = (instanceTypes: string[], zones?: string[]): InstanceClass => ({
  metadata: { name: 'c' },
  spec: { instanceTypes, zones, simulated: {} },
});

describe('offerings', () => {
  it('orders by instance type first, then zone', () => {
    expect(offerings(cls(['a', 'b'], ['z1', 'z2']))).toEqual([
      { instanceType: 'a', zone: 'z1' },
      { instanceType: 'a', zone: 'z2' },
      { instanceType: 'b', zone: 'z1' },
      { instanceType: 'b', zone: 'z2' },
    ]);
    expect(offerings(cls(['a']))).toEqual([{ instanceType: 'a' }]);
    expect(offerings(cls(['a']), ['d1'])).toEqual([{ instanceType: 'a', zone: 'd1' }]);
  });

  it("keeps only the zones an Instance needs, in the class's order, and none when the class offers none of them", () => {
    expect(offerings(cls(['a', 'b'], ['z1', 'z2', 'z3']), [], ['z3', 'z2'])).toEqual([
      { instanceType: 'a', zone: 'z2' },
      { instanceType: 'a', zone: 'z3' },
      { instanceType: 'b', zone: 'z2' },
      { instanceType: 'b', zone: 'z3' },
    ]);
    expect(offerings(cls(['a']), ['d1', 'd2'], ['d2'])).toEqual([{ instanceType: 'a', zone: 'd2' }]);
    // The provider chooses zones: the needed ones are asked for by name.
    expect(offerings(cls(['a']), [], ['z9'])).toEqual([{ instanceType: 'a', zone: 'z9' }]);
    expect(offerings(cls(['a'], ['z1']), [], ['z9'])).toEqual([]);
  });

  it('falls through capacity errors and remembers them until the TTL passes', async () => {
    let now = 0;
    const unavailable = new UnavailableOfferings(1_000, () => now);
    const tried: string[] = [];
    const launch = async (o: { instanceType: string }) => {
      tried.push(o.instanceType);
      if (o.instanceType === 'a') throw new InsufficientCapacityError('none');
      return o.instanceType;
    };
    expect(await launchFirstAvailable(offerings(cls(['a', 'b'])), unavailable, launch)).toBe('b');
    expect(await launchFirstAvailable(offerings(cls(['a', 'b'])), unavailable, launch)).toBe('b');
    expect(tried).toEqual(['a', 'b', 'b']);
    now = 1_001;
    await launchFirstAvailable(offerings(cls(['a', 'b'])), unavailable, launch);
    expect(tried).toEqual(['a', 'b', 'b', 'a', 'b']);
  });

  it('stops at the first error that is not about capacity', async () => {
    const unavailable = new UnavailableOfferings();
    await expect(
      launchFirstAvailable(offerings(cls(['a', 'b'])), unavailable, async () => {
        throw new ThrottledError('slow down');
      }),
    ).rejects.toBeInstanceOf(ThrottledError);
    expect(unavailable.isUnavailable({ instanceType: 'a' })).toBe(false);
  });

  it('reports every offering when none has capacity', async () => {
    const err = await launchFirstAvailable(offerings(cls(['a', 'b'])), new UnavailableOfferings(), async () => {
      throw new InsufficientCapacityError('none');
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientCapacityError);
    expect((err as InsufficientCapacityError).offerings).toHaveLength(2);
    expect((err as Error).message).toMatch(/a\/\*.*b\/\*/);
  });
});
