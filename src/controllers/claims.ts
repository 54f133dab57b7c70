// Claims this process has sent that its cache may not show yet, one record shared by the controllers
// that delete Instances nobody seems to want. A claim is a write to the pod, not to the Instance, so
// an Instance's resourceVersion does not move when a pod is given it: without this record, the warm
// pool's removal or liveness's cancelled launch, each deciding on a pod cache that lacks the claim,
// would delete the instance a pod was given a moment ago.

/** How long a sent claim counts: long against watch lag; by then the cache shows it, or it failed. */
export const CLAIM_EXPECTATION_MS = 30_000;
const PRUNE_AT = 1_024;

export class ClaimsInFlight {
  private readonly sent = new Map<string, number>();
  private pruneAt = PRUNE_AT;

  /** Recorded before the claim leaves: every decision made meanwhile counts it. */
  add(instance: string, now: number): void {
    // Most records are never asked about (the Instance is claimed in the cache by then): dropped in
    // bulk once there are many, so the map holds at most about a burst's worth.
    if (this.sent.size >= this.pruneAt) {
      this.prune(now);
      this.pruneAt = Math.max(PRUNE_AT, 2 * this.sent.size);
    }
    this.sent.set(instance, now);
  }

  /** Has a pod been given this Instance within CLAIM_EXPECTATION_MS? Forgets older records. */
  recent(instance: string, now: number): boolean {
    const at = this.sent.get(instance);
    if (at === undefined) return false;
    if (now - at < CLAIM_EXPECTATION_MS) return true;
    this.sent.delete(instance);
    return false;
  }

  private prune(now: number): void {
    for (const [instance, at] of this.sent) if (now - at >= CLAIM_EXPECTATION_MS) this.sent.delete(instance);
  }
}
