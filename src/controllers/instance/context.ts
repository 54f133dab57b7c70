// What the Instance controller is handed beyond every controller's context.
import type { ControllerContext } from '../context.ts';

export interface InstanceContext extends ControllerContext {
  /** How long a pinned pod may stay unschedulable before it counts as stranded (plan's default otherwise). */
  strandedAfterMs?: number;
}
