// Fencing: a replica that lost its lease must stop writing at once, even from reconciles and cloud
// calls already under way. Every writer and provider handed to the controllers goes through a fence
// that refuses the call unless the current leadership term is still alive, and again just before
// each of its requests leaves (recheckFence): a write may wait seconds in a client-side rate limit
// or a launch batch, long enough for the term to end and another replica to lead.
import { AsyncLocalStorage } from 'node:async_hooks';

const fenced = new AsyncLocalStorage<(what: string) => void>();

/**
 * Throws NotLeaderError if the request about to leave belongs to a guarded call and this replica
 * no longer leads; nothing outside a guarded call (reads, the lease itself, the webhook). Called
 * where requests leave a queue: the API client's rate limit, a cloud API's token bucket or launch
 * batch. It asks the fence's current term: a replica that loses its lease exits (no later term of
 * this process could let an older write through), and a timer or batch that carries some call's
 * context into later work is never refused for an old term.
 */
export function recheckFence(what: string): void {
  fenced.getStore()?.(what);
}

/** Thrown instead of writing when this replica is not (or no longer) the leader. */
export class NotLeaderError extends Error {
  override name = 'NotLeaderError';
}

export class LeadershipFence {
  private term: AbortSignal = AbortSignal.abort();
  private validUntil: () => number = () => Infinity;

  /**
   * Leadership began; `signal` aborts when it ends, and it ends at `validUntil()` (performance.now())
   * at the latest. The clock is read too: the abort comes from a timer, and a process frozen past
   * its deadline (a paused VM) runs the cloud and API replies it thawed with before any timer.
   */
  begin(signal: AbortSignal, validUntil: () => number = () => Infinity): void {
    this.term = signal;
    this.validUntil = validUntil;
  }

  /** Throws unless this replica leads now. */
  check(what: string): void {
    if (this.term.aborted || performance.now() >= this.validUntil())
      throw new NotLeaderError(`not the leader (any more): refusing to ${what}`);
  }

  /**
   * `target` with the named methods (every method when `only` is omitted) refusing to run outside a
   * leadership term. Reads may be left out: they cannot harm.
   */
  guard<T extends object>(target: T, label: string, only?: readonly (keyof T & string)[]): T {
    const check = (what: string) => this.check(what);
    return new Proxy(target, {
      get(t, prop, receiver) {
        const value = Reflect.get(t, prop, receiver) as unknown;
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        if (only && !only.includes(prop as keyof T & string)) return value.bind(t);
        return (...args: unknown[]) => {
          const what = `${label}.${prop}`;
          check(what);
          return fenced.run(
            (request) => check(`${what} (${request})`),
            () => (value as (...a: unknown[]) => unknown).apply(t, args),
          );
        };
      },
    });
  }
}
