// The client-side rate limit's two lanes: placement writes take the next token before ordinary requests.
import { describe, expect, it } from 'vitest';
import { inPlacementLane, laneOfCaller, LaneLimiter, type Lane } from '../../../src/kube/lanes.ts';

/** A limiter on a hand-turned clock: `tick(ms)` advances it and runs the release it scheduled. */
function limiter(qps: number, burst: number) {
  let now = 0;
  const timers: { at: number; run: () => void }[] = [];
  const l = new LaneLimiter(
    { qps, burst },
    () => now,
    (run, ms) => timers.push({ at: now + ms, run }),
  );
  const order: string[] = [];
  const request = (lane: Lane, name: string) => void l.acquire(lane).then(() => order.push(name));
  const tick = async (ms: number) => {
    now += ms;
    const due = timers.filter((x) => x.at <= now);
    timers.splice(0, timers.length, ...timers.filter((x) => x.at > now));
    for (const t of due) t.run();
    await Promise.resolve();
    await Promise.resolve();
  };
  return { l, order, request, tick };
}

describe('LaneLimiter', () => {
  it('lets a burst through at once, then one request per 1/QPS, in arrival order within a lane', async () => {
    const { order, request, tick } = limiter(10, 2);
    for (const n of ['a', 'b', 'c', 'd']) request('ordinary', n);
    await tick(0);
    expect(order).toEqual(['a', 'b']);
    await tick(100);
    expect(order).toEqual(['a', 'b', 'c']);
    await tick(100);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
  });

  it('gives the next token to a placement write that arrived after ordinary requests already waiting', async () => {
    const { l, order, request, tick } = limiter(10, 1);
    for (const n of ['status-1', 'status-2', 'event-1']) request('ordinary', n);
    request('placement', 'pin');
    await tick(0);
    expect(order).toEqual(['status-1']);
    expect(l.waiting()).toEqual({ placement: 1, ordinary: 2 });
    await tick(100);
    expect(order).toEqual(['status-1', 'pin']);
    await tick(100);
    await tick(100);
    expect(order).toEqual(['status-1', 'pin', 'status-2', 'event-1']);
  });

  it('never lets the lanes together exceed the bucket: a placement write waits for a token too', async () => {
    const { order, request, tick } = limiter(10, 1);
    request('placement', 'pin-1');
    request('placement', 'pin-2');
    await tick(0);
    expect(order).toEqual(['pin-1']);
    await tick(50);
    expect(order).toEqual(['pin-1']);
    await tick(50);
    expect(order).toEqual(['pin-1', 'pin-2']);
  });

  it('never limits with QPS 0', async () => {
    const { order, request, tick } = limiter(0, 1);
    for (let i = 0; i < 100; i++) request('ordinary', String(i));
    await tick(0);
    expect(order).toHaveLength(100);
  });
});

describe('inPlacementLane', () => {
  it('puts every request made inside it, across awaits, in the placement lane, and no other', async () => {
    expect(laneOfCaller()).toBe('ordinary');
    const seen = await inPlacementLane(async () => {
      const first = laneOfCaller();
      await new Promise((r) => setTimeout(r, 1));
      return [first, laneOfCaller()];
    });
    expect(seen).toEqual(['placement', 'placement']);
    expect(laneOfCaller()).toBe('ordinary');
  });
});
