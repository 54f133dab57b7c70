// WorkQueue: dedupe, one reconcile per key at a time, per-key exponential backoff, requeueAfter,
// and a clean stop. Time is faked (setTimeout only), so nothing here depends on how loaded the machine is.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../../src/log.ts';
import { WorkQueue, type Reconcile, type WorkQueueOptions } from '../../../src/kube/workqueue.ts';

interface Warn {
  key: string;
  attempt: number;
  retryInMs: number;
}

function setup(opts: Partial<WorkQueueOptions> = {}) {
  const warns: Warn[] = [];
  const results: string[] = [];
  const logger = {
    warn: (o: Warn) => warns.push({ key: o.key, attempt: o.attempt, retryInMs: o.retryInMs }),
  } as unknown as Logger;
  const q = new WorkQueue({ name: 'test', logger, onResult: (r, key) => results.push(`${key}:${r}`), ...opts });
  return { q, warns, results };
}

/** Lets every pending promise callback run (real setImmediate: only setTimeout is faked). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A reconcile that records calls and how many runs of each key overlap. */
function recorder(body: (key: string, n: number) => Promise<unknown> | unknown = () => undefined) {
  const calls: string[] = [];
  const active = new Map<string, number>();
  let maxOverlap = 0;
  const reconcile: Reconcile = async (key) => {
    calls.push(key);
    const now = (active.get(key) ?? 0) + 1;
    active.set(key, now);
    maxOverlap = Math.max(maxOverlap, now);
    try {
      return (await body(key, calls.filter((k) => k === key).length)) as void;
    } finally {
      active.set(key, active.get(key)! - 1);
    }
  };
  return { reconcile, calls, maxOverlap: () => maxOverlap };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('WorkQueue', () => {
  it('queues a key at most once', async () => {
    const { q } = setup();
    const r = recorder();
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.depth).toBe(2);
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    await settle();
    expect(r.calls.sort()).toEqual(['a', 'b']);
    expect(q.depth).toBe(0);
    ac.abort();
    await done;
  });

  it('runs a key added while it is processing once more afterwards, never concurrently', async () => {
    const { q } = setup({ concurrency: 4 });
    const gate = deferred();
    const r = recorder(async (_key, n) => {
      if (n === 1) await gate.promise;
    });
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    q.add('a');
    await settle();
    expect(r.calls).toEqual(['a']);
    // Added twice while processing: held back (not queued for another worker), run once after.
    q.add('a');
    q.add('a');
    await settle();
    expect(q.depth).toBe(0);
    expect(r.calls).toEqual(['a']);
    gate.resolve();
    await settle();
    expect(r.calls).toEqual(['a', 'a']);
    expect(r.maxOverlap()).toBe(1);
    ac.abort();
    await done;
  });

  it('never runs a key in two workers when it is added again in the microtasks after it is dequeued', async () => {
    const { q } = setup({ concurrency: 2 });
    const gate = deferred();
    const r = recorder(() => gate.promise);
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    await settle();
    // A watch stream hands over one event per microtask: each wakes the same class again while the
    // first worker is still on its way from dequeuing the key to reconciling it.
    q.add('a');
    for (let i = 0; i < 5; i++) {
      await Promise.resolve();
      q.add('a');
    }
    await settle();
    expect(r.calls).toEqual(['a']);
    expect(r.maxOverlap()).toBe(1);
    gate.resolve();
    await settle();
    expect(r.maxOverlap()).toBe(1);
    ac.abort();
    await done;
  });

  it('with minIntervalMs, takes the adds that follow a run within the interval in one later run', async () => {
    // An interval far longer than a pause of this process on a loaded machine (80 ms once failed at
    // load average 24: the adds came after the interval had passed).
    const { q } = setup({ minIntervalMs: 1_000 });
    const r = recorder();
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    const t0 = Date.now();
    q.add('a');
    await settle();
    expect(r.calls).toEqual(['a']);
    // Three changes right after the run: one more run, once the interval is over.
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    await settle();
    expect(r.calls).toEqual(['a', 'b']);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await settle();
    expect(r.calls).toEqual(['a', 'b', 'a']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
    ac.abort();
    await done;
  });

  it('with minIntervalMs, runs a key again within the interval when the wall clock steps back an hour', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { q } = setup({ minIntervalMs: 50 });
    const r = recorder();
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    q.add('a');
    await settle();
    vi.setSystemTime(Date.now() - 3_600_000);
    q.add('a');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await settle();
    expect(r.calls).toEqual(['a', 'a']);
    ac.abort();
    await done;
  });

  it('asks a minIntervalMs function per key, so one key can be spaced out and another not', async () => {
    const { q } = setup({ minIntervalMs: (key) => (key === 'slow' ? 1_000 : 0) });
    const r = recorder();
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    q.add('slow');
    q.add('fast');
    await settle();
    q.add('slow');
    q.add('fast');
    await settle();
    expect(r.calls).toEqual(['slow', 'fast', 'fast']);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await settle();
    expect(r.calls).toEqual(['slow', 'fast', 'fast', 'slow']);
    ac.abort();
    await done;
  });

  it('processes different keys in parallel up to the concurrency', async () => {
    const { q } = setup({ concurrency: 2 });
    const gate = deferred();
    const r = recorder(() => gate.promise);
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    for (const k of ['a', 'b', 'c']) q.add(k);
    await settle();
    expect(r.calls).toEqual(['a', 'b']);
    expect(q.depth).toBe(1);
    gate.resolve();
    await settle();
    expect(r.calls).toEqual(['a', 'b', 'c']);
    ac.abort();
    await done;
  });

  it('backs off exponentially per key on errors, capped at maxDelayMs, and resets after a success', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { q, warns, results } = setup({ baseDelayMs: 100, maxDelayMs: 350 });
    let failUntil = 4;
    const r = recorder((key, n) => {
      if (key === 'a' && n <= failUntil) throw new Error(`attempt ${n} failed`);
    });
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    const attempts = () => r.calls.filter((k) => k === 'a').length;
    q.add('a');
    await settle();
    expect(attempts()).toBe(1);

    for (const [delay, after] of [
      [100, 2],
      [200, 3],
      [350, 4],
      [350, 5],
    ] as const) {
      await vi.advanceTimersByTimeAsync(delay - 1);
      await settle();
      expect(attempts()).toBe(after - 1);
      await vi.advanceTimersByTimeAsync(1);
      await settle();
      expect(attempts()).toBe(after);
    }
    expect(warns.filter((w) => w.key === 'a')).toEqual([
      { key: 'a', attempt: 1, retryInMs: 100 },
      { key: 'a', attempt: 2, retryInMs: 200 },
      { key: 'a', attempt: 3, retryInMs: 350 },
      { key: 'a', attempt: 4, retryInMs: 350 },
    ]);
    expect(results.filter((x) => x.startsWith('a:'))).toEqual([
      'a:error',
      'a:error',
      'a:error',
      'a:error',
      'a:success',
    ]);

    // A later failure starts again from baseDelayMs.
    failUntil = 6;
    q.add('a');
    await settle();
    expect(warns.at(-1)).toEqual({ key: 'a', attempt: 1, retryInMs: 100 });
    ac.abort();
    await done;
  });

  it('does not hold other keys back while one key backs off', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { q } = setup({ baseDelayMs: 10_000 });
    const r = recorder((key) => {
      if (key === 'bad') throw new Error('always');
    });
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    q.add('bad');
    await settle();
    q.add('good');
    q.add('other');
    await settle();
    expect(r.calls).toEqual(['bad', 'good', 'other']);
    ac.abort();
    await done;
  });

  it('re-adds a key requeueAfterMs after a reconcile asks for it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { q, results } = setup();
    const r = recorder((_key, n) => (n === 1 ? { requeueAfterMs: 1000 } : undefined));
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    q.add('a');
    await settle();
    expect(r.calls).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(999);
    await settle();
    expect(r.calls).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(r.calls).toEqual(['a', 'a']);
    expect(results).toEqual(['a:requeue', 'a:success']);
    // Nothing further was scheduled.
    await vi.advanceTimersByTimeAsync(10_000);
    await settle();
    expect(r.calls).toHaveLength(2);
    ac.abort();
    await done;
  });

  it('runs a key at once when it is added while a requeue is pending, and only once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { q } = setup();
    const r = recorder((_key, n) => (n === 1 ? { requeueAfterMs: 1000 } : undefined));
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    q.add('a');
    await settle();
    q.add('a');
    await settle();
    expect(r.calls).toEqual(['a', 'a']);
    await vi.advanceTimersByTimeAsync(5000);
    await settle();
    expect(r.calls).toEqual(['a', 'a']);
    ac.abort();
    await done;
  });

  it('addAfter adds the key after the delay, and at once for a delay of 0', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { q } = setup();
    const r = recorder();
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    q.addAfter('later', 500);
    q.addAfter('now', 0);
    await settle();
    expect(r.calls).toEqual(['now']);
    await vi.advanceTimersByTimeAsync(500);
    await settle();
    expect(r.calls).toEqual(['now', 'later']);
    ac.abort();
    await done;
  });

  it('run() returns once the signal aborts and in-flight reconciles have finished', async () => {
    const { q } = setup({ concurrency: 2 });
    const gate = deferred();
    let seenSignal: AbortSignal | undefined;
    const r = recorder(() => gate.promise);
    const ac = new AbortController();
    let returned = false;
    const done = q
      .run(async (key, signal) => {
        seenSignal = signal;
        return r.reconcile(key, signal);
      }, ac.signal)
      .then(() => {
        returned = true;
      });
    q.add('a');
    await settle();
    ac.abort();
    await settle();
    expect(seenSignal?.aborted).toBe(true);
    expect(returned).toBe(false);
    q.add('b');
    gate.resolve();
    await done;
    expect(returned).toBe(true);
    // Keys added after the stop are not processed.
    expect(r.calls).toEqual(['a']);
  });

  it('run() leaves no retry timer behind after a failure during the stop, and returns at once when idle', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { q } = setup({ baseDelayMs: 1 });
    const gate = deferred();
    const r = recorder(async () => {
      await gate.promise;
      throw new Error('failed while stopping');
    });
    const ac = new AbortController();
    const done = q.run(r.reconcile, ac.signal);
    q.add('a');
    await settle();
    ac.abort();
    gate.resolve();
    await done;
    await vi.advanceTimersByTimeAsync(1000);
    expect(vi.getTimerCount()).toBe(0);
    expect(r.calls).toEqual(['a']);

    const idle = setup().q;
    const ac2 = new AbortController();
    const done2 = idle.run(r.reconcile, ac2.signal);
    ac2.abort();
    await done2;
  });

  it('lets the event loop run between reconciles that await no I/O, so a resync of thousands of keys cannot hold the thread', async () => {
    const { q } = setup({ concurrency: 4 });
    const ac = new AbortController();
    const done: string[] = [];
    let timerSawDone = -1;
    const run = q.run(async (key) => {
      const until = performance.now() + 1;
      while (performance.now() < until); // a reconcile that only reads the cache
      done.push(key);
      if (done.length === 200) ac.abort();
    }, ac.signal);
    for (let i = 0; i < 200; i++) q.add(`k${i}`);
    setImmediate(() => (timerSawDone = done.length));
    await run;
    expect(done).toHaveLength(200);
    // The callback queued with the keys ran after a few slices' worth of reconciles, not after all.
    expect(timerSawDone).toBeGreaterThan(0);
    expect(timerSawDone).toBeLessThan(50);
  });
});
