// Idle teardown: who is on the instance, since when nobody is, and, past the class's idleTimeout,
// delete the Instance (its finalizer terminates the cloud instance). The delete is preconditioned on
// the version the decision was made on, so a pod reserving the instance meanwhile wins the race.
// A pod stranded on it (pinned, never placeable there) no longer holds it.
// A one-shot instance goes as soon as its pod has ended, without waiting; a warm one is never idle.
// Under Pod isolation, so does one whose pod left without being seen to end (state/departures.ts).
import { isWorkload } from '../../api/pods.ts';
import { isConflict } from '../../kube/errors.ts';
import type { InstanceContext } from './context.ts';
import type { IppEvent } from '../../kube/events.ts';
import { isWarm } from '../warmpool/pool.ts';
import { STRANDED_AFTER_MS } from '../provisioning/plan.ts';
import { idleExpiry, isStranded, occupants, served, strandedInMs } from './decisions.ts';
import * as events from './events.ts';
import type { InstanceView, Step, StepResult } from './step.ts';

export class Idle implements Step {
  private readonly ctx: InstanceContext;
  constructor(ctx: InstanceContext) {
    this.ctx = ctx;
  }

  async reconcile(view: InstanceView): Promise<StepResult> {
    const { inst, node, cls } = view;
    if (!node) return {};
    const was = inst.status ?? {};
    const now = (this.ctx.now ?? Date.now)();
    const name = inst.metadata.name!;
    // A pod stranded on the instance (pinned, never placeable there) does not keep it: it is released.
    const stranded = this.ctx.strandedAfterMs ?? STRANDED_AFTER_MS;
    const all = this.ctx.state.podsClaiming(inst.spec.class, name);
    const claiming = all.filter((p) => !isStranded(p, now, stranded));
    // A refused pod turns stranded on a clock, not on an event: be back then to release the instance.
    const strandsIn = Math.min(...all.map((p) => strandedInMs(p, now, stranded) ?? Infinity).filter((ms) => ms > 0));
    const onNode = this.ctx.state.podsOnNode(node.metadata!.name!);
    const pods = occupants(claiming, onNode);
    const ready = view.status.phase === 'Ready';
    // A warm instance is kept unused on purpose: not idle, never torn down here (the pool ages it out).
    const warm = isWarm(inst);
    view.status.pods = pods;
    // Given to a pod a moment ago, the claim not in the cache yet: not idle. A claim does not move
    // the Instance's resourceVersion, so the teardown's precondition alone would not stop a delete
    // decided on a cache that lacks it (a pod watch lagging past a short idleTimeout).
    const justClaimed = this.ctx.claims.recent(name, now);
    view.status.idleSince =
      ready && !warm && pods.length === 0 && !justClaimed ? (was.idleSince ?? new Date(now).toISOString()) : null;
    if (!ready || warm) return {};

    const left = this.ctx.state.unconfirmedExit(node.metadata!.name!);
    if (left && !onNode.some(isWorkload) && (cls?.spec.isolation ?? 'Pod') === 'Pod') {
      // Its last pod may still be running there: never the next pod's node, whoever's that is (a
      // pod claiming it meanwhile is given another when this Instance is gone).
      return this.tearDown(
        view,
        events.podLeftUnconfirmed(inst, node.metadata!.name!, left),
        'a pod left the node without being seen to end; tearing down',
      );
    }
    if (cls?.spec.oneShot && pods.length === 0 && served(was.pods, claiming, onNode)) {
      // Its one pod has ended (Succeeded, Failed or deleted): the machine never sees a second one.
      return this.tearDown(view, events.oneShotDone(inst, node.metadata!.name!), 'one-shot pod ended; tearing down');
    }
    const idle = idleExpiry(view.status.idleSince ?? undefined, cls, now);
    if (!idle.expired) {
      if (view.status.idleSince && !was.idleSince) this.ctx.events.record(events.becameIdle(inst, node.metadata!.name));
      return { requeueAfterMs: Math.min(idle.remainingMs, strandsIn) };
    }
    return this.tearDown(view, events.idleTeardown(inst, idle.message), 'idle timeout reached; tearing down');
  }

  private async tearDown(view: InstanceView, event: IppEvent, why: string): Promise<StepResult> {
    const { inst, node, log } = view;
    try {
      await this.ctx.api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
    } catch (e) {
      if (!isConflict(e)) throw e;
      log.debug('instance changed since it was found idle (reserved by a pod?); re-reading');
      return { halt: true, requeueAfterMs: 250 };
    }
    this.ctx.events.record(event);
    log.info({ node: node?.metadata?.name }, why);
    return { deleted: true };
  }
}
