// Launch and registration timeouts: an instance that was not launched within launchTimeout, or whose
// node did not join and become Ready within registrationTimeout, is replaced (deleting the Instance
// terminates it; its pods' claims then make the planner create it again).
import { usability } from '../../api/classes.ts';
import type { ControllerContext } from '../context.ts';
import type { LaunchAttempts } from './attempts.ts';
import { everReady, livenessExpiry, observedPhase } from './decisions.ts';
import { expired } from './events.ts';
import type { InstanceView, Step, StepResult } from './step.ts';

export class Liveness implements Step {
  private readonly ctx: ControllerContext;
  private readonly attempts: LaunchAttempts;
  constructor(ctx: ControllerContext, attempts: LaunchAttempts) {
    this.ctx = ctx;
    this.attempts = attempts;
  }

  async reconcile({ inst, cls, node, log }: InstanceView): Promise<StepResult> {
    const launched = !!inst.status?.providerID;
    // A node that registered once and then went missing or NotReady is the repair step's question.
    if (launched && everReady(inst)) return {};
    // An unlaunched Instance of an unusable class is the launch step's to drop, quietly.
    if (!launched && !usability(cls, inst.spec.class, this.ctx.providers).usable) return {};
    const phase = launched ? observedPhase(inst.status, node) : inst.status?.phase;
    const now = (this.ctx.now ?? Date.now)();
    // Not attempted yet means still queued: its launch clock has not started.
    const startedAt = this.attempts.startedAt(inst.metadata.uid ?? inst.metadata.name!) ?? now;
    const expiry = livenessExpiry(
      { ...inst, status: { ...inst.status, phase } },
      cls,
      node !== undefined,
      now,
      startedAt,
    );
    if (!expiry.expired) return { requeueAfterMs: expiry.remainingMs };
    if (expiry.reason === 'Idle') return {};
    this.ctx.events.record(
      ...expired(inst, this.ctx.state.podsClaiming(inst.metadata.name!), expiry.reason, expiry.message),
    );
    log.warn({ reason: expiry.reason }, expiry.message);
    await this.ctx.api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
    return { deleted: true };
  }
}
