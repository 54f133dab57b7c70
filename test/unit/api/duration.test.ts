import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../../src/api/duration.ts';

describe('parseDuration', () => {
  it('reads Go-style durations', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
  });

  it('names the field when the value is malformed', () => {
    expect(() => parseDuration('5 minutes', 'spec.idleTimeout')).toThrow(
      /spec.idleTimeout: "5 minutes" is not a duration/,
    );
    expect(() => parseDuration('', 'x')).toThrow(/x:/);
    expect(() => parseDuration('10', 'x')).toThrow();
  });
});
