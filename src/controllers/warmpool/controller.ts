// Keeps each class's warm pool filled: Instances launched, registered and Ready that no pod has used,
// labelled WARM_LABEL (the launch, registration and liveness steps of the Instance controller treat
// them like any other). Keyed by class, like provisioning, so two decisions about one pool never race.
// The cache lags the pool's own writes, so the count adds what this process has asked for and the
// cache does not show yet (expectations, ctx.creates), recorded before each request leaves: a refill
// that fails or is retried half-way, or a pass that starts before the last one's creates are visible,
// never launches them twice; provisioning's creates in flight count against maxInstances too. Another process (a new leader after a SIGKILL) has none of this memory and
// needs none: it lists every Instance before it leads, and an Instance exists from its create on,
// long before it launches.
import { randomBytes } from 'node:crypto';
import { usability } from '../../api/classes.ts';
import { isWorkload } from '../../api/pods.ts';
import type { Instance } from '../../api/types.ts';
import { isConflict } from '../../kube/errors.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import type { Controller, ControllerContext, Wakes } from '../context.ts';
import { CREATE_EXPECTATION_MS } from '../creates.ts';
import { isolationShortfall, requiredIsolation } from '../../../providers/isolation.ts';
import { refusedSinceReady } from '../instance/decisions.ts';
import { warmOrphaned, warmPoolInvalid, warmRemoved } from './events.ts';
import { DEFAULT_MAX_AGE, isWarm, poolPlan } from './pool.ts';

export interface WarmPoolContext extends ControllerContext {
  newName?: (cls: string) => string;
}

const DELETE_EXPECTATION_MS = 30_000;
/**
 * How long the pool must stay over its size before the surplus goes, while the size has not dropped
 * to 0. Under a stream of pods the count can overshoot by one for a moment (a refill written while a
 * claim was in flight); the next pod takes the extra one, which is cheaper than a teardown and a launch.
 */
export const SURPLUS_GRACE_MS = 30_000;
/** How long a class must be missing before its warm instances are removed (a cache gap is not a deletion). */
export const ORPHAN_GRACE_MS = 5 * 60_000;
/** With a schedule, look again every minute: a window opens or closes on the minute. */
const SCHEDULE_TICK_MS = 60_000;

export class WarmPoolController implements Controller {
  readonly name = 'warmpool';
  readonly wakes: Wakes = {
    // A class without a pool cares only about what is left of one: a burst's thousand Instances of
    // such a class would each wake a pass over all of them.
    instance: (i, state) => (isWarm(i) || state.instanceClass(i.spec.class)?.spec.warmPool ? [i.spec.class] : []),
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
  /** Per class: warm Instances whose delete the cache does not show yet, each with since when. */
  private readonly deleting = new Map<string, Map<string, number>>();
  /** Per deleted class with warm instances left: since when it has been missing from the cache. */
  private readonly classGoneSince = new Map<string, number>();
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
      // Nothing to hold a pool for, nor to report; its busy Instances are the instance controller's.
      this.forget(className);
      return this.removeOrphans(className);
    }
    this.classGoneSince.delete(className);
    if (!cls.spec.warmPool && !state.instancesOfClass(className).some(isWarm)) {
      // No pool and nothing left of one: no series (every class change wakes this controller).
      this.forget(className);
      return;
    }
    const creating = this.ctx.creates.pending(
      className,
      (n) => !!state.instance(n),
      this.now(),
      state.instances.silentForMs?.() ?? 0,
    );
    const deleting = this.pendingDeletes(className);
    // Deleted, but the cache has not caught up: gone from the pool already (counting it would hold a
    // refill back, and judging it again would only meet a 409).
    const instances = state.instancesOfClass(className).filter((i) => !deleting.has(i.metadata.name!));
    const inUse = (i: Instance) => {
      // Claimed by a pass of provisioning a moment ago, the claim not in the cache yet.
      if (this.ctx.claims.recent(i.metadata.name!, this.now())) return true;
      if (
        state.podsClaiming(className, i.metadata.name!).some((p) => !p.metadata?.deletionTimestamp || p.spec?.nodeName)
      )
        return true;
      const node = state.nodeByProviderID(i.status?.providerID)?.metadata?.name;
      return !!node && state.podsOnNode(node).some(isWorkload);
    };
    // A warm instance launched before the class asked for stronger host isolation would never be
    // taken, nor one whose node ipp refuses now (its taints removed after it was Ready).
    const outdated = (i: Instance) =>
      !!i.status?.providerID &&
      (isolationShortfall(requiredIsolation(cls), i.status.hostIsolation).length > 0 ||
        refusedSinceReady(i, state.nodeByProviderID(i.status.providerID)));
    const now = this.now();
    const log = this.ctx.logger.child({ class: className, controller: this.name });
    let decided;
    try {
      decided = poolPlan({
        cls,
        instances,
        inUse,
        outdated,
        creating: creating.filter((c) => c.warm).length,
        creatingForPods: creating.filter((c) => !c.warm).length,
        now,
      });
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
      deleting.set(inst.metadata.name!, this.now());
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
      // Counted before the first request leaves: from here on every pass counts them, whatever becomes
      // of this one.
      const names = Array.from({ length: decided.create }, () => this.newName(className));
      for (const name of names) this.ctx.creates.add(className, name, true, now);
      for (const [n, name] of names.entries()) {
        try {
          await api.instances.create(name, className, { warm: true, isolation: cls.spec.isolation ?? 'Pod' });
        } catch (e) {
          this.ctx.creates.failed(className, name, e);
          for (const never of names.slice(n + 1)) this.ctx.creates.drop(className, never);
          throw e;
        }
        log.info(
          { instance: name, desired: decided.desired, ready: decided.ready, launching: decided.launching },
          'warm instance created',
        );
      }
    }
    if (decided.capped) log.debug({ capped: decided.capped }, 'warm pool held back by spec.maxInstances');
    if (conflicts) return { requeueAfterMs: 250 };
    if (holdSurplus) return { requeueAfterMs: SURPLUS_GRACE_MS - (now - overSince!) };
    const waits = [decided.nextAgeOutMs, cls.spec.warmPool?.schedule?.length ? SCHEDULE_TICK_MS : undefined].filter(
      (w): w is number => w !== undefined,
    );
    if (waits.length) return { requeueAfterMs: Math.max(1_000, Math.min(...waits)) };
    // A write the cache never shows (created and deleted by someone else in between) must not hold
    // the pool short for good: look again when it stops counting.
    if (creating.length || decided.create || deleting.size) return { requeueAfterMs: CREATE_EXPECTATION_MS };
  }

  /**
   * Drops the class's series (a deleted class's would otherwise be exported for ever, at their last
   * value) and what this process remembers of its pool.
   */
  /**
   * Removes the warm instances of a deleted class, which nothing will ever take (idle teardown passes
   * over warm instances, and no pool refreshes them): once the class has been missing for
   * ORPHAN_GRACE_MS, so that a class missing for a moment from the cache costs nothing; each at the
   * version judged warm and unused.
   */
  private async removeOrphans(className: string): Promise<ReconcileResult | void> {
    const { state, api } = this.ctx;
    const deleting = this.pendingDeletes(className);
    const warm = state
      .instancesOfClass(className)
      .filter((i) => isWarm(i) && !i.metadata.deletionTimestamp && !deleting.has(i.metadata.name!));
    if (!warm.length) {
      this.classGoneSince.delete(className);
      this.deleting.delete(className);
      return;
    }
    const now = this.now();
    const since = this.classGoneSince.get(className) ?? now;
    this.classGoneSince.set(className, since);
    if (now - since < ORPHAN_GRACE_MS) return { requeueAfterMs: since + ORPHAN_GRACE_MS - now };
    for (const inst of warm) {
      if (state.podsClaiming(className, inst.metadata.name!).length) continue;
      try {
        await api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
      } catch (e) {
        if (!isConflict(e)) throw e;
        continue;
      }
      deleting.set(inst.metadata.name!, now);
      this.ctx.events.record(warmOrphaned(inst));
      this.ctx.logger.info(
        { instance: inst.metadata.name, class: className },
        'warm instance of a deleted class removed',
      );
    }
    return { requeueAfterMs: ORPHAN_GRACE_MS };
  }

  private forget(className: string): void {
    for (const state of ['ready', 'launching']) this.ctx.metrics.warmInstances.remove({ class: className, state });
    this.ctx.metrics.warmHits.remove({ class: className });
    this.ctx.metrics.warmMisses.remove({ class: className });
    this.overSince.delete(className);
  }

  /**
   * The class's warm deletes the cache does not show yet. Each is forgotten once the cache shows it
   * (gone or deleting), or after DELETE_EXPECTATION_MS: a delete that never lands must not hide an
   * instance for good.
   */
  private pendingDeletes(className: string): Map<string, number> {
    const f = this.deleting.get(className) ?? new Map<string, number>();
    this.deleting.set(className, f);
    const now = this.now();
    for (const [name, since] of f) {
      const inst = this.ctx.state.instance(name);
      if (!inst || inst.metadata.deletionTimestamp || now - since >= DELETE_EXPECTATION_MS) f.delete(name);
    }
    return f;
  }
}
