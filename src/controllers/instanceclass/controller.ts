// Keeps each InstanceClass's status true to the world, so `kubectl get ic` tells whether a class
// works and what it runs. A class that turns invalid gets a Warning Event with the reason.
import type { V1Condition } from '@kubernetes/client-node';
import { usability } from '../../api/classes.ts';
import { classOf } from '../../api/pods.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import type { Controller, ControllerContext, Wakes } from '../context.ts';
import { classUnusable } from './events.ts';
import { classStatus, statusChanged } from './status.ts';

/**
 * The counts in a class's status (instances, Ready, pending pods…) change with nearly every pod of a
 * burst: written as they change, they were two status writes per pod, each a watch event for every
 * replica. A change of counts alone is written at most this often per class; a change of the Ready
 * condition is written at once.
 */
export const COUNTS_INTERVAL_MS = 1_000;
/**
 * The least time between two reconciles of a class: each reads every Instance and unbound pod of the
 * class, and every pod event of the class wakes it (several per pod in a burst): at four a second, a
 * profiled 1,000-pod burst spent 3 % of the controller's time here. A Ready condition that changes is
 * written that much later at most; no controller decides on it (each checks the class itself).
 */
const RECONCILE_INTERVAL_MS = 1_000;

export class InstanceClassController implements Controller {
  readonly name = 'instanceclass';
  readonly wakes: Wakes = {
    pod: (p) => [classOf(p)].filter((k): k is string => !!k),
    instance: (i) => [i.spec.class],
    instanceClass: (c) => [c.metadata.name!],
    // A status changed by anyone else is put back.
    instanceClassStatus: (c) => [c.metadata.name!],
    resync: (state) => state.classes.list().map((c) => c.metadata.name!),
  };

  minIntervalMs(): number {
    return RECONCILE_INTERVAL_MS;
  }

  private readonly ctx: ControllerContext;
  /** When this process last wrote each class's status. */
  private readonly written = new Map<string, number>();

  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  async reconcile(name: string): Promise<ReconcileResult | void> {
    const { state } = this.ctx;
    const cls = state.instanceClass(name);
    if (!cls) {
      this.written.delete(name);
      return;
    }
    const usable = usability(cls, name, this.ctx.providers);
    const problem = usable.usable ? undefined : usable;
    const now = (this.ctx.now ?? Date.now)();
    // Pending pods are among the unbound ones: the class's thousands running are not read.
    const pods = state.unboundPodsOfClass(name);
    const next = classStatus(cls, problem, state.instancesOfClass(name), pods, new Date(now));
    if (!statusChanged(cls.status, next)) return;
    const wasReady = cls.status?.conditions?.find((c) => c.type === 'Ready');
    const readyChanged = !sameCondition(wasReady, next.conditions?.[0]);
    const wait = (this.written.get(name) ?? -Infinity) + COUNTS_INTERVAL_MS - now;
    if (!readyChanged && wait > 0) return { requeueAfterMs: wait };
    if (problem && wasReady?.status !== 'False') this.ctx.events.record(classUnusable(cls, problem));
    await this.ctx.api.classes.patchStatus(name, next);
    this.written.set(name, now);
  }
}

/** Same status, reason and message (the transition time follows from those). */
const sameCondition = (a: V1Condition | undefined, b: V1Condition | undefined) =>
  a?.status === b?.status && a?.reason === b?.reason && a?.message === b?.message;
