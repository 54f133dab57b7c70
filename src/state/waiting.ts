// Since when a pod has waited for ipp. A pod waits from its creation, unless another scheduling gate
// held it too (a queue such as Kueue admits it later): ipp launches nothing for it until the last such
// gate is lifted, and its wait starts then. The pod records no such time, so the controller notes it
// as it sees the update; a controller that starts after it counts from the pod's creation, which
// includes the time in the queue.
import type { V1Pod } from '@kubernetes/client-node';
import { heldByOtherGates } from '../api/pods.ts';

const createdAt = new WeakMap<object, number>();

export class WaitingClock {
  /** When the last gate not ipp's was seen lifted, by pod UID; only for pods not bound yet. */
  private readonly released = new Map<string, number>();

  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** A pod event from the informer: `old` is the pod an update replaced. */
  seen(p: V1Pod, kind: 'add' | 'update' | 'delete', old?: V1Pod): void {
    const uid = p.metadata?.uid;
    if (!uid) return;
    if (kind === 'delete' || p.spec?.nodeName || p.metadata?.deletionTimestamp) this.released.delete(uid);
    else if (old && heldByOtherGates(old) && !heldByOtherGates(p)) this.released.set(uid, this.now());
  }

  /** Milliseconds since the epoch; undefined for a pod with no creation time. */
  since(p: V1Pod): number | undefined {
    const m = p.metadata;
    if (!m) return undefined;
    const released = m.uid ? this.released.get(m.uid) : undefined;
    if (released !== undefined) return released;
    // Parsed once per pod object: plan() sorts a burst's pods by it on every pass.
    let created = createdAt.get(m);
    if (created === undefined) createdAt.set(m, (created = Date.parse(String(m.creationTimestamp ?? ''))));
    return Number.isNaN(created) ? undefined : created;
  }

  /** Pods noted (for tests: the map empties as pods are bound or deleted). */
  get size(): number {
    return this.released.size;
  }
}
