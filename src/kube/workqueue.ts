// A keyed work queue with controller-runtime's contract: a key is queued at most once (dedupe),
// never processed by two workers at once (a key added while it is processing is queued again
// when it finishes), failures back off exponentially per key, and reconcilers may ask to be
// called again after a delay. Reconcilers therefore only need to be idempotent.
import type { Logger } from '../log.ts';
import { spent, yieldToEventLoop } from './slice.ts';

export interface ReconcileResult {
  /** Call again after this many milliseconds even if nothing changes (time-based logic). */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string, signal: AbortSignal) => Promise<ReconcileResult | void>;

export interface WorkQueueOptions {
  name: string;
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /**
   * A key is not started again sooner than this after its last start; adds meanwhile wait for the
   * rest of it (and, queued once, are one run). 0 (default) runs a key again as soon as it is added.
   * A function is asked per add, so a reconciler can space out a key whose runs have grown costly.
   */
  minIntervalMs?: number | ((key: string) => number);
  logger: Logger;
  /** Observes depth and outcomes (metrics). */
  onDepth?: (depth: number) => void;
  onResult?: (result: 'success' | 'error' | 'requeue', key: string, error?: unknown) => void;
}

export class WorkQueue {
  readonly name: string;
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys added while being processed: queued again once their current run ends. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly due = new Map<string, number>();
  /**
   * When each key last started (only with minIntervalMs), on the monotonic clock: read from a wall
   * clock stepped back, the interval would hold a key for as long as the step.
   */
  private readonly started = new Map<string, number>();
  private readonly opts: Required<Omit<WorkQueueOptions, 'onDepth' | 'onResult'>> &
    Pick<WorkQueueOptions, 'onDepth' | 'onResult'>;
  /**
   * Idle workers, first come first woken: each key added wakes one. Waking them all (32 on the
   * Instance queue) sent all but one back to sleep, a new promise each, for every key of a burst.
   */
  private readonly idle: (() => void)[] = [];

  constructor(opts: WorkQueueOptions) {
    this.name = opts.name;
    this.opts = { concurrency: 4, baseDelayMs: 500, maxDelayMs: 5 * 60_000, minIntervalMs: 0, ...opts };
  }

  add(key: string): void {
    const interval =
      typeof this.opts.minIntervalMs === 'function' ? this.opts.minIntervalMs(key) : this.opts.minIntervalMs;
    const wait = interval - (performance.now() - (this.started.get(key) ?? -Infinity));
    if (wait > 0 && !this.processing.has(key)) return this.addAfter(key, wait);
    const timer = this.timers.get(key);
    if (timer) {
      clearTimeout(timer);
      this.timers.delete(key);
      this.due.delete(key);
    }
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.opts.onDepth?.(this.queue.length);
    this.idle.shift()?.();
  }

  /** Adds the key after `ms`; of several scheduled adds of one key, the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (ms <= 0) return this.add(key);
    if (this.queued.has(key)) return;
    const at = performance.now() + ms;
    const pending = this.timers.get(key);
    if (pending && (this.due.get(key) ?? Infinity) <= at) return;
    clearTimeout(pending);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.due.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, timer);
    this.due.set(key, at);
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Processes keys until `signal` aborts; then waits for in-flight reconciles to finish. */
  async run(reconcile: Reconcile, signal: AbortSignal): Promise<void> {
    const workers = Array.from({ length: this.opts.concurrency }, () => this.worker(reconcile, signal));
    const onAbort = () => {
      for (const wake of this.idle.splice(0)) wake();
    };
    signal.addEventListener('abort', onAbort);
    await Promise.all(workers);
    signal.removeEventListener('abort', onAbort);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.due.clear();
  }

  private async next(signal: AbortSignal): Promise<string | undefined> {
    while (!signal.aborted) {
      const key = this.queue.shift();
      if (key !== undefined) {
        this.queued.delete(key);
        // Processing from this very tick: the worker resumes only a few microtasks later, and an add
        // in between (a watch delivers one event per microtask) would otherwise queue the key for a
        // second worker, running two reconciles of one key at once.
        this.processing.add(key);
        this.opts.onDepth?.(this.queue.length);
        return key;
      }
      // A worker woken for a key another took first (one finishing its reconcile) waits again.
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
    return undefined;
  }

  private async worker(reconcile: Reconcile, signal: AbortSignal): Promise<void> {
    for (;;) {
      // A reconcile that awaits no real I/O ends in a microtask, and the next key would start in
      // the same macrotask: a resync of thousands of keys would hold the thread until the last.
      if (spent()) await yieldToEventLoop();
      const key = await this.next(signal);
      if (key === undefined) return;
      if (this.opts.minIntervalMs !== 0) this.started.set(key, performance.now());
      try {
        const result = await reconcile(key, signal);
        this.failures.delete(key);
        if (result?.requeueAfterMs !== undefined) {
          this.opts.onResult?.('requeue', key);
          this.finish(key);
          this.addAfter(key, result.requeueAfterMs);
        } else {
          this.opts.onResult?.('success', key);
          this.finish(key);
        }
      } catch (e) {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        const delay = Math.min(this.opts.baseDelayMs * 2 ** (n - 1), this.opts.maxDelayMs);
        this.opts.onResult?.('error', key, e);
        this.opts.logger.warn(
          { queue: this.name, key, attempt: n, retryInMs: delay, err: e },
          'reconcile failed; retrying with backoff',
        );
        this.finish(key);
        if (!signal.aborted) this.addAfter(key, delay);
      }
    }
  }

  private finish(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }
}
