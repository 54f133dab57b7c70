import { describe, expect, it } from 'vitest';
import { RateLimits, TokenBucket, type Clock } from '../../../../providers/aws/ratelimit.ts';

function fakeClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

describe('TokenBucket', () => {
  it('allows the burst at once, then the refill rate (RunInstances: 5, then 2 per second)', () => {
    const clock = fakeClock();
    const b = new TokenBucket({ burst: 5, perSecond: 2 }, clock);
    for (let i = 0; i < 5; i++) expect(b.tryTake().ok).toBe(true);
    expect(b.tryTake()).toEqual({ ok: false, waitMs: 500 });
    clock.t += 500;
    expect(b.tryTake().ok).toBe(true);
    clock.t += 60_000;
    for (let i = 0; i < 5; i++) expect(b.tryTake().ok).toBe(true);
    expect(b.tryTake().ok).toBe(false);
  });
});

describe('RateLimits', () => {
  it('spaces calls of a family to its bucket and leaves other families alone', async () => {
    const clock = fakeClock();
    const limits = new RateLimits({ run: { burst: 2, perSecond: 1 } }, clock);
    const at: number[] = [];
    await Promise.all(
      [1, 2, 3, 4].map(() =>
        limits.schedule('run', async () => {
          at.push(clock.now());
        }),
      ),
    );
    expect(at.slice(0, 2)).toEqual([0, 0]);
    expect(Math.max(...at)).toBeGreaterThanOrEqual(2000);
    const before = clock.now();
    await limits.schedule('describe', async () => undefined);
    expect(clock.now()).toBe(before);
  });
});
