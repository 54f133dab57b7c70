import { describe, expect, it } from 'vitest';
import { CLAIM_EXPECTATION_MS, ClaimsInFlight } from '../../../src/controllers/claims.ts';

describe('ClaimsInFlight', () => {
  it('counts a claim for CLAIM_EXPECTATION_MS after it was sent, then forgets it', () => {
    const claims = new ClaimsInFlight();
    claims.add('i-1', 1_000);
    expect(claims.recent('i-1', 1_000 + CLAIM_EXPECTATION_MS - 1)).toBe(true);
    expect(claims.recent('i-2', 1_000)).toBe(false);
    expect(claims.recent('i-1', 1_000 + CLAIM_EXPECTATION_MS)).toBe(false);
    // A newer claim of the same Instance counts from its own time.
    claims.add('i-1', 50_000);
    expect(claims.recent('i-1', 60_000)).toBe(true);
  });

  it('keeps counting a claim while the pod watch has been silent since it was sent', () => {
    let silentForMs = 0;
    const claims = new ClaimsInFlight(() => silentForMs);
    claims.add('i-1', 1_000);
    silentForMs = CLAIM_EXPECTATION_MS + 5_000;
    expect(claims.recent('i-1', 1_000 + CLAIM_EXPECTATION_MS + 1_000)).toBe(true);
    silentForMs = 500;
    expect(claims.recent('i-1', 1_000 + CLAIM_EXPECTATION_MS + 1_000)).toBe(false);
  });

  it('does not grow without bound with records nobody asks about', () => {
    const claims = new ClaimsInFlight();
    for (let i = 0; i < 100_000; i++) claims.add(`i-${i}`, i * 10);
    const size = (claims as unknown as { sent: Map<string, number> }).sent.size;
    // One claim every 10 ms: about 3,000 live at any time, plus what the last prune left.
    expect(size).toBeLessThan(8_000);
    expect(claims.recent('i-99999', 999_990)).toBe(true);
  });
});
