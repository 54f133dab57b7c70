// Which pods wait for an instance of their own.
import { describe, expect, it } from 'vitest';
import { awaitsPlacement } from '../../../src/api/pods.ts';
import { pod } from '../controllers/fixtures.ts';

describe('awaitsPlacement', () => {
  it('is true for a gated pod of a class, false for a DaemonSet pod of a class however it got its gate', () => {
    expect(awaitsPlacement(pod('web'))).toBe(true);
    expect(awaitsPlacement(pod('agent', { daemonSet: true }))).toBe(false);
    expect(awaitsPlacement(pod('plain', { class: null }))).toBe(false);
  });
});
