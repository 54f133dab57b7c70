// Instance creates this process has sent that its cache does not show yet (client-go's
// "expectations", for creates), one record shared by the controllers that create Instances. The warm
// pool and provisioning both create Instances of a class, each deciding on its own cache: without the
// other's creates in flight, both would see room under spec.maxInstances for the same last instance.
import { kubeError } from '../kube/errors.ts';

/**
 * How long a create counts without the cache showing it. Long against watch lag, short enough that
 * a create that never landed (or was deleted before the cache saw it) does not hold a class back.
 */
export const CREATE_EXPECTATION_MS = 30_000;

export interface CreateInFlight {
  name: string;
  /** Created for the warm pool. */
  warm: boolean;
}

export class CreatesInFlight {
  private readonly byClass = new Map<string, Map<string, { warm: boolean; since: number }>>();

  /** Recorded before the request leaves: every decision made meanwhile counts it. */
  add(cls: string, name: string, warm: boolean, now: number): void {
    const of = this.byClass.get(cls) ?? new Map<string, { warm: boolean; since: number }>();
    this.byClass.set(cls, of);
    of.set(name, { warm, since: now });
  }

  /** The create never reached the API server, or was refused there: nothing to wait for. */
  drop(cls: string, name: string): void {
    this.byClass.get(cls)?.delete(name);
    if (this.byClass.get(cls)?.size === 0) this.byClass.delete(cls);
  }

  /**
   * After a create failed: a 4xx answer means it was not written; a timeout, a 5xx or a broken
   * connection may have written it, so it keeps counting until the cache shows it or time runs out.
   */
  failed(cls: string, name: string, err: unknown): void {
    const code = kubeError(err)?.code;
    if (code !== undefined && code >= 400 && code < 500) this.drop(cls, name);
  }

  /**
   * The class's creates the cache (`cached`) does not show yet; forgets those it shows, and expired
   * ones. A create expires only if the cache's watch has shown a sign of life since it was sent
   * (`silentForMs`, how long it has been quiet): while the watch is down (429s on watches, writes
   * still answered) a create it cannot show is still on its way, and forgetting it would refill the
   * pool again every CREATE_EXPECTATION_MS.
   */
  pending(cls: string, cached: (name: string) => boolean, now: number, silentForMs = 0): CreateInFlight[] {
    const of = this.byClass.get(cls);
    if (!of) return [];
    const out: CreateInFlight[] = [];
    for (const [name, { warm, since }] of of) {
      if (cached(name) || (now - since >= CREATE_EXPECTATION_MS && now - silentForMs > since)) of.delete(name);
      else out.push({ name, warm });
    }
    if (of.size === 0) this.byClass.delete(cls);
    return out;
  }
}
