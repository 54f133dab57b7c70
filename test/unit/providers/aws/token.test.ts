import { describe, expect, it } from 'vitest';
import { batchClientToken, clientToken, MAX_TOKEN_LENGTH, paramsDigest } from '../../../../providers/aws/token.ts';

const uid = '0b6c3f0e-7f1a-4c52-9d1e-2a7b9c4d5e6f';
const m5 = { instanceType: 'm5.large', zone: 'us-east-1a' };

describe('clientToken', () => {
  it("is stable for the same Instance, offering and parameters, and fits EC2's 64 characters", () => {
    const t = clientToken(uid, m5, 'p1');
    expect(t).toBe(clientToken(uid, { ...m5 }, 'p1'));
    expect(t.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
    expect(t).toContain(uid);
  });

  it('changes with the offering, the parameters and the attempt (so a fallback is not a parameter mismatch)', () => {
    const tokens = new Set([
      clientToken(uid, m5, 'p1'),
      clientToken(uid, { ...m5, zone: 'us-east-1b' }, 'p1'),
      clientToken(uid, { instanceType: 'i3.metal' }, 'p1'),
      clientToken(uid, m5, 'p2'),
      clientToken(uid, m5, 'p1', 1),
      clientToken('another-uid', m5, 'p1'),
    ]);
    expect(tokens.size).toBe(6);
  });

  it('stays within 64 printable characters for any UID', () => {
    const t = clientToken('ü'.repeat(200), m5, 'p1', 3);
    expect(t.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
    expect(t).toMatch(/^[\x21-\x7e]+$/);
  });
});

describe('batchClientToken', () => {
  it('depends on the members and their order (launch index k is member k)', () => {
    expect(batchClientToken(['a', 'b'], m5, 'p')).toBe(batchClientToken(['a', 'b'], m5, 'p'));
    expect(batchClientToken(['a', 'b'], m5, 'p')).not.toBe(batchClientToken(['b', 'a'], m5, 'p'));
    expect(batchClientToken(['a', 'b'], m5, 'p', 2).length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
  });
});

describe('paramsDigest', () => {
  it('ignores key order but not values', () => {
    expect(paramsDigest({ a: 1, b: { c: [1, 2] } })).toBe(paramsDigest({ b: { c: [1, 2] }, a: 1 }));
    expect(paramsDigest({ a: 1 })).not.toBe(paramsDigest({ a: 2 }));
  });
});
