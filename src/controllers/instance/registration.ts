// Registration: the node joins by itself and is matched to its Instance by spec.providerID. This step
// records when it registered and became Ready, and says so once. A node whose ipp labels disagree
// with the Instance its providerID belongs to is cordoned and reported, and never becomes Ready here.
import type { ControllerContext } from '../context.ts';
import { labelMismatch, observedPhase } from './decisions.ts';
import * as events from './events.ts';
import type { InstanceView, Step, StepResult } from './step.ts';

export class Registration implements Step {
  private readonly ctx: ControllerContext;
  /**
   * Instance UIDs whose registration this process has reported (Event, histogram). A reconcile that
   * reads the Instance from a cache not yet showing our own status write sees it unregistered again.
   */
  private readonly reported = new Set<string>();

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
    if (tampered) {
      if (!node.spec?.unschedulable) await this.ctx.api.nodes.cordon(node);
      this.ctx.events.record(...events.nodeLabelsTampered(inst, node.metadata!.name!, tampered));
      log.error({ node: node.metadata!.name }, tampered);
      return { halt: true };
    }
    const phase = observedPhase(was, node);
    view.status.phase = phase;
    const nowIso = new Date((this.ctx.now ?? Date.now)()).toISOString();
    const nodeName = node.metadata!.name!;
    view.status.nodeName = nodeName;
    view.status.registeredAt = was.registeredAt ?? nowIso;
    if (phase === 'Ready') view.status.readyAt = was.readyAt ?? nowIso;

    const uid = inst.metadata.uid ?? inst.metadata.name!;
    const newlyRegistered =
      (phase === 'Registered' && was.phase !== 'Registered') || (phase === 'Ready' && !was.registeredAt);
    if (newlyRegistered && !this.reported.has(uid)) {
      this.reported.add(uid);
      this.ctx.events.record(events.registered(inst, nodeName));
      if (was.launchedAt) {
        const seconds = ((this.ctx.now ?? Date.now)() - Date.parse(was.launchedAt)) / 1000;
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
  }
}
