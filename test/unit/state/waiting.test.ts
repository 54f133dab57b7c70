import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { WaitingClock } from '../../../src/state/waiting.ts';

const CREATED = Date.parse('2026-12-02T10:00:00Z');
const pod = (gates: string[], extra: Partial<V1Pod['spec']> = {}): V1Pod => ({
  metadata: { name: 'job-1', namespace: 'ns', uid: 'u1', creationTimestamp: new Date(CREATED) },
  spec: { containers: [], schedulingGates: gates.map((name) => ({ name })), ...extra },
});
const QUEUED = pod(['kueue.x-k8s.io/admission', 'ipp.dev/provision']);
const ADMITTED = pod(['ipp.dev/provision']);

describe('WaitingClock', () => {
  it('counts a pod from its creation, and a queued one from when its queue lifted the last other gate', () => {
    let now = CREATED + 3_600_000;
    const clock = new WaitingClock(() => now);
    clock.seen(QUEUED, 'add');
    expect(clock.since(QUEUED)).toBe(CREATED);
    clock.seen(ADMITTED, 'update', QUEUED);
    expect(clock.since(ADMITTED)).toBe(CREATED + 3_600_000);
    // Later updates (ipp's own claim, a status) keep the time.
    now += 5_000;
    clock.seen(ADMITTED, 'update', ADMITTED);
    expect(clock.since(ADMITTED)).toBe(CREATED + 3_600_000);
  });

  it('forgets a pod once it is bound or deleted', () => {
    const clock = new WaitingClock(() => CREATED + 1_000);
    clock.seen(ADMITTED, 'update', QUEUED);
    expect(clock.size).toBe(1);
    clock.seen(pod([], { nodeName: 'n1' }), 'update', ADMITTED);
    expect(clock.size).toBe(0);
    clock.seen(ADMITTED, 'update', QUEUED);
    clock.seen(ADMITTED, 'delete');
    expect(clock.size).toBe(0);
    expect(clock.since(ADMITTED)).toBe(CREATED);
  });

  it('has no time for a pod without a creation time', () => {
    expect(new WaitingClock().since({ metadata: { uid: 'x' } })).toBeUndefined();
  });
});
