// Provisioning for one class at a time (the queue key is the class name, so two decisions about the
// same class never race): read the class's pods and Instances, plan, then carry the plan out in the
// order that survives a crash at any line: claim the pod → create the Instance. Pinning or binding the
// pod once that Instance is Ready is placement/'s, pod by pod (but for an Instance Ready at the claim).
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { V1Node, V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import { allowedZones, classZones, podZoneRequirements, type PodZones } from '../../api/zones.ts';
import { namespaceAllowed, usability } from '../../api/classes.ts';
import { NODE_CLASS_LABEL, POD_INSTANCE_ANNOTATION } from '../../api/names.ts';
import {
  awaitsPlacement,
  claimOf,
  classOf,
  hasController,
  heldByOtherGates,
  isNodeReady,
  isTerminal,
  pinnedNodeOf,
  podKey,
  refusedSince,
  unschedulableSince,
} from '../../api/pods.ts';
import { allocatableOf, fits, podRequests, ZERO } from '../../api/quantity.ts';
import type { Instance, InstanceClass } from '../../api/types.ts';
import { describeError, isConflict, isNotFound, isStale } from '../../kube/errors.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import { ClaimNotBoundError } from '../../kube/volumes.ts';
import { lazyChild } from '../../log.ts';
import type { Controller, ControllerContext, Wakes } from '../context.ts';
import type { CloudProvider } from '../../../providers/types.ts';
import * as events from './events.ts';
import { conditionOf, conditionUpdate, type Verdict } from './condition.ts';
import { isWarm } from '../warmpool/pool.ts';
import { CALM_RECHECK_MS, instanceEndsCalm, podEndsCalm } from './calm.ts';
import { claimStands, plan, STRANDED_AFTER_MS, type Plan, type PlanInput } from './plan.ts';
import { place } from '../placement/place.ts';
import { nodeRefusal } from '../instance/decisions.ts';

export interface ProvisioningContext extends ControllerContext {
  newName?: (cls: string) => string;
  /** How long a pinned pod may stay unschedulable before it counts as stranded (plan's default otherwise). */
  strandedAfterMs?: number;
}

/**
 * Writes of ours the informer has not shown us yet (client-go's "expectations"). Planning on a
 * cache that lacks our own claims would hand out the same room twice, so a class waits for them.
 */
interface InFlight {
  /** namespace/name → [pod uid, claimed Instance] */
  claims: Map<string, [string, string]>;
  instances: Set<string>;
  since: number;
}
const EXPECTATION_TIMEOUT_MS = 30_000;
/** The least time between two passes of a class: changes meanwhile are taken in one pass. */
const PASS_INTERVAL_MS = 100;
/** Pod and Instance writes of one pass in flight at once. */
const WRITES_IN_FLIGHT = 32;
/** How soon a class is passed again when the volumes of one of its waiting pods could not be read. */
export const VOLUMES_RETRY_MS = 5_000;
/**
 * Claims one pass carries out (its oldest pods first); the rest wait for the next pass. Pins no longer
 * wait for a pass (placement/ places each pod on its own), but pods created during a pass do: a
 * pass of a thousand claims would hold them for its whole length.
 */
export const MAX_CLAIMS_PER_PASS = 4 * WRITES_IN_FLIGHT;

/** Runs `each` over `items`, at most `limit` at a time. */
async function eachBounded<T>(items: readonly T[], limit: number, each: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await each(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Metadata as it was but for the resourceVersion (which every write moves). Field by field, without
 * copying either side: this runs for every pod and node event.
 */
export const sameMetadata = (a: V1ObjectMeta | undefined, b: V1ObjectMeta | undefined): boolean => {
  if (a === b) return true;
  if (!a || !b) return false;
  const keysA = Object.keys(a) as (keyof V1ObjectMeta)[];
  const keysB = Object.keys(b) as (keyof V1ObjectMeta)[];
  return (
    keysA.every((k) => k === 'resourceVersion' || isDeepStrictEqual(a[k], b[k])) &&
    keysB.every((k) => k === 'resourceVersion' || k in a)
  );
};
const podScheduled = (p: V1Pod) => p.status?.conditions?.find((c) => c.type === 'PodScheduled');

/**
 * Could this pod update change what a pass of its class decides? A pass reads a pod's metadata and
 * spec, whether it has ended, and its PodScheduled condition (how long it has been unschedulable);
 * the rest of its status (the kubelet reporting it Running, IPs, container states) never. Each pod of
 * a burst sees several such updates, and each pass reads every unbound pod of the class.
 */
export function podChangeMatters(old: V1Pod, now: V1Pod): boolean {
  return (
    !sameMetadata(old.metadata, now.metadata) ||
    !isDeepStrictEqual(old.spec, now.spec) ||
    isTerminal(old) !== isTerminal(now) ||
    !isDeepStrictEqual(podScheduled(old), podScheduled(now))
  );
}

/**
 * Could this node update change what a pass decides? A pass reads a node's metadata and spec, whether
 * it is Ready (and schedulable) and its allocatable; not the heartbeats, images or addresses of its status.
 */
export function nodeChangeMatters(old: V1Node, now: V1Node): boolean {
  return (
    !sameMetadata(old.metadata, now.metadata) ||
    !isDeepStrictEqual(old.spec, now.spec) ||
    isNodeReady(old) !== isNodeReady(now) ||
    !isDeepStrictEqual(old.status?.allocatable, now.status?.allocatable)
  );
}

export class ProvisioningController implements Controller {
  readonly name = 'provisioning';
  readonly wakes: Wakes = {
    pod: (p, state, old) => {
      if (old && !podChangeMatters(old, p)) return [];
      // Classes whose calm this ends are woken too: a pod of another class, or none, bound to an
      // Instance's node takes it from the pod of this one that claims it.
      const ended = podEndsCalm(old, p, state);
      for (const c of ended) this.calmSince.delete(c);
      const own = classOf(p);
      return own && !ended.includes(own) ? [own, ...ended] : ended;
    },
    node: (n, _state, old) =>
      old && !nodeChangeMatters(old, n) ? [] : [n.metadata?.labels?.[NODE_CLASS_LABEL]].filter((k): k is string => !!k),
    instance: (i, _state, old) => {
      if (instanceEndsCalm(old, i)) this.calmSince.delete(i.spec.class);
      return [i.spec.class];
    },
    instanceClass: (c) => {
      this.calmSince.delete(c.metadata.name!);
      return [c.metadata.name!];
    },
    resync: (state) => state.classes.list().map((c) => c.metadata.name!),
  };

  private readonly ctx: ProvisioningContext;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly now: () => number;
  private readonly newName: (cls: string) => string;
  /** How long the last plan() of each class held the thread. */
  private readonly planMs = new Map<string, number>();
  /** Classes whose last pass found nothing to decide, and since when (calm.ts). */
  private readonly calmSince = new Map<string, number>();

  constructor(ctx: ProvisioningContext) {
    this.ctx = ctx;
    this.now = ctx.now ?? Date.now;
    this.newName = ctx.newName ?? ((cls) => `${cls}-${randomBytes(8).toString('hex')}`);
  }

  /**
   * Passes of a class at most ten a second, and further apart as its plan grows: planned over the
   * whole class, thousands of pods and Instances took 50–150 ms a pass, and on every change of a
   * burst that held the thread most of the time, delaying every pin, lease renewal and admission.
   * Three times the last plan keeps planning to a quarter of the thread at most, whatever it costs.
   */
  minIntervalMs(className: string): number {
    return Math.max(PASS_INTERVAL_MS, 3 * (this.planMs.get(className) ?? 0));
  }

  async reconcile(className: string): Promise<ReconcileResult | void> {
    const { state, api } = this.ctx;
    const log = lazyChild(this.ctx.logger, { class: className });
    // Our own claims' watch events wake the class; the requeue is for one that never comes.
    if (!this.caughtUp(className)) return { requeueAfterMs: 100 };
    const calm = this.calmSince.get(className);
    if (calm !== undefined) {
      // At most the recheck: a wall clock stepped back must not stretch the calm.
      const left = Math.min(calm + CALM_RECHECK_MS - this.now(), CALM_RECHECK_MS);
      if (left > 0) return { requeueAfterMs: left };
      this.calmSince.delete(className);
    }
    // Only pods not bound yet can need a decision: a class's thousands running are read through
    // the indexes, for the instances a decision concerns.
    const pods = state.unboundPodsOfClass(className);
    const waiting: V1Pod[] = [];
    /** Pinned and not bound yet, or not ipp's to place: never settled, always handed to the plan. */
    const rest: V1Pod[] = [];
    for (const p of pods) (awaitsPlacement(p) ? waiting : rest).push(p);
    // Pinned pods the scheduler has not placed yet: watched until bound, or stranded.
    const unplaced = rest.filter((p) => unschedulableSince(p) && pinnedNodeOf(p));
    if (!waiting.length && !unplaced.length) return;

    const usable = usability(state.instanceClass(className), className, this.ctx.providers);
    if (!usable.usable) {
      this.ctx.events.record(...waiting.map((p) => events.classUnusable(p, usable)));
      log.warn({ pods: waiting.length }, usable.message);
      return; // the class's own events requeue us when it appears or changes
    }
    const { cls, provider } = usable;
    const allowed = (p: V1Pod) => namespaceAllowed(cls, p.metadata!.namespace!);
    for (const p of waiting.filter((p) => !allowed(p))) {
      this.ctx.events.record(events.namespaceNotAllowed(p, className));
    }
    // Every waiting pod holds its Instance and waits only for its node (placement/ pins it then):
    // nothing to plan. Told False before, a pod needs the pass that tells it True.
    const settled = (p: V1Pod) => allowed(p) && conditionOf(p)?.status !== 'False' && claimStands(p, cls, state);
    const unsettled = waiting.filter((p) => !settled(p));
    // A pod pinned by name the scheduler refuses is decided on once it may count as stranded, whether
    // its Instance is there or gone: its pin cannot be undone, so only stranding it decides anything.
    // Before that, mostly a node the scheduler has not seen Ready yet, a pass has nothing to decide
    // for it: planned on every pass regardless, a burst's few such pods cost a plan of the whole
    // class up to ten times a second.
    const now = this.now();
    const strandedAfterMs = this.ctx.strandedAfterMs ?? STRANDED_AFTER_MS;
    let ripeAfter = Infinity;
    for (const p of unplaced) {
      const ripeIn = refusedSince(p)!.getTime() + strandedAfterMs - now;
      // A time that does not parse is ripe now: NaN would leave the class calm with no pod ever stranded.
      ripeAfter = Math.min(ripeAfter, Number.isNaN(ripeIn) ? 0 : ripeIn);
    }
    if (!unsettled.length && !(ripeAfter <= 0)) {
      this.ctx.metrics.pendingPods.set({ class: className }, waiting.length);
      // Without an event nothing can have changed: no requeue but for the first pinned pod that may
      // be stranded. An event within the second is deferred to its end.
      this.calmSince.set(className, now);
      return Number.isFinite(ripeAfter) ? { requeueAfterMs: ripeAfter } : undefined;
    }
    // A pod whose claim stands leaves nothing to decide: the plan reads the load it puts on its
    // instance through the indexes, and otherwise passes over what a burst has mostly (hundreds
    // of pods waiting for their nodes).
    const undecided = [...rest, ...unsettled];
    const zones = await this.zoneNeeds(cls, undecided.filter(allowed), log);
    // A pod whose volumes could not be read waits for the next pass rather than risk the wrong zone.
    const mayPlace = (p: V1Pod) => allowed(p) && !zones.unread.has(podKey(p));

    const planStart = performance.now();
    const decided = this.planClass(cls, provider, undecided, {
      creating: this.ctx.creates
        .pending(className, (n) => state.instance(n) !== undefined, this.now(), state.instances.silentForMs?.() ?? 0)
        .map((c) => c.name),
      mayPlace,
      newName: () => this.newName(className),
      zonesOf: (pod) => zones.of.get(podKey(pod)),
    });
    this.planMs.set(className, performance.now() - planStart);
    this.ctx.events.record(...decided.unfit.map((p) => events.noTypeFits(p, className, cls.spec.instanceTypes)));
    // Counted from the decision on, before any request leaves: a warm-pool refill deciding meanwhile
    // sees these against spec.maxInstances, though the claims come first.
    const claims = decided.claims.slice(0, MAX_CLAIMS_PER_PASS);
    const deferred = decided.claims.length - claims.length;
    const creates = claims.filter((c) => c.create).map((c) => c.instance);
    for (const name of creates) this.ctx.creates.add(className, name, false, this.now());
    this.ctx.events.record(
      ...decided.zoneless.map(({ pod, why, offered }) => events.noZoneFits(pod, className, why, offered)),
    );
    /** What ipp's condition on each pod should say, where it has something to say. */
    const verdicts = new Map<string, [V1Pod, Verdict]>();
    const tell = (pod: V1Pod, verdict: Verdict) => verdicts.set(podKey(pod), [pod, verdict]);
    for (const p of decided.unfit)
      tell(p, {
        status: 'False',
        reason: 'NoInstanceTypeFits',
        message: events.noTypeFitsMessage(className, cls.spec.instanceTypes),
      });
    for (const { pod, why, offered } of decided.zoneless)
      tell(pod, { status: 'False', reason: 'NoZoneFits', message: events.noZoneFitsMessage(className, why, offered) });
    for (const { pod, why } of zones.unbound) tell(pod, { status: 'False', reason: 'ClaimNotBound', message: why });
    // Told False before and now given an instance (the class changed, a volume moved): True again.
    // Only those told False: a True verdict is never written over no condition (conditionUpdate),
    // and a burst's hundreds of waiting pods would each cost a verdict and a write attempt a pass.
    for (const p of waiting) {
      if (conditionOf(p)?.status !== 'False') continue;
      const claim = claimOf(p);
      if (claim && !verdicts.has(podKey(p)) && state.instance(claim)?.spec.class === className)
        tell(p, { status: 'True', reason: 'InstanceAssigned', message: `Instance ${claim} of class ${className}` });
    }

    this.ctx.events.record(
      ...decided.blockedByMaxInstances.map((p) => events.maxInstancesReached(p, className, cls.spec.maxInstances)),
    );

    // Deleting is safe: the pod never ran (it is not bound) and its controller recreates it.
    for (const { pod, why } of decided.stranded) {
      const replacing = hasController(pod);
      // A bare pod whose Instance is gone can never run where it was pinned, and a machine that later
      // registers under its node's name (EC2 reuses private addresses, and node names with them)
      // would get it, outside its class's nodes. Confirmed with a direct read, it is deleted too.
      const orphaned = !replacing && (await this.instanceGone(claimOf(pod)));
      this.ctx.events.record(events.stranded(pod, why, replacing, orphaned));
      log.warn({ pod: `${pod.metadata!.namespace}/${pod.metadata!.name}`, why, orphaned }, 'pinned pod is stranded');
      if (replacing || orphaned) {
        try {
          await api.pods.delete(pod);
        } catch (e) {
          // Changed since read (the scheduler rewrites a refused pod's condition often) or gone: the
          // next pass judges it again. Failing the class's pass for it would hold every other pod.
          if (!isConflict(e) && !isNotFound(e)) throw e;
          log.debug(
            { pod: `${pod.metadata!.namespace}/${pod.metadata!.name}` },
            'stranded pod changed; judged again next pass',
          );
        }
      }
      // A bare pod stays, pinned where it cannot run: say so on it. One being deleted needs no condition.
      else tell(pod, { status: 'False', reason: 'Stranded', message: events.strandedMessage(why, false, false) });
    }

    let failures = 0;
    const failed = (pod: V1Pod, what: string, e: unknown) => {
      failures++;
      if (isStale(e) || isNotFound(e)) {
        log.debug({ pod: pod.metadata?.name }, 'pod changed since it was read; retrying with a fresh view');
      } else {
        log.warn({ pod: pod.metadata?.name, err: e }, `${what} failed: ${describeError(e)}`);
      }
    };
    const expect: InFlight = { claims: new Map(), instances: new Set(), since: this.now() };
    // Claims of different pods are independent: claim → create runs in order per pod, pods in parallel.
    const reserving = new Map<string, Promise<Instance | void>>();
    await eachBounded(claims, WRITES_IN_FLIGHT, async (claim) => {
      const { pod } = claim;
      let createSent = false;
      try {
        const taken = claim.create ? undefined : state.instance(claim.instance);
        const newClaim = pod.metadata?.annotations?.[POD_INSTANCE_ANNOTATION] !== claim.instance;
        /** The pod as the claim left it (its new resourceVersion guards the pin); the cached one when unchanged. */
        let claimed: V1Pod | undefined = newClaim ? undefined : pod;
        if (newClaim) {
          // Reusing an idle instance: reserve it first (once), so its idle teardown cannot win the race.
          if (taken?.status?.idleSince && !claim.warm) {
            if (!reserving.has(claim.instance)) reserving.set(claim.instance, api.instances.reserve(taken));
            await reserving.get(claim.instance);
          }
          this.ctx.claims.add(claim.instance, this.now());
          claimed = (await api.pods.claim(pod, claim.instance)) ?? undefined;
          expect.claims.set(`${pod.metadata!.namespace}/${pod.metadata!.name}`, [pod.metadata!.uid!, claim.instance]);
        }
        if (claim.warm && taken && isWarm(taken)) {
          // Claim first, then out of the pool: a claim that fails leaves the instance warm for the next
          // try, and the pool neither counts nor removes an instance a pod claims. The label's removal
          // also changes the resourceVersion the pool's removal is preconditioned on.
          if (!reserving.has(claim.instance)) reserving.set(claim.instance, api.instances.takeWarm(taken));
          const took = await reserving.get(claim.instance);
          // The pool removed it (aged, surplus) between this pass's read and the take: its node is
          // going. Not placed there; the claim on a deleted Instance gets it again on a later pass.
          if (took?.metadata.deletionTimestamp)
            throw new Error(
              `warm Instance ${claim.instance} was being removed from the pool as pod ${pod.metadata!.namespace}/${pod.metadata!.name} claimed it; ` +
                'not placing the pod on its node, a later pass gives the pod an instance',
            );
        }
        if (claim.create) {
          createSent = true;
          await api.instances.create(claim.instance, className, {
            ...(claim.zones ? { zones: claim.zones } : {}),
            isolation: cls.spec.isolation ?? 'Pod',
          });
          expect.instances.add(claim.instance);
        }
        const source = claim.create
          ? 'new'
          : !claim.warm
            ? 'reused'
            : taken?.status?.phase === 'Ready'
              ? 'warm'
              : 'warm-launching';
        if (newClaim || claim.create)
          this.ctx.events.record(events.provisioning(pod, claim.instance, className, source));
        tell(claimed ?? pod, {
          status: 'True',
          reason: 'InstanceAssigned',
          message: `Instance ${claim.instance} of class ${className}`,
        });
        if (cls.spec.warmPool?.size && newClaim) {
          if (source === 'warm') this.ctx.metrics.warmHits.inc({ class: className });
          else this.ctx.metrics.warmMisses.inc({ class: className });
        }
        log.info(
          { pod: `${pod.metadata!.namespace}/${pod.metadata!.name}`, instance: claim.instance, source },
          'pod given an instance',
        );
        // A Ready instance on a Ready node, now the pod's (claimed, and out of the pool or reserved):
        // place the pod in this pass. Waiting for the next pass would add a round of cache lag
        // (the claim's and the take's watch events) to every warm hit, the case that must be fastest.
        const node = taken?.status?.phase === 'Ready' ? state.nodeByProviderID(taken.status.providerID) : undefined;
        if (claimed && taken && node && isNodeReady(node) && !node.spec?.unschedulable && !nodeRefusal(taken, node))
          await place(this.ctx, { pod: claimed, instance: taken, node });
      } catch (e) {
        if (claim.create && !createSent) this.ctx.creates.drop(className, claim.instance);
        else if (claim.create && !expect.instances.has(claim.instance))
          this.ctx.creates.failed(className, claim.instance, e);
        failed(pod, 'claim', e);
      }
    });
    if (expect.claims.size || expect.instances.size) this.inFlight.set(className, expect);
    // Status writes last: they never hold up a pod's claim or placement.
    const writtenAt = new Date(this.now());
    await eachBounded([...verdicts.values()], WRITES_IN_FLIGHT, async ([pod, verdict]) => {
      const condition = conditionUpdate(pod, verdict, writtenAt);
      if (!condition) return;
      try {
        await api.pods.setCondition(pod, condition);
      } catch (e) {
        // Gone, or recreated under the same name (uid precondition): nothing to tell. Any other
        // failure is only logged: the next pass writes it again, and retrying the whole class with
        // backoff for it would slow the placement of every other pod.
        if (!isNotFound(e) && !isStale(e))
          log.warn(
            { pod: podKey(pod), err: e },
            `setting condition ${condition.type} on pod ${podKey(pod)} failed (${describeError(e)}); the controller needs patch on pods/status`,
          );
      }
    });
    // Stale reads are normal (our own claim changed the pod); the queue's backoff retries them.
    if (failures) throw new Error(`${failures} claim write(s) for class ${className} did not apply; retrying`);
    this.ctx.metrics.pendingPods.set({ class: className }, waiting.length);
    // The claims left for the next pass: nothing else may wake the class for them.
    if (deferred) return { requeueAfterMs: 0 };
    // Nothing watches claims, volumes or StorageClasses: a pod whose volumes could not be read (a 500, a 429,
    // a chart without the RBAC) is asked again soon, not when something else about the class changes.
    if (zones.unread.size) return { requeueAfterMs: VOLUMES_RETRY_MS };
    // Nothing else wakes the class when a pinned pod has been unschedulable long enough to be stranded.
    if (unplaced.length > decided.stranded.length)
      return { requeueAfterMs: this.ctx.strandedAfterMs ?? STRANDED_AFTER_MS };
  }

  /** plan() over the class as the cache shows it; `how` supplies what differs between a full pass and a placing one. */
  private planClass(
    cls: InstanceClass,
    provider: CloudProvider,
    pods: readonly V1Pod[],
    how: Pick<PlanInput, 'creating' | 'mayPlace' | 'newName' | 'zonesOf'>,
  ): Plan {
    const { state } = this.ctx;
    return plan({
      cls,
      pods,
      ...how,
      exists: (n) => state.instance(n) !== undefined,
      claimants: (n) => state.podsClaiming(cls.metadata.name!, n),
      claimHeld: (n) => state.claimHeld(cls.metadata.name!, n),
      instances: state.instancesOfClass(cls.metadata.name!),
      nodeOf: (i) => state.nodeByProviderID(i.status?.providerID),
      podsOnNode: (n) => state.podsOnNode(n),
      capacityOf: (i) =>
        allocatableOf(state.nodeByProviderID(i.status?.providerID)?.status?.allocatable) ??
        provider.capacity(i.status?.instanceType ?? cls.spec.instanceTypes[0]!, cls),
      now: this.now(),
      strandedAfterMs: this.ctx.strandedAfterMs,
      waitingSince: (pod) => state.waitingSince(pod),
      leftUnconfirmed: (node) => state.unconfirmedExit(node) !== undefined,
      fitsSomeType: (pod) => {
        const capacities = cls.spec.instanceTypes.map((t) => provider.capacity(t, cls));
        if (capacities.some((cap) => cap === undefined)) return true;
        return capacities.some((cap) => fits(ZERO, podRequests(pod), cap!));
      },
    });
  }

  /**
   * The zones each pod about to get a new Instance may be launched in: its own node affinity, and
   * the PersistentVolumes its claims are bound to (direct reads, only for these few pods). Pods
   * holding a live Instance already are not asked again.
   */
  private async zoneNeeds(
    cls: InstanceClass,
    pods: readonly V1Pod[],
    log: ControllerContext['logger'],
  ): Promise<{
    of: Map<string, PodZones | undefined>;
    unread: Set<string>;
    unbound: { pod: V1Pod; why: string }[];
  }> {
    const { state } = this.ctx;
    const className = cls.metadata.name!;
    const of = new Map<string, PodZones | undefined>();
    const unread = new Set<string>();
    const unbound: { pod: V1Pod; why: string }[] = [];
    const asking = pods.filter((p) => {
      const claim = claimOf(p);
      const inst = claim ? state.instance(claim) : undefined;
      if (inst && inst.spec.class === className && !inst.metadata.deletionTimestamp) return false;
      // Waiting for an instance, or pinned to one that vanished (recreated under its name); not a
      // pod a queue's gate still holds, which plan() leaves alone.
      return awaitsPlacement(p) || (!!claim && !p.spec?.nodeName && !inst && !heldByOtherGates(p));
    });
    await eachBounded(asking, WRITES_IN_FLIGHT, async (pod) => {
      try {
        const volumes = (await this.ctx.lookup.volumes?.zoneRequirements(pod)) ?? [];
        of.set(podKey(pod), allowedZones([...podZoneRequirements(pod), ...volumes], classZones(cls)));
      } catch (e) {
        unread.add(podKey(pod));
        if (e instanceof ClaimNotBoundError) {
          unbound.push({ pod, why: e.message });
          log.debug({ pod: podKey(pod), claim: e.claim }, e.message);
          return;
        }
        log.warn(
          { pod: podKey(pod), err: e },
          `reading the PersistentVolumeClaims, PersistentVolumes or StorageClasses of pod ${podKey(pod)} failed (${describeError(e)}); it waits until they can be read, retried every ${VOLUMES_RETRY_MS / 1000} s (the controller needs get on all three)`,
        );
      }
    });
    return { of, unread, unbound };
  }

  /** Is the claimed Instance gone or going? The cache's yes is confirmed by a direct read. */
  private async instanceGone(claim: string | undefined): Promise<boolean> {
    if (!claim) return false;
    const going = (i: Instance | undefined) => !i || !!i.metadata.deletionTimestamp || i.status?.phase === 'Terminated';
    return going(this.ctx.state.instance(claim)) && going(await this.ctx.lookup.instances.read(claim));
  }

  /** True once the cache shows every claim and Instance this controller wrote for the class. */
  private caughtUp(className: string): boolean {
    const f = this.inFlight.get(className);
    if (!f) return true;
    for (const [key, [uid, instance]] of f.claims) {
      const [namespace, name] = key.split('/') as [string, string];
      const pod = this.ctx.state.pods.get(name, namespace);
      if (pod?.metadata?.uid !== uid || pod.metadata?.annotations?.[POD_INSTANCE_ANNOTATION] === instance) {
        f.claims.delete(key);
      }
    }
    for (const name of f.instances) if (this.ctx.state.instance(name)) f.instances.delete(name);
    // Given up on only once the watches have shown life since the writes: a cache that cannot show
    // them yet (a watch down, a relist under way) would hand out their rooms again.
    const { pods, instances } = this.ctx.state;
    const now = this.now();
    const heardSince = (silentForMs = 0) => now - silentForMs > f.since;
    const waiting =
      (f.claims.size > 0 && !heardSince(pods.silentForMs?.())) ||
      (f.instances.size > 0 && !heardSince(instances.silentForMs?.()));
    if ((f.claims.size || f.instances.size) && (now - f.since < EXPECTATION_TIMEOUT_MS || waiting)) return false;
    this.inFlight.delete(className);
    return true;
  }
}
