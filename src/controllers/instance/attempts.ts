// When this process first tried to launch each Instance. The launch timeout counts from there, not
// from the Instance's creation: the tail of a large burst may wait in the queue longer than
// launchTimeout before its first cloud call, and must not be expired and recreated for that.
export class LaunchAttempts {
  private readonly first = new Map<string, number>();

  /** Records an attempt at `now` (only the first counts). */
  attempted(uid: string, now: number): void {
    if (!this.first.has(uid)) this.first.set(uid, now);
  }

  /** The first attempt, or undefined when none was made (by this process: a new leader starts afresh). */
  startedAt(uid: string): number | undefined {
    return this.first.get(uid);
  }

  forget(uid: string): void {
    this.first.delete(uid);
  }
}
