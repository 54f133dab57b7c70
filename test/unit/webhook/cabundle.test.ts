// Replicas racing on a CA rotation: a replica holding the older bundle must not write it back.
import { describe, expect, it } from 'vitest';
import { isOlderBundle } from '../../../src/webhook/cabundle.ts';
import { renewIfNeeded } from '../../../src/webhook/certificates.ts';

const want = { dnsNames: ['ipp-webhook.test.svc'], ipAddresses: [] };

describe('isOlderBundle', () => {
  it('says a bundle whose newest CA predates the configured one is older; not the other way round', async () => {
    const old = (await renewIfNeeded(undefined, want, new Date('2030-01-01T00:00:00Z')))!.caBundle;
    const rotated = (await renewIfNeeded(undefined, want, new Date('2031-01-01T00:00:00Z')))!.caBundle;
    // During a rotation the new bundle holds the new CA first, then the previous one.
    const transition = `${rotated}\n${old}`;
    expect(isOlderBundle(old, rotated)).toBe(true);
    expect(isOlderBundle(old, transition)).toBe(true);
    expect(isOlderBundle(transition, old)).toBe(false);
    expect(isOlderBundle(rotated, rotated)).toBe(false);
    // Nothing configured yet (or garbage): ours is never older.
    expect(isOlderBundle(old, '')).toBe(false);
    expect(isOlderBundle(old, 'not a certificate')).toBe(false);
  }, 20_000); // two CAs and leaves: slow on a loaded 2-core machine
});
