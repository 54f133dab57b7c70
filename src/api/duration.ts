// Durations in InstanceClass fields use Go's notation ("90s", "5m", "1h30m"), as Kubernetes users expect.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * Parsed durations by their text. An Instance's timeouts are read on every reconcile of every
 * Instance, and a class's few durations are the same texts each time. Bounded: class fields are
 * validated to this form, but nothing else limits how many distinct texts reach here.
 */
const parsed = new Map<string, number>();
const PARSED_MAX = 1_000;

/** Milliseconds of a Go-style duration; throws naming `field` when malformed. */
export function parseDuration(value: string, field = 'duration'): number {
  const known = parsed.get(value);
  if (known !== undefined) return known;
  const parts = [...value.matchAll(/(\d+)(ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== value) {
    throw new Error(`${field}: "${value}" is not a duration; use e.g. 30s, 5m or 1h30m`);
  }
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
  if (parsed.size < PARSED_MAX) parsed.set(value, ms);
  return ms;
}
