// Fallback across a class's offerings, shared by every provider: try instance types (then zones)
// in the class's order, skip offerings that recently had no capacity, remember new failures.
import type { InstanceClass } from '../src/api/types.ts';
import { InsufficientCapacityError, QuotaExceededError } from './errors.ts';

export interface Offering {
  instanceType: string;
  /** Absent: the provider picks (the class names no zones). */
  zone?: string;
}

/**
 * The class's offerings in preference order: instance type first, then zone. With `only` (the zones
 * an Instance's pod needs), only offerings in those zones: where the class or the provider names no
 * zones, the needed zones themselves, in their order.
 */
export function offerings(cls: InstanceClass, defaultZones: string[] = [], only?: readonly string[]): Offering[] {
  const all = cls.spec.zones?.length ? cls.spec.zones : defaultZones;
  const zones = !only ? all : all.length ? all.filter((z) => only.includes(z)) : [...only];
  return cls.spec.instanceTypes.flatMap((instanceType) =>
    zones.length ? zones.map((zone) => ({ instanceType, zone })) : only ? [] : [{ instanceType }],
  );
}

/** Why an Instance that needs `only` has no offering, for InvalidConfigError. */
export const noOfferingInZones = (cls: InstanceClass, instance: string, only: readonly string[], offered: string[]) =>
  `Instance ${instance} may only be launched in zone ${only.join(' or ')} (its pod's volumes or node affinity need it), and InstanceClass ${cls.metadata.name} launches in ${offered.join(', ') || 'no zone'}; delete the pod's Instance after fixing the class's spec.zones, or move the volume`;

const key = (o: Offering) => `${o.instanceType}/${o.zone ?? '*'}`;

/** Offerings that answered "no capacity", forgotten after `ttlMs` (Karpenter uses 3 minutes). */
export class UnavailableOfferings {
  private readonly until = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  constructor(ttlMs = 3 * 60_000, now: () => number = Date.now) {
    this.ttlMs = ttlMs;
    this.now = now;
  }

  /** Marks one offering; an offering without zone stands for the instance type in every zone. */
  mark(o: Offering): void {
    this.until.set(key(o), this.now() + this.ttlMs);
  }

  isUnavailable(o: Offering): boolean {
    for (const k of [key(o), key({ instanceType: o.instanceType })]) {
      const t = this.until.get(k);
      if (t !== undefined && t > this.now()) return true;
      if (t !== undefined) this.until.delete(k);
    }
    return false;
  }
}

/**
 * Calls `launch` on each available offering in order until one succeeds. Capacity errors mark the
 * offering and move on; any other error stops at once (throttling and bad settings are not fixed
 * by another instance type). All exhausted: one InsufficientCapacityError naming every offering.
 */
export async function launchFirstAvailable<T>(
  all: Offering[],
  unavailable: UnavailableOfferings,
  launch: (o: Offering) => Promise<T>,
): Promise<T> {
  const tried: Offering[] = [];
  const reasons: string[] = [];
  let allQuota = true;
  for (const o of all) {
    if (unavailable.isUnavailable(o)) {
      reasons.push(`${key(o)}: recently without capacity`);
      continue;
    }
    try {
      return await launch(o);
    } catch (e) {
      if (!(e instanceof InsufficientCapacityError)) throw e;
      unavailable.mark(o);
      if (!(e instanceof QuotaExceededError)) allQuota = false;
      tried.push(o);
      reasons.push(`${key(o)}: ${e.message}`);
    }
  }
  if (allQuota && tried.length) {
    throw new QuotaExceededError(
      `account quota reached for every offering of the class (${reasons.join('; ')})`,
      tried,
    );
  }
  throw new InsufficientCapacityError(`no capacity in any offering of the class (${reasons.join('; ')})`, tried);
}
