// Client-side shaping to EC2's request token buckets ("Request throttling for the Amazon EC2 API"):
// throttling is per account and Region and shared with every other caller, so ipp spends tokens at
// the rate EC2 refills them instead of discovering the limit through RequestLimitExceeded.
// One p-queue per API family keeps calls in arrival order; each call first takes a token.
import PQueue from 'p-queue';

export type ApiFamily = 'run' | 'terminate' | 'tags' | 'describe';

export interface BucketShape {
  /** Tokens available at once (EC2: "max capacity"). */
  burst: number;
  /** Tokens added per second. */
  perSecond: number;
}

/** EC2's published buckets (RunInstances request tokens, TerminateInstances, CreateTags, non-mutating). */
export const EC2_BUCKETS: Record<ApiFamily, BucketShape> = {
  run: { burst: 5, perSecond: 2 },
  terminate: { burst: 100, perSecond: 5 },
  tags: { burst: 100, perSecond: 10 },
  describe: { burst: 100, perSecond: 20 },
};

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** A token bucket: pure arithmetic on a clock, so its shape is testable without waiting. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly shape: BucketShape;
  private readonly clock: Clock;
  constructor(shape: BucketShape, clock: Clock = realClock) {
    this.shape = shape;
    this.clock = clock;
    this.tokens = shape.burst;
    this.last = clock.now();
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.shape.burst, this.tokens + ((now - this.last) / 1000) * this.shape.perSecond);
    this.last = now;
  }

  /** Takes `n` tokens now if there are enough; otherwise says how long until there will be. */
  tryTake(n = 1): { ok: true } | { ok: false; waitMs: number } {
    this.refill();
    if (this.tokens >= n) {
      this.tokens -= n;
      return { ok: true };
    }
    return { ok: false, waitMs: Math.ceil(((n - this.tokens) / this.shape.perSecond) * 1000) };
  }

  async take(n = 1): Promise<void> {
    for (;;) {
      const r = this.tryTake(n);
      if (r.ok) return;
      await this.clock.sleep(r.waitMs);
    }
  }
}

export class RateLimits {
  private readonly queues = new Map<ApiFamily, { queue: PQueue; bucket: TokenBucket }>();
  constructor(shapes: Partial<Record<ApiFamily, BucketShape>> = {}, clock: Clock = realClock) {
    for (const family of Object.keys(EC2_BUCKETS) as ApiFamily[]) {
      const shape = shapes[family] ?? EC2_BUCKETS[family];
      // Concurrency bounds sockets and keeps order; the bucket bounds the rate.
      this.queues.set(family, {
        queue: new PQueue({ concurrency: Math.max(1, Math.min(8, shape.burst)) }),
        bucket: new TokenBucket(shape, clock),
      });
    }
  }

  /** Runs `call` once a token of `family` is available. */
  schedule<T>(family: ApiFamily, call: () => Promise<T>): Promise<T> {
    const q = this.queues.get(family)!;
    return q.queue.add(async () => {
      await q.bucket.take();
      return call();
    });
  }

  /** Calls waiting for a token, per family (a metric and a test hook). */
  pending(family: ApiFamily): number {
    const q = this.queues.get(family)!;
    return q.queue.size + q.queue.pending;
  }
}
