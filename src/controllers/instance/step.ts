// What the steps of an Instance's life share for one reconcile (after Karpenter's nodeclaim
// lifecycle): each step reads the world, edits the draft status, and says whether the steps after it
// may run. The controller writes the status once, at the end, if it changed.
import type { V1Node } from '@kubernetes/client-node';
import type { Instance, InstanceClass, InstanceStatus } from '../../api/types.ts';
import type { Logger } from '../../log.ts';

/** Status as the steps would have it; a null field is removed by the merge patch. */
export type DraftStatus = { [K in keyof InstanceStatus]?: InstanceStatus[K] | null };

export interface InstanceView {
  /** As read from the cache; never edited. */
  readonly inst: Instance;
  readonly cls: InstanceClass | undefined;
  /** The Node matched by spec.providerID, when the instance has one and it registered. */
  readonly node: V1Node | undefined;
  readonly log: Logger;
  /** Starts as a copy of inst.status; steps edit it. */
  status: DraftStatus;
}

export interface StepResult {
  /** Reconcile again after this long; the smallest of all steps wins. */
  requeueAfterMs?: number;
  /** The steps after this one must not run (their inputs are not there yet). */
  halt?: boolean;
  /** The Instance was deleted: stop, and write no status. */
  deleted?: boolean;
}

export interface Step {
  reconcile(view: InstanceView): Promise<StepResult>;
}
