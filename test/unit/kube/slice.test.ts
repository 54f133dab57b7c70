// Time slices: a loop learns when it has held the thread long enough, and yielding starts a new slice.
import { describe, expect, it } from 'vitest';
import { SLICE_MS, spent, yieldToEventLoop } from '../../../src/kube/slice.ts';

const busy = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

describe('time slices', () => {
  it('says a stretch is spent after SLICE_MS, and starts a new slice once the event loop had a turn', async () => {
    await yieldToEventLoop();
    expect(spent()).toBe(false);
    busy(SLICE_MS + 1);
    expect(spent()).toBe(true);
    await Promise.resolve(); // a microtask is no turn of the event loop
    expect(spent()).toBe(true);
    await yieldToEventLoop();
    expect(spent()).toBe(false);
  });

  it('lets a timer due meanwhile run before the loop goes on', async () => {
    await yieldToEventLoop();
    let fired = false;
    setTimeout(() => (fired = true), 0);
    let before = -1;
    for (let i = 0; i < 100; i++) {
      busy(1);
      if (spent()) {
        before = i;
        await yieldToEventLoop();
        break;
      }
    }
    // Within a few slices' worth of 1 ms items (wall time: a loaded machine preempts), not at the end.
    expect(before).toBeGreaterThanOrEqual(0);
    expect(before).toBeLessThan(50);
    expect(fired).toBe(true);
  });
});
