// The Instance tests' clock: a fixed start, minutes, and times after it as the API writes them.
export const T0 = Date.parse('2024-01-01T00:00:00Z');
export const MIN = 60_000;
export const iso = (ms: number) => new Date(T0 + ms).toISOString();
