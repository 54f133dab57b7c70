// Durations in InstanceClass fields use Go's notation ("90s", "5m", "1h30m"), as Kubernetes users expect.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go-style duration; throws naming `field` when malformed. */
export function parseDuration(value: string, field = 'duration'): number {
  const parts = [...value.matchAll(/(\d+)(ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== value) {
    throw new Error(`${field}: "${value}" is not a duration; use e.g. 30s, 5m or 1h30m`);
  }
  return parts.reduce((ms, p) => ms + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
}
