// Status writes of ours that the informer has not shown us yet (client-go's "expectations", as the
// provisioning controller keeps for its claims). A reconcile woken by a pod or node event right after
// our write still reads the Instance as it was before it: it would decide the same transition again
// (a second launch and Launched Event, "node is Ready" twice, readyAt moved to a later time) and, a
// merge patch having no precondition, write it again without anyone noticing. Until the cache moves
// past the version our last write was decided on, such a reconcile decides nothing.
import type { Instance } from '../../api/types.ts';

/** A lost watch event must not wedge an Instance: past this, the cache is believed again. */
export const STATUS_EXPECTATION_TIMEOUT_MS = 30_000;

export interface StatusExpectation {
  /** The Instance written (a new one of the same name is another object). */
  uid: string | undefined;
  /** The version the write was decided on: the cache showing it has not seen the write yet. */
  decidedOn: string | undefined;
  /** When the write succeeded. */
  at: number;
}

/**
 * How long a reconcile of `inst` as cached must still wait for our own write to show, or 0 when the
 * cache has caught up (another version or another object) or the wait has lasted long enough.
 */
export function awaitingOwnWrite(expected: StatusExpectation | undefined, inst: Instance, now: number): number {
  if (!expected) return 0;
  if (inst.metadata.uid !== expected.uid || inst.metadata.resourceVersion !== expected.decidedOn) return 0;
  return Math.max(0, expected.at + STATUS_EXPECTATION_TIMEOUT_MS - now);
}

/** Instance name → the status write of ours the cache does not show yet. */
export class StatusExpectations {
  private readonly pending = new Map<string, StatusExpectation>();

  /**
   * Our status write of `inst` (as read from the cache) succeeded. `written` is the version the API
   * server answered with, when known: the same version as read means the write changed nothing
   * (no watch event will come), so there is nothing to wait for.
   */
  wrote(inst: Instance, now: number, written?: string | void): void {
    const name = inst.metadata.name!;
    const decidedOn = inst.metadata.resourceVersion;
    if (written !== undefined && written === decidedOn) {
      this.pending.delete(name);
      return;
    }
    this.pending.set(name, { uid: inst.metadata.uid, decidedOn, at: now });
  }

  /** See awaitingOwnWrite; forgets the write once the cache shows it (or the wait is over). */
  awaiting(inst: Instance, now: number): number {
    const name = inst.metadata.name!;
    const wait = awaitingOwnWrite(this.pending.get(name), inst, now);
    if (wait === 0) this.pending.delete(name);
    return wait;
  }

  /** The Instance is gone. */
  forget(name: string): void {
    this.pending.delete(name);
  }

  get size(): number {
    return this.pending.size;
  }
}
