// What a class's warm pool needs now: how many warm Instances to create, which to remove. Pure.
// A warm Instance is labelled WARM_LABEL and never used; the pod that takes one removes the label
// first, so from then on it is an ordinary Instance of its pod and no longer the pool's business.
import { parseDuration } from '../../api/duration.ts';
import { WARM_LABEL } from '../../api/names.ts';
import type { Instance, InstanceClass } from '../../api/types.ts';
import { scheduleOpen } from './schedule.ts';
import { isLive } from '../../api/instances.ts';

export const DEFAULT_MAX_AGE = '24h';

export const isWarm = (i: Instance) => i.metadata.labels?.[WARM_LABEL] === 'true';
const ready = (i: Instance) => i.status?.phase === 'Ready';
const created = (i: Instance) => new Date(i.metadata.creationTimestamp ?? 0).getTime();

export interface PoolInput {
  cls: InstanceClass;
  /** Every Instance of the class. */
  instances: readonly Instance[];
  /** Does a pod claim the Instance or run on its node? A warm one that is used is never removed. */
  inUse: (inst: Instance) => boolean;
  /** Launched under settings the class no longer accepts (a weaker host isolation): replace like an aged one. */
  outdated?: (inst: Instance) => boolean;
  /**
   * Warm Instances the pool has asked for that `instances` does not show yet (its cache lags its own
   * creates): members of the pool still launching, and live instances under spec.maxInstances.
   */
  creating?: number;
  /** Instances created for pods that `instances` does not show yet: they count against spec.maxInstances. */
  creatingForPods?: number;
  now: number;
}

export interface PoolPlan {
  /** The pool's size right now: spec.warmPool.size inside a schedule window (or without one), else 0. */
  desired: number;
  /** Warm Instances to create now. */
  create: number;
  /** Warm Instances to delete now, each at the version judged. */
  remove: { inst: Instance; why: 'Aged' | 'Surplus' }[];
  ready: number;
  launching: number;
  /** Creations held back by spec.maxInstances. */
  capped: number;
  /** When the next warm Instance ages out (ms from now), if one will. */
  nextAgeOutMs?: number;
}

/** The pool's target size at `now`. */
export function desiredSize(cls: InstanceClass, now: number): number {
  const pool = cls.spec.warmPool;
  if (!pool?.size) return 0;
  return scheduleOpen(pool.schedule, now) ? pool.size : 0;
}

/**
 * The pool's next step. Fresh warm Instances fill the pool; an aged one keeps serving until a fresh
 * one is Ready in its place (one replacement in flight at a time, new before old goes). A smaller
 * target (size lowered, schedule window closed) removes launching ones first, then the oldest.
 * Warm Instances count against spec.maxInstances: at the cap the pool does not grow, and an aged
 * instance that cannot be replaced first goes first (the pool refills when there is room).
 */
export function poolPlan({
  cls,
  instances,
  inUse,
  outdated,
  creating = 0,
  creatingForPods = 0,
  now,
}: PoolInput): PoolPlan {
  const desired = desiredSize(cls, now);
  const maxAgeMs = parseDuration(cls.spec.warmPool?.maxAge ?? DEFAULT_MAX_AGE, 'spec.warmPool.maxAge');
  const lives = instances.filter(isLive);
  const warm = lives.filter((i) => isWarm(i) && !inUse(i)).sort((a, b) => created(a) - created(b));
  const aged = warm.filter((i) => now - created(i) >= maxAgeMs || !!outdated?.(i));
  const fresh = warm.filter((i) => !aged.includes(i));
  const freshReady = fresh.filter(ready);
  const freshLaunching = fresh.filter((i) => !ready(i));
  const out: PoolPlan = {
    desired,
    create: 0,
    remove: [],
    ready: warm.filter(ready).length,
    launching: warm.filter((i) => !ready(i)).length + creating,
    capped: 0,
  };
  const ages = fresh.map((i) => created(i) + maxAgeMs - now);
  if (ages.length) out.nextAgeOutMs = Math.max(0, Math.min(...ages));

  if (fresh.length + creating > desired) {
    // Shrinking: what is still booting costs without serving anyone yet, then the oldest. Creates not
    // in the cache yet cannot be removed before they appear; they count, so what is there goes first.
    const order = [...[...freshLaunching].reverse(), ...freshReady];
    for (const inst of order.slice(0, fresh.length + creating - desired)) out.remove.push({ inst, why: 'Surplus' });
    for (const inst of aged) out.remove.push({ inst, why: 'Aged' });
    return out;
  }
  // Aged instances serve while the fresh Ready ones fall short of the target; Ready ones, youngest first.
  const agedOrder = [...aged.filter(ready).reverse(), ...aged.filter((i) => !ready(i)).reverse()];
  const keep = agedOrder.slice(0, Math.max(0, desired - freshReady.length));
  for (const inst of agedOrder.slice(keep.length)) out.remove.push({ inst, why: 'Aged' });

  const missing = desired - fresh.length - creating - keep.length;
  const replace = keep.length > 0 && freshLaunching.length + creating === 0 && missing <= 0 ? 1 : 0;
  const wanted = Math.max(0, missing) + replace;
  const max = cls.spec.maxInstances;
  const room = max === undefined ? wanted : Math.max(0, max - lives.length - creating - creatingForPods);
  out.create = Math.min(wanted, room);
  out.capped = wanted - out.create;
  if (replace && out.capped > 0 && out.remove.length === 0) {
    // At the cap a replacement cannot come first: let the oldest go, and refill into its room.
    const oldest = keep.reduce((a, b) => (created(a) <= created(b) ? a : b));
    out.remove.push({ inst: oldest, why: 'Aged' });
  }
  return out;
}
