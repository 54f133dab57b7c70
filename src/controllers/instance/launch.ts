// Launch: an Instance without a providerID gets its cloud instance. The provider's create() is
// idempotent on the Instance UID, so a launch retried after a crash finds the first one.
import {
  NODE_CLASS_LABEL,
  NODE_INSTANCE_LABEL,
  TAG_CLASS,
  TAG_CLUSTER,
  TAG_INSTANCE,
  TAINT_KEY,
} from '../../api/names.ts';
import { providerName, usability } from '../../api/classes.ts';
import { describeError } from '../../kube/errors.ts';
import {
  InsufficientCapacityError,
  InvalidConfigError,
  QuotaExceededError,
  ThrottledError,
} from '../../../providers/errors.ts';
import type { ControllerContext } from '../context.ts';
import type { LaunchAttempts } from './attempts.ts';
import * as events from './events.ts';
import type { InstanceView, Step, StepResult } from './step.ts';

/** How often an Instance of a provider not run here looks at its class again (no class change wakes an Instance). */
const UNUSABLE_RECHECK_MS = 60_000;

export class Launch implements Step {
  private readonly ctx: ControllerContext;
  private readonly attempts: LaunchAttempts;
  constructor(ctx: ControllerContext, attempts: LaunchAttempts) {
    this.ctx = ctx;
    this.attempts = attempts;
  }

  async reconcile(view: InstanceView): Promise<StepResult> {
    const { inst, log } = view;
    if (inst.status?.providerID) return {};
    const name = inst.metadata.name!;
    const usable = usability(view.cls, inst.spec.class, this.ctx.providers);
    if (!usable.usable) {
      const elsewhere = view.cls ? providerName(view.cls) : undefined;
      if (!elsewhere || this.ctx.providers.has(elsewhere)) {
        // A class that is gone or invalid launches nothing: the unlaunched Instance is dropped (its
        // finalizer still terminates any machine tagged with its name, a launch whose status was lost).
        log.info(
          { reason: usable.reason, message: usable.message },
          'class missing or invalid; dropping the unlaunched instance',
        );
        await this.ctx.api.instances.delete(name);
        return { deleted: true };
      }
      // A provider this controller does not run (its --providers, a replica of another version in a
      // rollout): another leader may launch it, or may have launched it and lost its status write, which
      // no one here could look up. Kept, and said so; its launch clock starts again once it can launch.
      this.attempts.forget(inst.metadata.uid ?? name);
      const pods = this.ctx.state.podsClaiming(inst.spec.class, name);
      this.ctx.events.record(...events.invalidClass(inst, pods, inst.spec.class, usable.message));
      log.warn(
        { provider: elsewhere },
        'class of a provider this controller does not run; the instance waits unlaunched',
      );
      return { halt: true, requeueAfterMs: UNUSABLE_RECHECK_MS };
    }
    const { cls, provider } = usable;
    const className = cls.metadata.name!;
    this.attempts.attempted(inst.metadata.uid ?? name, (this.ctx.now ?? Date.now)());
    try {
      const launched = await provider.create({
        instance: { name, uid: inst.metadata.uid! },
        class: cls,
        ...(inst.spec.zones?.length ? { zones: inst.spec.zones } : {}),
        tags: { [TAG_CLUSTER]: this.ctx.clusterName, [TAG_CLASS]: className, [TAG_INSTANCE]: name },
        node: {
          labels: { [NODE_CLASS_LABEL]: className, [NODE_INSTANCE_LABEL]: name },
          // NoSchedule keeps the scheduler away; NoExecute is what a kubelet enforces on a pod that
          // reaches it already bound (spec.nodeName), should admission ever be bypassed.
          taints: [
            { key: TAINT_KEY, value: className, effect: 'NoSchedule' },
            { key: TAINT_KEY, value: className, effect: 'NoExecute' },
          ],
        },
      });
      Object.assign(view.status, {
        phase: 'Launched',
        provider: provider.name,
        providerID: launched.providerID,
        instanceType: launched.instanceType,
        zone: launched.zone,
        ...(launched.hostIsolation ? { hostIsolation: launched.hostIsolation } : {}),
        launchedAt: launched.launchedAt.toISOString(),
      });
      log.info(
        { providerID: launched.providerID, instanceType: launched.instanceType, zone: launched.zone },
        'instance launched',
      );
      return { halt: true, requeueAfterMs: 1_000 };
    } catch (e) {
      const pods = this.ctx.state.podsClaiming(inst.spec.class, name);
      if (e instanceof ThrottledError) {
        log.info({ err: e }, 'cloud API throttled the launch; backing off');
        return { halt: true, requeueAfterMs: e.retryAfterMs ?? 2_000 + Math.random() * 3_000 };
      }
      if (e instanceof InvalidConfigError) {
        this.ctx.events.record(...events.invalidClass(inst, pods, className, e.message));
        return { halt: true, requeueAfterMs: 60_000 };
      }
      if (e instanceof QuotaExceededError) {
        this.ctx.events.record(...events.quotaExceeded(inst, pods, className, e.message));
      } else if (e instanceof InsufficientCapacityError) {
        this.ctx.events.record(...events.insufficientCapacity(inst, pods, className, e.message));
      } else {
        this.ctx.events.record(...events.launchFailed(inst, pods, className, describeError(e)));
      }
      throw e;
    }
  }
}
