// Cloud faults of the simulated provider, for chaos runs (test/chaos): a JSON file, named by
// --simulated-faults, lists fault windows; while a window is open, each matching cloud call answers
// with that fault (no capacity in a zone, throttling, a 5xx before or after the call took effect, a
// slow answer). The file is re-read when it changes, so a test can open and close windows while the
// controller runs and across its restarts. Without the flag nothing is read and nothing is injected:
// production never sets it (and never runs the simulated provider). Each injected fault is appended
// to `<file>.fired`, so the chaos run counts faults that really fired, not only windows it opened.
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { InsufficientCapacityError, ThrottledError } from '../errors.ts';

export type FaultKind = 'capacity' | 'throttle' | 'error' | 'slow';
export type CloudOperation = 'create' | 'delete' | 'get' | 'list' | 'find';

export interface FaultWindow {
  kind: FaultKind;
  /** Epoch milliseconds at which the window closes. */
  until: number;
  /** Share of matching calls that get the fault (default 1). */
  probability?: number;
  /** capacity: the zone without capacity. */
  zone?: string;
  /** slow: the added latency. */
  delayMs?: number;
  /** error: the 5xx comes after the call took effect (the caller cannot know it did). */
  afterEffect?: boolean;
}

export interface FaultFile {
  windows: FaultWindow[];
}

/** A simulated 5xx from the cloud API: not in the provider error taxonomy, like any unexpected failure. */
export class SimulatedServerError extends Error {
  override name = 'SimulatedServerError';
}

export class SimulatedFaults {
  private readonly path: string;
  private readonly random: () => number;
  private cached: { version: string; windows: FaultWindow[] } = { version: '', windows: [] };

  constructor(path: string, random: () => number = Math.random) {
    this.path = path;
    this.random = random;
  }

  /** Open windows now; a missing or half-written file is no fault at all. */
  open(now = Date.now()): FaultWindow[] {
    try {
      // Writers replace the file (rename): a new inode or mtime is a new version.
      const { mtimeMs, ino } = statSync(this.path);
      const version = `${ino}/${mtimeMs}`;
      if (version !== this.cached.version) {
        const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as FaultFile;
        this.cached = { version, windows: parsed.windows ?? [] };
      }
    } catch {
      return [];
    }
    return this.cached.windows.filter((w) => w.until > now);
  }

  /**
   * Runs one cloud call under the open windows: slow ones delay it, a throttle or a 5xx-before
   * refuses it, a 5xx-after lets it take effect and then fails.
   */
  async around<T>(operation: CloudOperation, call: () => Promise<T>): Promise<T> {
    let failAfter: FaultWindow | undefined;
    for (const w of this.open()) {
      if (w.kind === 'capacity' || this.random() >= (w.probability ?? 1)) continue;
      this.fired(w, operation);
      if (w.kind === 'slow') await new Promise((r) => setTimeout(r, w.delayMs ?? 1_000));
      if (w.kind === 'throttle') throw new ThrottledError(`simulated throttling of ${operation} (chaos fault)`);
      if (w.kind === 'error' && !w.afterEffect)
        throw new SimulatedServerError(`simulated 503 from the cloud API on ${operation} (chaos fault)`);
      if (w.kind === 'error') failAfter = w;
    }
    const result = await call();
    if (failAfter)
      throw new SimulatedServerError(`simulated 500 from the cloud API after ${operation} took effect (chaos fault)`);
    return result;
  }

  /** Throws InsufficientCapacityError for a launch into a zone an open capacity window empties. */
  checkCapacity(offering: { instanceType: string; zone?: string }): void {
    for (const w of this.open()) {
      if (w.kind !== 'capacity' || (w.zone !== undefined && w.zone !== offering.zone)) continue;
      if (this.random() >= (w.probability ?? 1)) continue;
      this.fired(w, 'create');
      throw new InsufficientCapacityError(
        `simulated: no ${offering.instanceType} capacity in ${offering.zone} (chaos fault)`,
        [offering],
      );
    }
  }

  private fired(w: FaultWindow, operation: CloudOperation): void {
    try {
      appendFileSync(`${this.path}.fired`, `${w.kind} ${operation}\n`);
    } catch {
      // The tally is for the chaos run's report; a lost line changes no behaviour.
    }
  }
}
