// Cooperative time slices for the one thread that also renews the lease, answers admission and reads
// the watches. A loop over thousands of keys, nodes or objects that never awaits real I/O runs as one
// macrotask (its awaits resolve as microtasks), and holds all of those for as long as it runs: at
// 5,000 Instances a resync's reconciles held the thread for over a second. Such loops ask spent()
// between items and, once it says so, await yieldToEventLoop().

/** The longest a loop holds the event loop before letting the lease, webhook and watches run. */
export const SLICE_MS = 5;

/** Resolves on the event loop's next check phase: timers due and pending I/O run first. */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

let sliceStart: number | undefined;

/**
 * Has the thread been busy for SLICE_MS or more without returning to the event loop? Measured from
 * the first call in the current stretch (a macrotask and its microtasks), shared by every caller: two
 * queues' workers interleaving their microtasks hold the thread together, not each for a slice.
 */
export function spent(sliceMs = SLICE_MS): boolean {
  const now = performance.now();
  if (sliceStart === undefined) {
    sliceStart = now;
    // Runs only once the current stretch has returned to the event loop.
    setImmediate(() => (sliceStart = undefined));
  }
  return now - sliceStart >= sliceMs;
}
