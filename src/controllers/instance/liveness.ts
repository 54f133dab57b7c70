// Is the instance still worth waiting for? One not launched within launchTimeout (counted from its
// first launch attempt), or whose node did not join and become Ready within registrationTimeout, is
// replaced (deleting the Instance terminates it; its pods' claims make the planner create it again).
// One that nobody claims any more before it was ever Ready (its pod was deleted while it booted) is
// cancelled: bare metal boots for twenty minutes, and nobody wants to pay for that. A warm instance is
// unclaimed by design and never cancelled that way (its timeouts still apply).
import type { V1Pod } from '@kubernetes/client-node';
import { providerName, usability } from '../../api/classes.ts';
import { isTerminal, isWorkload } from '../../api/pods.ts';
import { describeError } from '../../kube/errors.ts';
import { InsufficientCapacityError, QuotaExceededError } from '../../../providers/errors.ts';
import type { ControllerContext } from '../context.ts';
import { isWarm } from '../warmpool/pool.ts';
import type { LaunchAttempts } from './attempts.ts';
import { everReady, livenessExpiry, nodeRefusal, observedPhase } from './decisions.ts';
import * as events from './events.ts';
import type { InstanceView, Step, StepResult } from './step.ts';

/** How long an unready instance may go unclaimed before its launch is cancelled. */
export const UNCLAIMED_GRACE_MS = 30_000;
/** How often the cloud is asked whether it keeps failing to make an instance it accepted. */
export const STALL_CHECK_MS = 30_000;

/** Does the pod still want the instance it claims? (Not if it is finished or being deleted before binding.) */
const holdsInstance = (p: V1Pod) => !isTerminal(p) && !(p.metadata?.deletionTimestamp && !p.spec?.nodeName);

export class Liveness implements Step {
  /** Instance UID → since when no pod claims it (this process's view). */
  private readonly unclaimedSince = new Map<string, number>();
  /** Instance UID → when the cloud was last asked whether it keeps failing to make it. */
  private readonly stallAskedAt = new Map<string, number>();
  private readonly ctx: ControllerContext;
  private readonly attempts: LaunchAttempts;
  constructor(ctx: ControllerContext, attempts: LaunchAttempts) {
    this.ctx = ctx;
    this.attempts = attempts;
  }

  async reconcile(view: InstanceView): Promise<StepResult> {
    const { inst, cls, node, log } = view;
    const launched = !!inst.status?.providerID;
    // A node that registered once and then went missing or NotReady is the repair step's question.
    if (launched && everReady(inst)) return {};
    const now = (this.ctx.now ?? Date.now)();
    const uid = inst.metadata.uid ?? inst.metadata.name!;
    const claimers = this.ctx.state.podsClaiming(inst.spec.class, inst.metadata.name!).filter(holdsInstance);
    const onNode = node ? this.ctx.state.podsOnNode(node.metadata!.name!).filter(isWorkload) : [];
    // A warm instance is claimed by nobody on purpose: the warm pool keeps it for the next pod. One
    // just given to a pod (the claim not in the cache yet) is claimed: its resourceVersion did not
    // move, so the delete's precondition would not stop the cancel.
    if (claimers.length || onNode.length || isWarm(inst) || this.ctx.claims.recent(inst.metadata.name!, now)) {
      this.unclaimedSince.delete(uid);
    } else {
      // A claim is written before its Instance, but the two watches may deliver them in either order.
      const since = this.unclaimedSince.get(uid) ?? now;
      this.unclaimedSince.set(uid, since);
      if (now - since >= UNCLAIMED_GRACE_MS) {
        this.ctx.events.record(events.launchCancelled(inst));
        log.info('no pod claims the instance any more; cancelling its launch');
        await this.ctx.api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
        this.unclaimedSince.delete(uid);
        return { deleted: true };
      }
    }
    // An unlaunched Instance of an unusable class waits for the class (the launch step says why): no
    // launch clock runs meanwhile. Nobody claiming it still cancels it, above: fixed, the class would
    // launch it for nobody.
    if (!launched && !usability(cls, inst.spec.class, this.ctx.providers).usable) return {};
    const phase = launched ? observedPhase(inst.status, node) : inst.status?.phase;
    // Not attempted yet means still queued: its launch clock has not started.
    const startedAt = this.attempts.startedAt(inst.metadata.uid ?? inst.metadata.name!) ?? now;
    const expiry = livenessExpiry(
      { ...inst, status: { ...inst.status, phase } },
      cls,
      node !== undefined,
      now,
      startedAt,
    );
    if (!expiry.expired) {
      const stalled = launched && !node ? await this.askStalled(view, now) : undefined;
      if (stalled && 'error' in stalled) return this.replaceStalled(view, claimers, stalled.error);
      return { requeueAfterMs: Math.min(expiry.remainingMs, stalled?.recheckMs ?? Infinity) };
    }
    if (expiry.reason === 'Idle') return {};
    // A node that joined and was refused (cordoned) is why, not the boot.
    const refused = node && expiry.reason === 'RegistrationTimeout' ? nodeRefusal(inst, node) : undefined;
    const message = refused
      ? `node ${node!.metadata!.name} joined within registrationTimeout but was refused: ${refused}`
      : expiry.message;
    this.ctx.events.record(
      ...events.expired(
        inst,
        this.ctx.state.podsClaiming(inst.spec.class, inst.metadata.name!),
        expiry.reason,
        message,
      ),
    );
    log.warn({ reason: expiry.reason }, message);
    await this.ctx.api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
    return { deleted: true };
  }

  forget(uid: string): void {
    this.unclaimedSince.delete(uid);
    this.stallAskedAt.delete(uid);
  }

  /**
   * Asks the cloud, at most every STALL_CHECK_MS, whether it keeps failing to make an instance it
   * accepted (a GCE group retrying on a stockout): waiting out registrationTimeout there helps
   * nobody when the class has other zones. An error asking decides nothing: ask again later.
   */
  private async askStalled(
    { inst, cls, log }: InstanceView,
    now: number,
  ): Promise<{ error: InsufficientCapacityError } | { recheckMs: number } | undefined> {
    const which = inst.status?.provider ?? (cls ? providerName(cls) : undefined);
    const provider = which ? this.ctx.providers.get(which) : undefined;
    if (!provider?.stalled || !cls) return undefined;
    const uid = inst.metadata.uid ?? inst.metadata.name!;
    const since = this.stallAskedAt.get(uid) ?? new Date(inst.status?.launchedAt ?? now).getTime();
    if (now - since < STALL_CHECK_MS) return { recheckMs: since + STALL_CHECK_MS - now };
    this.stallAskedAt.set(uid, now);
    try {
      const error = await provider.stalled(inst.status!.providerID!, cls);
      if (error instanceof InsufficientCapacityError) return { error };
      // Anything else (a template that cannot work, a throttled try) is the group's to retry, and the
      // registration timeout's to end.
      if (error) log.warn({ err: error }, `the cloud has not made the instance yet: ${error.message}`);
    } catch (e) {
      log.warn(
        { err: e },
        `could not ask the cloud whether it is still trying to make the instance (${describeError(e)})`,
      );
    }
    return { recheckMs: STALL_CHECK_MS };
  }

  /** The cloud keeps failing to make it where it accepted it: replaced, and launched where there is capacity. */
  private async replaceStalled(
    { inst, log }: InstanceView,
    claimers: readonly V1Pod[],
    error: InsufficientCapacityError,
  ): Promise<StepResult> {
    const reason = error instanceof QuotaExceededError ? 'QuotaExceeded' : 'InsufficientCapacity';
    this.ctx.events.record(...events.launchStalled(inst, claimers, reason, error.message));
    log.warn({ err: error }, 'the cloud keeps failing to make the instance; replacing it');
    await this.ctx.api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
    this.forget(inst.metadata.uid ?? inst.metadata.name!);
    return { deleted: true };
  }
}
