// Coalescing of identical calls: requests that arrive while the API family's queue waits for a token
// are served by the one call that gets the next token (RunInstances MinCount 1 / MaxCount n, one
// DescribeInstances for n lookups). Nothing waits for a batch to fill: an idle queue serves a lone
// request at once, and batches grow only when EC2's token bucket is the bottleneck anyway.
//
// Idempotency of a grouped RunInstances (see provider.ts): the ClientToken is derived from the
// members' UIDs in launch-index order, every instance carries the tag ipp.dev/launch-group listing
// the members in that order, and its boot script picks its Instance by its EC2 launch index. So
// instance #k belongs to member #k whatever happens next: the per-instance tags are written after
// launch, and a controller killed before that adopts the instance on the member's next create()
// instead of launching another.

export interface CoalescerOptions<Req, Res> {
  /** Runs `fn` when the family's queue has a token for it (RateLimits.schedule). */
  gate<T>(fn: () => Promise<T>): Promise<T>;
  /** How many of the waiting requests (in arrival order, ≥1 of them) one call serves. */
  take(waiting: Req[]): number;
  /** The first attempt, inside the gate: one result per member (an Error rejects that member only). */
  serve(members: Req[]): Promise<(Res | Error)[]>;
  /** Retryable failure of the first attempt: further attempts, each through the gate again. */
  retry(members: Req[], error: unknown): Promise<(Res | Error)[]>;
}

interface Waiter<Req, Res> {
  req: Req;
  resolve(r: Res): void;
  reject(e: unknown): void;
}

export class Coalescer<Req, Res> {
  private readonly waiting = new Map<string, Waiter<Req, Res>[]>();
  private readonly gated = new Set<string>();
  private readonly opts: CoalescerOptions<Req, Res>;
  constructor(opts: CoalescerOptions<Req, Res>) {
    this.opts = opts;
  }

  /** Requests with the same key may share one call; different keys never do. */
  submit(key: string, req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const list = this.waiting.get(key) ?? [];
      list.push({ req, resolve, reject });
      this.waiting.set(key, list);
      this.arm(key);
    });
  }

  private arm(key: string): void {
    if (this.gated.has(key)) return;
    this.gated.add(key);
    let members: Waiter<Req, Res>[] = [];
    this.opts
      .gate(async (): Promise<{ ok: (Res | Error)[] } | { error: unknown }> => {
        // Let the requests of the same tick (a burst of reconciles) join before choosing members.
        await new Promise((r) => setImmediate(r));
        this.gated.delete(key);
        const list = this.waiting.get(key) ?? [];
        const n = Math.max(1, Math.min(list.length, this.opts.take(list.map((w) => w.req))));
        members = list.splice(0, n);
        if (list.length) this.arm(key);
        else this.waiting.delete(key);
        if (!members.length) return { ok: [] as (Res | Error)[] };
        try {
          return { ok: await this.opts.serve(members.map((w) => w.req)) };
        } catch (error) {
          return { error };
        }
      })
      .then(async (first): Promise<(Res | Error)[]> =>
        'ok' in first
          ? first.ok
          : this.opts.retry(
              members.map((w) => w.req),
              first.error,
            ),
      )
      .then((results) =>
        members.forEach((w, i) => {
          const r = results[i];
          if (r instanceof Error) w.reject(r);
          else if (r === undefined)
            w.reject(new Error('internal: the batched call returned fewer results than members'));
          else w.resolve(r);
        }),
      )
      .catch((e: unknown) => members.forEach((w) => w.reject(e)));
  }
}
