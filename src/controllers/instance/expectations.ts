// Status writes of ours that the informer has not shown us yet (client-go's "expectations", as the
// provisioning controller keeps for its claims). A reconcile woken by a pod or node event right after
// our write still reads the Instance as it was before it: it would decide the same transition again
// (a second launch and Launched Event, "node is Ready" twice, readyAt moved to a later time) and, a
// merge patch having no precondition, write it again without anyone noticing. Until the cache moves
// past the version our last write was decided on, such a reconcile decides nothing.
import type { Instance } from '../../api/types.ts';
import { onlyStatusChanged } from '../../state/cluster.ts';

/** A lost watch event must not wedge an Instance: past this, the cache is believed again. */
export const STATUS_EXPECTATION_TIMEOUT_MS = 30_000;

export interface StatusExpectation {
  /** The Instance written (a new one of the same name is another object). */
  uid: string | undefined;
  /** The version the write was decided on: the cache showing it has not seen the write yet. */
  decidedOn: string | undefined;
  /** When the write succeeded. */
  at: number;
  /** The version the API server answered the write with, when known. */
  written?: string;
  /** A reconcile found the cache behind the write and waits for its watch event to run again. */
  deferred?: boolean;
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
    this.pending.set(name, { uid: inst.metadata.uid, decidedOn, at: now, ...(written ? { written } : {}) });
  }

  /** See awaitingOwnWrite; forgets the write once the cache shows it (or the wait is over). */
  awaiting(inst: Instance, now: number): number {
    const name = inst.metadata.name!;
    const expected = this.pending.get(name);
    const wait = awaitingOwnWrite(expected, inst, now);
    if (wait === 0) this.pending.delete(name);
    else expected!.deferred = true;
    return wait;
  }

  /**
   * Is this watch event (`old` → `next`) nothing but our own last status write, which no reconcile
   * waits for? It takes the Instance from the version that write was decided on to the version it
   * made: the reconcile that wrote it saw everything else, and asked for its own next run. Waking it
   * again (twice per Instance launched) would decide nothing new. Forgets the write: the cache shows it.
   */
  ownWriteShown(old: Instance, next: Instance): boolean {
    const name = next.metadata.name!;
    const expected = this.pending.get(name);
    if (
      !expected?.written ||
      expected.deferred ||
      expected.uid !== next.metadata.uid ||
      old.metadata.uid !== next.metadata.uid ||
      old.metadata.resourceVersion !== expected.decidedOn ||
      next.metadata.resourceVersion !== expected.written ||
      // A write that changed nothing is answered with the version it found: someone else's, if anything
      // but the status moved. (Compared last: this walks both objects.)
      !onlyStatusChanged(old, next)
    )
      return false;
    this.pending.delete(name);
    return true;
  }

  /** The Instance is gone. */
  forget(name: string): void {
    this.pending.delete(name);
  }

  get size(): number {
    return this.pending.size;
  }
}
