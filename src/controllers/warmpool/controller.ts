// Keeps each class's warm pool filled: Instances launched, registered and Ready that no pod has used,
// labelled WARM_LABEL (the launch, registration and liveness steps of the Instance controller treat
// them like any other). Keyed by class, like provisioning, so two decisions about one pool never race;
// it waits until the cache shows its own creates and deletes before deciding again (expectations).
import { randomBytes } from 'node:crypto';
import { usability } from '../../api/classes.ts';
import { isWorkload } from '../../api/pods.ts';
import type { Instance } from '../../api/types.ts';
import { isConflict } from '../../kube/errors.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import type { Controller, ControllerContext, Wakes } from '../context.ts';
import { isolationShortfall, requiredIsolation } from '../../../providers/isolation.ts';
import { warmPoolInvalid, warmRemoved } from './events.ts';
import { DEFAULT_MAX_AGE, isWarm, poolPlan } from './pool.ts';

export interface WarmPoolContext extends ControllerContext {
  newName?: (cls: string) => string;
}

const EXPECTATION_TIMEOUT_MS = 30_000;
/**
 * How long the pool must stay over its size before the surplus goes, while the size has not dropped
 * to 0. Under a stream of pods the count can overshoot by one for a moment (a refill written while a
 * claim was in flight); the next pod takes the extra one, which is cheaper than a teardown and a launch.
 */
export const SURPLUS_GRACE_MS = 30_000;
/** With a schedule, look again every minute: a window opens or closes on the minute. */
const SCHEDULE_TICK_MS = 60_000;

export class WarmPoolController implements Controller {
  readonly name = 'warmpool';
  readonly wakes: Wakes = {
    instance: (i) => [i.spec.class],
    instanceClass: (c) => [c.metadata.name!],
    resync: (state) =>
      state.classes
        .list()
        .filter((c) => c.spec.warmPool || state.instancesOfClass(c.metadata.name!).some(isWarm))
        .map((c) => c.metadata.name!),
  };

  private readonly ctx: WarmPoolContext;
  private readonly now: () => number;
  private readonly newName: (cls: string) => string;
  /** Per class: names created or deleted that the cache does not show yet, and since when. */
  private readonly inFlight = new Map<string, { created: Set<string>; deleted: Set<string>; since: number }>();
  /** Per class: since when the pool has been over its size (this process's view). */
  private readonly overSince = new Map<string, number>();

  constructor(ctx: WarmPoolContext) {
    this.ctx = ctx;
    this.now = ctx.now ?? Date.now;
    this.newName = ctx.newName ?? ((cls) => `${cls}-${randomBytes(8).toString('hex')}`);
  }

  async reconcile(className: string): Promise<ReconcileResult | void> {
    const { state, api, metrics } = this.ctx;
    const cls = state.instanceClass(className);
    if (!cls) {
      // Its Instances are the instance controller's; nothing to hold a pool for, nor to report.
      this.forget(className);
      this.inFlight.delete(className);
      return;
    }
    if (!this.caughtUp(className)) return { requeueAfterMs: 100 };
    const instances = state.instancesOfClass(className);
    const inUse = (i: Instance) => {
      if (state.podsClaiming(i.metadata.name!).some((p) => !p.metadata?.deletionTimestamp || p.spec?.nodeName))
        return true;
      const node = state.nodeByProviderID(i.status?.providerID)?.metadata?.name;
      return !!node && state.podsOnNode(node).some(isWorkload);
    };
    // A warm instance launched before the class asked for stronger host isolation would never be taken.
    const outdated = (i: Instance) =>
      !!i.status?.providerID && isolationShortfall(requiredIsolation(cls), i.status.hostIsolation).length > 0;
    const now = this.now();
    const log = this.ctx.logger.child({ class: className, controller: this.name });
    let decided;
    try {
      decided = poolPlan({ cls, instances, inUse, outdated, now });
    } catch (e) {
      // A malformed maxAge or cron (the schema cannot catch an hour of 25): say so, hold the pool as is.
      const message = `spec.warmPool of InstanceClass "${className}" cannot be used: ${(e as Error).message}; fix it`;
      this.ctx.events.record(warmPoolInvalid(cls, message));
      log.warn(message);
      return;
    }
    if (!cls.spec.warmPool && decided.ready + decided.launching === 0) {
      // No pool and nothing left of one: no series (every class change wakes this controller).
      this.forget(className);
      return;
    }
    metrics.warmInstances.set({ class: className, state: 'ready' }, decided.ready);
    metrics.warmInstances.set({ class: className, state: 'launching' }, decided.launching);

    const expect = { created: new Set<string>(), deleted: new Set<string>(), since: now };
    let conflicts = 0;
    const surplus = decided.remove.some((r) => r.why === 'Surplus');
    const overSince = surplus ? (this.overSince.get(className) ?? now) : undefined;
    if (overSince === undefined) this.overSince.delete(className);
    else this.overSince.set(className, overSince);
    const holdSurplus = decided.desired > 0 && overSince !== undefined && now - overSince < SURPLUS_GRACE_MS;
    for (const { inst, why } of decided.remove) {
      if (why === 'Surplus' && holdSurplus) continue;
      const detail = why === 'Aged' ? (cls.spec.warmPool?.maxAge ?? DEFAULT_MAX_AGE) : String(decided.desired);
      try {
        // At the version judged warm: a pod that took it meanwhile (label removed) wins, and it stays.
        await api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
      } catch (e) {
        if (!isConflict(e)) throw e;
        conflicts++;
        continue;
      }
      expect.deleted.add(inst.metadata.name!);
      this.ctx.events.record(warmRemoved(inst, why, detail));
      log.info(
        {
          instance: inst.metadata.name,
          why,
          desired: decided.desired,
          ready: decided.ready,
          launching: decided.launching,
        },
        'warm instance removed',
      );
    }
    const usable = usability(cls, className, this.ctx.providers).usable;
    if (decided.create && !usable) {
      log.debug('class is not usable; not filling its warm pool');
    } else {
      for (let n = 0; n < decided.create; n++) {
        const name = this.newName(className);
        await api.instances.create(name, className, { warm: true });
        expect.created.add(name);
        log.info(
          { instance: name, desired: decided.desired, ready: decided.ready, launching: decided.launching },
          'warm instance created',
        );
      }
    }
    if (expect.created.size || expect.deleted.size) this.inFlight.set(className, expect);
    if (decided.capped) log.debug({ capped: decided.capped }, 'warm pool held back by spec.maxInstances');
    if (conflicts) return { requeueAfterMs: 250 };
    if (holdSurplus) return { requeueAfterMs: SURPLUS_GRACE_MS - (now - overSince!) };
    const waits = [decided.nextAgeOutMs, cls.spec.warmPool?.schedule?.length ? SCHEDULE_TICK_MS : undefined].filter(
      (w): w is number => w !== undefined,
    );
    if (waits.length) return { requeueAfterMs: Math.max(1_000, Math.min(...waits)) };
  }

  /**
   * Drops the class's series (a deleted class's would otherwise be exported for ever, at their last
   * value) and what this process remembers of its pool.
   */
  private forget(className: string): void {
    for (const state of ['ready', 'launching']) this.ctx.metrics.warmInstances.remove({ class: className, state });
    this.ctx.metrics.warmHits.remove({ class: className });
    this.ctx.metrics.warmMisses.remove({ class: className });
    this.overSince.delete(className);
  }

  /** True once the cache shows every create and delete this controller made for the class. */
  private caughtUp(className: string): boolean {
    const f = this.inFlight.get(className);
    if (!f) return true;
    for (const name of f.created) if (this.ctx.state.instance(name)) f.created.delete(name);
    for (const name of f.deleted) {
      const inst = this.ctx.state.instance(name);
      if (!inst || inst.metadata.deletionTimestamp) f.deleted.delete(name);
    }
    if ((f.created.size || f.deleted.size) && this.now() - f.since < EXPECTATION_TIMEOUT_MS) return false;
    this.inFlight.delete(className);
    return true;
  }
}
