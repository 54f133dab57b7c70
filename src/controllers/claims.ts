// Claims this process has sent that its cache may not show yet, one record shared by the controllers
// that delete Instances nobody seems to want. A claim is a write to the pod, not to the Instance, so
// an Instance's resourceVersion does not move when a pod is given it: without this record, the warm
// pool's removal or liveness's cancelled launch, each deciding on a pod cache that lacks the claim,
// would delete the instance a pod was given a moment ago.

/**
 * How long a sent claim counts at least: long against watch lag; by then the cache shows it, or it
 * failed. It counts longer while the pod watch has shown no sign of life since the claim was sent (a
 * watch down, a relist under way): a cache that cannot show the claim is no evidence against it.
 */
export const CLAIM_EXPECTATION_MS = 30_000;
const PRUNE_AT = 1_024;

export class ClaimsInFlight {
  private readonly sent = new Map<string, number>();
  private pruneAt = PRUNE_AT;
  /** How long the pod watch has been silent (its informer's silentForMs). */
  private readonly podsSilentForMs: () => number;
  constructor(podsSilentForMs: () => number = () => 0) {
    this.podsSilentForMs = podsSilentForMs;
  }

  /** May the record of a claim sent at `at` be dropped at `now`? */
  private expired(at: number, now: number): boolean {
    return now - at >= CLAIM_EXPECTATION_MS && now - this.podsSilentForMs() > at;
  }

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

  /** Has a pod been given this Instance lately (see CLAIM_EXPECTATION_MS)? Forgets expired records. */
  recent(instance: string, now: number): boolean {
    const at = this.sent.get(instance);
    if (at === undefined) return false;
    if (!this.expired(at, now)) return true;
    this.sent.delete(instance);
    return false;
  }

  private prune(now: number): void {
    for (const [instance, at] of this.sent) if (this.expired(at, now)) this.sent.delete(instance);
  }
}
