// Idle teardown: who is on the instance, since when nobody is, and, past the class's idleTimeout,
// delete the Instance (its finalizer terminates the cloud instance). The delete is preconditioned on
// the version the decision was made on, so a pod reserving the instance meanwhile wins the race.
import { isConflict } from '../../kube/errors.ts';
import type { ControllerContext } from '../context.ts';
import { idleExpiry, occupants } from './decisions.ts';
import * as events from './events.ts';
import type { InstanceView, Step, StepResult } from './step.ts';

export class Idle implements Step {
  private readonly ctx: ControllerContext;
  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  async reconcile(view: InstanceView): Promise<StepResult> {
    const { inst, node, cls, log } = view;
    if (!node) return {};
    const was = inst.status ?? {};
    const now = (this.ctx.now ?? Date.now)();
    const name = inst.metadata.name!;
    const pods = occupants(this.ctx.state.podsClaiming(name), this.ctx.state.podsOnNode(node.metadata!.name!));
    const ready = view.status.phase === 'Ready';
    view.status.pods = pods;
    view.status.idleSince = ready && pods.length === 0 ? (was.idleSince ?? new Date(now).toISOString()) : null;
    if (!ready) return {};

    const idle = idleExpiry(view.status.idleSince ?? undefined, cls, now);
    if (!idle.expired) {
      if (view.status.idleSince && !was.idleSince) this.ctx.events.record(events.becameIdle(inst, node.metadata!.name));
      return { requeueAfterMs: idle.remainingMs };
    }
    try {
      await this.ctx.api.instances.delete(name, inst.metadata.resourceVersion);
    } catch (e) {
      if (!isConflict(e)) throw e;
      log.debug('instance changed since it was found idle (reserved by a pod?); re-reading');
      return { halt: true, requeueAfterMs: 250 };
    }
    this.ctx.events.record(events.idleTeardown(inst, idle.message));
    log.info({ node: node.metadata?.name }, 'idle timeout reached; tearing down');
    return { deleted: true };
  }
}
