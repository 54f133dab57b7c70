// The InstanceClass controller's status writes: what changes is written, nothing else, and counts
// that change with every pod of a burst are written at most once per COUNTS_INTERVAL_MS.
import { describe, expect, it } from 'vitest';
import type { InstanceClassStatus } from '../../../../src/api/types.ts';
import { COUNTS_INTERVAL_MS, InstanceClassController } from '../../../../src/controllers/instanceclass/controller.ts';
import { fakes } from '../../fake/cluster.ts';
import { CLASS, cls, pod } from '../fixtures.ts';

describe('InstanceClassController', () => {
  it('writes a change of counts at most once per interval, and nothing when nothing changed', async () => {
    const { ctx, cluster, writes, clock } = fakes();
    const c = new InstanceClassController(ctx);
    cluster.classList = [cls()];
    expect(await c.reconcile(CLASS)).toBeUndefined();
    expect(writes.of('classes.patchStatus')).toHaveLength(1);
    // The cache now shows what was written: nothing to write.
    const written = writes.of('classes.patchStatus')[0]![1] as InstanceClassStatus;
    cluster.classList = [{ ...cls(), status: written }];
    expect(await c.reconcile(CLASS)).toBeUndefined();
    expect(writes.of('classes.patchStatus')).toHaveLength(1);

    // A pod arrives 100 ms later: the count waits for the rest of the interval.
    clock.now += 100;
    cluster.podList = [pod('a')];
    expect(await c.reconcile(CLASS)).toEqual({ requeueAfterMs: COUNTS_INTERVAL_MS - 100 });
    expect(writes.of('classes.patchStatus')).toHaveLength(1);
    clock.now += COUNTS_INTERVAL_MS - 100;
    expect(await c.reconcile(CLASS)).toBeUndefined();
    expect(writes.of('classes.patchStatus')).toHaveLength(2);
    expect((writes.of('classes.patchStatus')[1]![1] as InstanceClassStatus).pendingPods).toBe(1);
  });

  it('writes a change of the Ready condition at once', async () => {
    const { ctx, cluster, writes, clock } = fakes();
    const c = new InstanceClassController(ctx);
    cluster.classList = [cls()];
    await c.reconcile(CLASS);
    const written = writes.of('classes.patchStatus')[0]![1] as InstanceClassStatus;
    clock.now += 100;
    // The class now names a provider this controller does not run.
    const broken = cls({ simulated: undefined, gce: {} } as never);
    cluster.classList = [{ ...broken, status: written }];
    expect(await c.reconcile(CLASS)).toBeUndefined();
    expect(writes.of('classes.patchStatus')).toHaveLength(2);
    const ready = (writes.of('classes.patchStatus')[1]![1] as InstanceClassStatus).conditions![0]!;
    expect(ready.status).toBe('False');
  });

  it("counts pending pods from the class's unbound pods, never reading the thousands it runs", async () => {
    const { ctx, cluster, writes } = fakes();
    const c = new InstanceClassController(ctx);
    cluster.classList = [cls()];
    cluster.podList = [pod('waiting'), pod('running', { nodeName: 'n1', phase: 'Running' })];
    cluster.podsOfClass = () => {
      throw new Error('read every pod of the class');
    };
    await c.reconcile(CLASS);
    expect((writes.of('classes.patchStatus')[0]![1] as InstanceClassStatus).pendingPods).toBe(1);
  });
});
