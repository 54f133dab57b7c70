// Registration: the node joins by itself and is matched to its Instance by spec.providerID. This step
// records when it registered and became Ready, and says so once. A node whose ipp labels disagree
// with the Instance its providerID belongs to, or that lacks the class's taints, is cordoned and
// reported, and never becomes Ready here (an Instance that was Ready already stays cordoned until it
// is idle and torn down).
// A node that joins NotReady mostly turns Ready a moment later (its kubelet's first status): its
// registration is held back that long, so that both are one status write, not two.
import type { ControllerContext } from '../context.ts';
import { everReady, labelMismatch, missingTaints, observedPhase, taintList } from './decisions.ts';
import * as events from './events.ts';
import type { InstanceView, Step, StepResult } from './step.ts';

/**
 * How long a node that joined NotReady may take to turn Ready before its registration is written
 * alone. A cloud node's kubelet reports Ready only once its network plugin runs (a DaemonSet that
 * starts after the node registered); the burst bench's simulated nodes take 0.5-1 s on a quiet
 * machine, and in a saturated 1,000-pod burst 72 % took longer than the 5 s this was before (each
 * then cost a third status write).
 * The phase of a node that stays NotReady shows Launched that much longer; no controller decides on it.
 */
export const READY_WAIT_MS = 30_000;

/**
 * How much longer to hold back writing that a node joined but is not Ready, first seen at `seenAt`,
 * or 0 to write it now.
 */
export const registrationHoldMs = (seenAt: number, now: number) => Math.max(0, seenAt + READY_WAIT_MS - now);

export class Registration implements Step {
  private readonly ctx: ControllerContext;
  /**
   * Instance UIDs whose registration this process has observed (histogram). A reconcile that
   * reads the Instance from a cache not yet showing our own status write sees it unregistered again.
   */
  private readonly reported = new Set<string>();
  /** Instance UID → when this process first saw its node, until the status records the registration. */
  private readonly seenAt = new Map<string, number>();

  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  async reconcile(view: InstanceView): Promise<StepResult> {
    const { inst, node, log } = view;
    const was = inst.status ?? {};
    // A registered instance whose node is missing keeps its phase: the repair step decides about it.
    if (!node) {
      if (was.phase !== 'Ready') view.status.phase = 'Launched';
      return {};
    }
    const tampered = labelMismatch(inst, node);
    const untainted = tampered ? [] : missingTaints(inst, node);
    if (tampered || untainted.length) {
      if (!node.spec?.unschedulable) await this.ctx.api.nodes.cordon(node);
      const name = node.metadata!.name!;
      if (tampered) this.ctx.events.record(...events.nodeLabelsTampered(inst, name, tampered));
      else this.ctx.events.record(...events.nodeTaintsMissing(inst, name, untainted, everReady(inst)));
      log.error({ node: name }, tampered ?? `node is missing ${taintList(untainted)}; cordoned`);
      // One that was Ready keeps its pods (cordoned, it gets no new ones) and goes on through the
      // steps after this one, so that it is torn down once idle, or repaired, not billed forever.
      return everReady(inst) ? {} : { halt: true };
    }
    const phase = observedPhase(was, node);
    const now = (this.ctx.now ?? Date.now)();
    const uid = inst.metadata.uid ?? inst.metadata.name!;
    if (was.registeredAt) this.seenAt.delete(uid);
    const seenAt = was.registeredAt ? undefined : (this.seenAt.get(uid) ?? now);
    if (seenAt !== undefined) this.seenAt.set(uid, seenAt);
    const newlyRegistered =
      (phase === 'Registered' && was.phase !== 'Registered') || (phase === 'Ready' && !was.registeredAt);
    if (newlyRegistered && phase === 'Registered' && seenAt !== undefined) {
      // Nothing after this step has anything to do before the node is Ready (no pods run there yet).
      const hold = registrationHoldMs(seenAt, now);
      if (hold > 0) return { halt: true, requeueAfterMs: hold };
    }
    view.status.phase = phase;
    const nowIso = new Date(now).toISOString();
    const nodeName = node.metadata!.name!;
    view.status.nodeName = nodeName;
    view.status.registeredAt = was.registeredAt ?? new Date(seenAt ?? now).toISOString();
    if (phase === 'Ready') view.status.readyAt = was.readyAt ?? nowIso;

    if (newlyRegistered && !this.reported.has(uid)) {
      this.reported.add(uid);
      if (was.launchedAt) {
        const seconds = ((seenAt ?? now) - Date.parse(was.launchedAt)) / 1000;
        this.ctx.metrics.instanceRegistrationDuration.observe(
          { class: inst.spec.class, provider: was.provider ?? '' },
          seconds,
        );
      }
    }
    if (phase === 'Ready' && was.phase !== 'Ready') log.info({ node: nodeName }, 'node is Ready');
    return {};
  }

  /** The Instance is gone: forget it. */
  forget(uid: string): void {
    this.reported.delete(uid);
    this.seenAt.delete(uid);
  }
}
