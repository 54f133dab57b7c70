// An Instance's life, level-based, as the design's flow reads: launch → registration → (liveness) →
// idle → termination. Each reconcile runs the steps in order on a draft of the status, writes the
// status once if it changed, and asks to be called again after the smallest delay any step needs.
import { isDeepStrictEqual } from 'node:util';
import type { V1Node } from '@kubernetes/client-node';
import { NODE_INSTANCE_LABEL } from '../../api/names.ts';
import { claimOf } from '../../api/pods.ts';
import type { InstanceStatus } from '../../api/types.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import { lazyChild } from '../../log.ts';
import type { ClusterView, Controller, Wakes } from '../context.ts';
import type { InstanceContext } from './context.ts';
import { LaunchAttempts } from './attempts.ts';
import { nodeChangeMattersToInstance, podChangeMattersToInstance } from './decisions.ts';
import { StatusExpectations } from './expectations.ts';
import { Idle } from './idle.ts';
import { Launch } from './launch.ts';
import { Liveness } from './liveness.ts';
import { Registration } from './registration.ts';
import { Repair } from './repair.ts';
import type { DraftStatus, InstanceView, Step } from './step.ts';
import { Termination } from './termination.ts';

/** Nothing changes without an event for longer than this: re-check anyway. */
const RECHECK_MS = 30_000;
const MIN_REQUEUE_MS = 250;

/**
 * The Instances a node's change concerns: the one its providerID names once the launch recorded it (a
 * GKE pool's nodes carry no Instance label), and the one its label names (a node can register before
 * the launch is recorded; a label that disagrees is that Instance's business too).
 */
const instancesOfNode = (n: V1Node, state: ClusterView): (string | undefined)[] => [
  state.instanceByProviderID(n.spec?.providerID)?.metadata.name,
  n.metadata?.labels?.[NODE_INSTANCE_LABEL],
];

export class InstanceController implements Controller {
  readonly name = 'instance';
  // A starting pod's kubelet updates and every node's heartbeats change nothing an Instance decides
  // on: each would be a reconcile of the Instance for nothing.
  readonly wakes: Wakes = {
    pod: (p, state, old) => {
      if (old && !podChangeMattersToInstance(old, p)) return [];
      // Its Instance, the one it claimed before (which may be idle now), and its node's.
      const keys = [claimOf(p), old && claimOf(old)];
      const node = p.spec?.nodeName ? state.node(p.spec.nodeName) : undefined;
      if (node) keys.push(...instancesOfNode(node, state));
      return [...new Set(keys.filter((k): k is string => !!k))];
    },
    node: (n, state, old) =>
      old && !nodeChangeMattersToInstance(old, n)
        ? []
        : [...new Set(instancesOfNode(n, state).filter((k): k is string => !!k))],
    instance: (i, _state, old) => (old && this.expectations.ownWriteShown(old, i) ? [] : [i.metadata.name!]),
    resync: (state) => state.instances.list().map((i) => i.metadata.name!),
  };

  private readonly ctx: InstanceContext;
  private readonly registration: Registration;
  private readonly liveness: Liveness;
  private readonly attempts = new LaunchAttempts();
  private readonly expectations = new StatusExpectations();
  private readonly steps: Step[];
  private readonly termination: Termination;

  constructor(ctx: InstanceContext) {
    this.ctx = ctx;
    this.registration = new Registration(ctx);
    this.liveness = new Liveness(ctx, this.attempts);
    this.steps = [this.liveness, new Launch(ctx, this.attempts), this.registration, new Repair(ctx), new Idle(ctx)];
    this.termination = new Termination(ctx, this.expectations);
  }

  async reconcile(name: string): Promise<ReconcileResult | void> {
    const { state } = this.ctx;
    const inst = state.instance(name);
    if (!inst) {
      this.expectations.forget(name);
      return;
    }
    const now = (this.ctx.now ?? Date.now)();
    // Deciding on a copy older than our own last write would only repeat it. The write's watch event
    // wakes the Instance again; the requeue is for a watch event that never comes.
    const awaiting = this.expectations.awaiting(inst, now);
    if (awaiting > 0) return { requeueAfterMs: awaiting };
    const log = lazyChild(this.ctx.logger, { instance: name, class: inst.spec.class });
    const cls = state.instanceClass(inst.spec.class);
    if (inst.metadata.deletionTimestamp) {
      const draining = await this.termination.reconcile(inst, cls, log);
      if (!draining) {
        this.registration.forget(inst.metadata.uid ?? name);
        this.attempts.forget(inst.metadata.uid ?? name);
        this.liveness.forget(inst.metadata.uid ?? name);
        this.expectations.forget(name);
      }
      return draining;
    }

    const node = state.nodeByProviderID(inst.status?.providerID);
    const view: InstanceView = { inst, cls, node, log, status: { ...inst.status } };
    let requeueAfterMs = Infinity;
    let halted = false;
    for (const step of this.steps) {
      const r = await step.reconcile(view);
      if (r.requeueAfterMs !== undefined) requeueAfterMs = Math.min(requeueAfterMs, r.requeueAfterMs);
      if (r.deleted) return;
      if (r.halt) {
        halted = true;
        break;
      }
    }
    // A halting step knows when it wants to be back (a throttled launch); otherwise re-check regularly.
    if (!halted || requeueAfterMs === Infinity) requeueAfterMs = Math.min(requeueAfterMs, RECHECK_MS);
    const patch = statusPatch(inst.status ?? {}, view.status);
    if (patch?.providerID !== undefined) {
      // Which cloud instance this is gets written once, at the version the launch decision read: a
      // stale replica finishing a launch late cannot overwrite it (409/422, and its copy is collected).
      const written = await this.ctx.api.instances.replaceStatus(inst, withoutNulls(view.status));
      this.expectations.wrote(inst, (this.ctx.now ?? Date.now)(), written);
    } else if (patch) {
      const written = await this.ctx.api.instances.patchStatus(name, patch);
      this.expectations.wrote(inst, (this.ctx.now ?? Date.now)(), written);
    }
    return { requeueAfterMs: Math.max(requeueAfterMs, MIN_REQUEUE_MS) };
  }
}

const withoutNulls = (s: DraftStatus): InstanceStatus =>
  Object.fromEntries(Object.entries(s).filter(([, v]) => v !== null && v !== undefined)) as InstanceStatus;

/**
 * The merge patch taking `was` to `next`, or undefined when nothing changed. Compared field by field
 * and structurally: a status read back from the server has its keys in another order.
 */
export function statusPatch(was: DraftStatus, next: DraftStatus): Record<string, unknown> | undefined {
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(next) as (keyof DraftStatus)[]) {
    const value = next[key] ?? null;
    if (!isDeepStrictEqual(value, was[key] ?? null)) patch[key] = value;
  }
  return Object.keys(patch).length ? patch : undefined;
}
