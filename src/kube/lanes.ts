// The client-side rate limit, in two lanes. The writes that put a waiting pod on its node (the claim,
// the take from the warm pool, the pin, the bind) are a handful per pod and are what a user waits
// for; everything else the controller sends (status writes, Events, Instance creates of cold
// launches and pool refills) can wait a second without anyone noticing. Under one FIFO bucket a warm
// hit's pin queued behind a burst of refills and status writes: 2.9/5.6 s p50/p95 pod created →
// Running at --kube-api-qps 50 against 3 s wanted. Here a placement write takes the next token before
// any ordinary request; both lanes share one bucket, so the API server still never sees more than the
// configured QPS and burst.
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RateLimit {
  /** Sustained requests per second; 0 or less disables the limit. */
  qps: number;
  /** Requests that may go at once after a quiet period. */
  burst: number;
}

/** `placement`: a write that places a waiting pod; `ordinary`: every other request. */
export type Lane = 'placement' | 'ordinary';

const current = new AsyncLocalStorage<Lane>();

/**
 * Runs `write` with every API request it makes in the placement lane. Only for the few writes that
 * put a pod on its node: a lane everyone uses is no lane.
 */
export function inPlacementLane<T>(write: () => Promise<T>): Promise<T> {
  return current.run('placement', write);
}

/** The lane of the request being made now (from the async context of its caller). */
export const laneOfCaller = (): Lane => current.getStore() ?? 'ordinary';

type Schedule = (run: () => void, ms: number) => unknown;

/**
 * A token bucket with two queues: a request goes at once when a token is free and nobody of its
 * lane or a higher one waits; otherwise it queues, and each token as it accrues goes to the oldest
 * placement request, then to the oldest ordinary one. Within a lane, requests leave in arrival order.
 */
export class LaneLimiter {
  private tokens: number;
  private last: number;
  private readonly limit: RateLimit;
  private readonly now: () => number;
  private readonly schedule: Schedule;
  private readonly queues: Record<Lane, (() => void)[]> = { placement: [], ordinary: [] };
  private armed = false;

  constructor(limit: RateLimit, now: () => number = Date.now, schedule: Schedule = (run, ms) => setTimeout(run, ms)) {
    this.limit = { qps: limit.qps, burst: Math.max(1, limit.burst) };
    this.tokens = this.limit.burst;
    this.now = now;
    this.schedule = schedule;
    this.last = now();
  }

  /** Resolves when a request of `lane` may go. */
  acquire(lane: Lane): Promise<void> {
    if (this.limit.qps <= 0) return Promise.resolve();
    this.refill();
    const ahead = this.queues.placement.length + (lane === 'ordinary' ? this.queues.ordinary.length : 0);
    if (ahead === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.queues[lane].push(resolve);
      this.arm();
    });
  }

  /** Requests waiting in each lane. */
  waiting(): Record<Lane, number> {
    return { placement: this.queues.placement.length, ordinary: this.queues.ordinary.length };
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) * this.limit.qps) / 1000);
    this.last = now;
  }

  private release(): void {
    this.armed = false;
    this.refill();
    while (this.tokens >= 1) {
      const next = this.queues.placement.shift() ?? this.queues.ordinary.shift();
      if (!next) break;
      this.tokens -= 1;
      next();
    }
    this.arm();
  }

  private arm(): void {
    if (this.armed || (!this.queues.placement.length && !this.queues.ordinary.length)) return;
    this.armed = true;
    this.schedule(() => this.release(), Math.max(0, ((1 - this.tokens) * 1000) / this.limit.qps));
  }
}
