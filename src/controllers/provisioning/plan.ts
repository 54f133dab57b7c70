// Which instance for which pod? A pure decision over one class's pods and Instances. The shell
// (controller.ts) carries it out: claims first (pod annotation), then Instance objects; placement/
// pins or binds each claimed pod once its Instance is Ready.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Instance, InstanceClass } from '../../api/types.ts';
import type { Resources } from '../../api/classes.ts';
import { isolationShortfall, requiredIsolation } from '../../../providers/isolation.ts';
import { NODE_INSTANCE_LABEL } from '../../api/names.ts';
import {
  awaitsPlacement,
  claimOf,
  holdsClaim,
  isNodeReady,
  isTerminal,
  isWorkload,
  pinnedNodeOf,
  podKey,
  refusedSince,
} from '../../api/pods.ts';
import { add, fits, podRequests, ZERO } from '../../api/quantity.ts';
import { classZones, zonesCompatible, type PodZones } from '../../api/zones.ts';
import { isWarm } from '../warmpool/pool.ts';
import { isLive } from '../../api/instances.ts';
import { nodeRefusal, refusedSinceReady } from '../instance/decisions.ts';

export interface PlanInput {
  cls: InstanceClass;
  /**
   * The class's pods a decision may concern: every one not bound to a node yet (the waiting, the
   * pinned but unplaced), except waiting pods whose claims stand (claimStands), which it would leave
   * as they are. Bound ones and standing claims may be included; they change nothing.
   */
  pods: readonly V1Pod[];
  /**
   * Pods of this class claiming an Instance, by its name (an index lookup in the controller). By
   * default those in `pods`: enough when `pods` is the whole class.
   */
  claimants?: (instance: string) => readonly V1Pod[];
  /**
   * Does a workload of this class claim the instance and hold it? What claimants answers, from a
   * count the controller's index keeps, for the thousands of instances a burst has taken.
   */
  claimHeld?: (instance: string) => boolean;
  /** Every Instance of this class, including those being deleted. */
  instances: readonly Instance[];
  /** Node of an Instance (by its providerID), when registered. */
  nodeOf: (inst: Instance) => V1Node | undefined;
  /** Pods bound to a node (DaemonSet pods included: they use capacity too). */
  podsOnNode?: (node: string) => readonly V1Pod[];
  /** Allocatable of an Instance: its node's when registered, else the provider's figure for its type. */
  capacityOf: (inst: Instance) => Resources | undefined;
  /** A fresh Instance name (random in production, predictable in tests). */
  newName: () => string;
  /** Does an Instance of this name exist in any class? A claim naming another class's is ignored. */
  exists?: (name: string) => boolean;
  /** May this pod be placed (its namespace allowed)? Others still count as load. */
  mayPlace?: (pod: V1Pod) => boolean;
  /** Now, for how long a pinned pod has been unschedulable. */
  now?: number;
  /** Default STRANDED_AFTER_MS. */
  strandedAfterMs?: number;
  /** Could some instance type of the class run this pod? false only when known not to. */
  fitsSomeType?: (pod: V1Pod) => boolean;
  /**
   * Instances of the class this process has sent creates for that `instances` does not show yet (the
   * warm pool's refills, above all): they count against spec.maxInstances like live ones.
   */
  creating?: readonly string[];
  /** The zones the pod's volumes and node affinity allow (see api/zones.ts); undefined: any. */
  zonesOf?: (pod: V1Pod) => PodZones | undefined;
  /**
   * Since when the pod has waited for ipp (ClusterView.waitingSince): by default its creation. A pod a
   * queue held is served from when it was let go, so a tenant cannot age pods behind a gate of its
   * own and release them ahead of every other namespace's.
   */
  waitingSince?: (pod: V1Pod) => number | undefined;
  /**
   * Did a pod leave this node without being seen to end (ClusterView.unconfirmedExit)? Under Pod
   * isolation its Instance then serves no further pod: its containers may still run there.
   */
  leftUnconfirmed?: (node: string) => boolean;
}

/**
 * How long the scheduler may fail to place a pinned pod before it counts as stranded. Long enough for
 * a node that blinks NotReady to come back; short against a bare-metal boot.
 */
export const STRANDED_AFTER_MS = 2 * 60_000;

export interface Claim {
  pod: V1Pod;
  instance: string;
  /** The Instance does not exist yet: create it after the claim is recorded. */
  create: boolean;
  /** A warm Instance (never used): take it out of the pool (remove its label) once the claim is recorded. */
  warm?: boolean;
  /** With create: the only zones the new Instance may be launched in (its pod's needs). */
  zones?: string[];
}

export interface Plan {
  claims: Claim[];
  /** Pods left waiting because the class is at spec.maxInstances. */
  blockedByMaxInstances: V1Pod[];
  /** Pods pinned to a node that cannot take them; they will never run where they are pinned. */
  stranded: { pod: V1Pod; why: string }[];
  /** Pods no instance type of the class can run (their requests exceed every type's capacity). */
  unfit: V1Pod[];
  /** Pods whose volumes or node affinity allow none of the zones the class launches in. */
  zoneless: { pod: V1Pod; why: string; offered: string[] }[];
}

/**
 * Pinned by an older ipp, by label, but not yet bound: the gate is gone and the selector names its
 * Instance. Its spec can no longer change, so if that Instance disappears the only way on is an
 * Instance of the same name. (Pods pinned by node name turn stranded instead.)
 */
const pinnedUnbound = (p: V1Pod) => {
  const claim = claimOf(p);
  return (
    !!claim &&
    !p.spec?.nodeName &&
    !p.metadata?.deletionTimestamp &&
    !isTerminal(p) &&
    !awaitsPlacement(p) &&
    p.spec?.nodeSelector?.[NODE_INSTANCE_LABEL] === claim
  );
};
/**
 * Does this waiting pod's claim stand as it is, leaving plan() nothing to decide for it? It names a
 * live Instance of the pod's class that has left the warm pool, and under Pod isolation nobody else
 * claims that Instance or runs on its node. Checked per pod before a pass, so that a class whose
 * pods all wait only for their nodes (most of a burst) is not planned again on every change.
 */
export function claimStands(
  pod: V1Pod,
  cls: InstanceClass,
  view: {
    instance(name: string): Instance | undefined;
    podsClaiming(cls: string, instance: string): readonly V1Pod[];
    nodeByProviderID(providerID: string | undefined): V1Node | undefined;
    podsOnNode(node: string): readonly V1Pod[];
  },
): boolean {
  const claim = claimOf(pod);
  const inst = claim ? view.instance(claim) : undefined;
  if (!inst || inst.spec.class !== cls.metadata.name || !isLive(inst) || isWarm(inst)) return false;
  const node = view.nodeByProviderID(inst.status?.providerID);
  // Its node refused now, it holds the pod for nothing (the plan re-homes it).
  if (refusedSinceReady(inst, node)) return false;
  if ((cls.spec.isolation ?? 'Pod') !== 'Pod') return true;
  const key = podKey(pod);
  if (view.podsClaiming(cls.metadata.name!, claim!).some((p) => podKey(p) !== key && holdsClaim(p))) return false;
  const name = node?.metadata?.name;
  return !name || !view.podsOnNode(name).some((p) => podKey(p) !== key && !isTerminal(p) && isWorkload(p));
}

/** Typed list calls give creationTimestamp as a Date, watch events as an ISO string: compare times, not strings. */
const time = (t: Date | string | undefined) => (t ? new Date(t).getTime() : 0);
/**
 * An object's creation time, parsed once per cached object (creationTimestamp never changes, and
 * every pass sorts the pods it plans and the free Instances by it: parsing was 13 % of a pass).
 */
const created = new WeakMap<object, number>();
const createdAt = (o: { metadata?: { creationTimestamp?: Date | string } }) => {
  const m = o.metadata;
  if (!m) return 0;
  let t = created.get(m);
  if (t === undefined) created.set(m, (t = time(m.creationTimestamp)));
  return t;
};
/** Pods claiming each Instance, among `pods`. */
function claimantsAmong(pods: readonly V1Pod[]): (instance: string) => readonly V1Pod[] {
  const by = new Map<string, V1Pod[]>();
  for (const p of pods) {
    const claim = claimOf(p);
    if (!claim) continue;
    const list = by.get(claim);
    if (list) list.push(p);
    else by.set(claim, [p]);
  }
  return (instance) => by.get(instance) ?? [];
}

/** localeCompare's order, without looking the collator up on every comparison. */
const collator = new Intl.Collator();

export function plan(input: PlanInput): Plan {
  const { cls, pods, instances, nodeOf, newName } = input;
  // Asked for every candidate of every pod under Class isolation; neither changes during a plan.
  const requests = new Map<V1Pod, Resources>();
  const requestsOf = (p: V1Pod) => {
    let r = requests.get(p);
    if (!r) requests.set(p, (r = podRequests(p)));
    return r;
  };
  const capacities = new Map<string, Resources | undefined>();
  const capacityOf = (inst: Instance) => {
    const name = inst.metadata.name!;
    if (!capacities.has(name)) capacities.set(name, input.capacityOf(inst));
    return capacities.get(name);
  };
  const isolation = cls.spec.isolation ?? 'Pod';
  const byName = new Map(instances.map((i) => [i.metadata.name!, i]));
  const out: Plan = { claims: [], blockedByMaxInstances: [], stranded: [], unfit: [], zoneless: [] };
  const offered = classZones(cls);
  const zonesOf = (pod: V1Pod) => input.zonesOf?.(pod);

  // Load of an instance: what uses its capacity (pods claiming it, everything running on its node,
  // DaemonSet pods included) and which workloads occupy it (DaemonSet pods never do). Read from the
  // indexes when the plan first asks about an instance, not for every instance of the class up
  // front: a pass during a burst asks about a few, and the class may have thousands.
  type Load = { used: Resources; counted: Set<string>; pods: Set<string> };
  const load = new Map<string, Load>();
  const chargeInto = (l: Load, pod: V1Pod) => {
    const key = podKey(pod);
    if (l.counted.has(key)) return;
    l.counted.add(key);
    l.used = add(l.used, requestsOf(pod));
    if (isWorkload(pod)) l.pods.add(key);
  };
  const claimants = input.claimants ?? claimantsAmong(pods);
  const loadOf = (name: string): Load => {
    let l = load.get(name);
    if (l) return l;
    load.set(name, (l = { used: ZERO, counted: new Set<string>(), pods: new Set<string>() }));
    for (const p of claimants(name)) if (holdsClaim(p)) chargeInto(l, p);
    const inst = byName.get(name);
    const node = inst && nodeOf(inst)?.metadata?.name;
    for (const p of node && input.podsOnNode ? input.podsOnNode(node) : []) if (!isTerminal(p)) chargeInto(l, p);
    return l;
  };
  const charge = (name: string, pod: V1Pod) => chargeInto(loadOf(name), pod);
  /**
   * Does a workload occupy the instance? What Pod isolation asks of every candidate, answered
   * without building its load (request sums, key sets) when the plan has not charged it yet.
   */
  const occupied = (name: string): boolean => {
    const l = load.get(name);
    if (l) return l.pods.size > 0;
    if (input.claimHeld ? input.claimHeld(name) : claimants(name).some(holdsClaim)) return true;
    const inst = byName.get(name);
    const node = inst && input.podsOnNode && nodeOf(inst)?.metadata?.name;
    return !!node && input.podsOnNode!(node).some(isWorkload);
  };

  const creating = new Set(input.creating ?? []);
  let liveCount = instances.filter(isLive).length + creating.size;
  const mayPlace = input.mayPlace ?? (() => true);
  // Oldest first. Sort keys are computed once per pod, not per comparison: a burst of a thousand
  // pods sorted by re-parsed timestamps is measurable in every pass.
  const waiting = pods
    .filter((p) => awaitsPlacement(p) && mayPlace(p))
    .map((p) => ({ p, t: input.waitingSince?.(p) ?? createdAt(p), key: podKey(p) }))
    .sort((a, b) => a.t - b.t || collator.compare(a.key, b.key))
    .map(({ p }) => p);
  const waitingKeys = new Set(waiting.map(podKey));

  const hasRoom = (inst: Instance, pod: V1Pod): boolean => {
    if (isolation === 'Pod') return !occupied(inst.metadata.name!);
    const l = loadOf(inst.metadata.name!);
    const cap = capacityOf(inst);
    // Unknown capacity (type not in the provider's catalog, not yet registered): one pod until we know.
    if (!cap) return l.pods.size === 0;
    return fits(l.used, requestsOf(pod), cap);
  };
  // A Ready instance is only as good as its node: a cordoned, NotReady or refused node (its taints
  // removed since) would hold the pod forever.
  const usable = (inst: Instance) => {
    if (inst.status?.phase !== 'Ready') return true;
    const node = nodeOf(inst);
    return !!node && isNodeReady(node) && !nodeRefusal(inst, node);
  };
  // A class tightened (VM → BareMetal) never hands out an instance launched under the weaker level.
  const required = requiredIsolation(cls);
  const strongEnough = (inst: Instance) =>
    !inst.status?.providerID || isolationShortfall(required, inst.status.hostIsolation).length === 0;
  // A warm instance was never used, so it may serve even where reuse is off (one-shot, reuse: false).
  const mayReuse = !cls.spec.oneShot && (isolation === 'Class' || cls.spec.reuse !== false);
  // A pod that needs certain zones only joins an instance that is (or can only be) in one of them.
  const inItsZone = (inst: Instance, pod: V1Pod) =>
    zonesCompatible(zonesOf(pod)?.zones, {
      launchedIn: inst.status?.providerID ? inst.status.zone : undefined,
      mayLaunchIn: inst.spec.zones ?? offered,
    });
  /** May serve a further pod if it has room: nothing here changes during a plan, so it is judged once. */
  const vacated = (inst: Instance) => {
    const node = isolation === 'Pod' && input.leftUnconfirmed ? nodeOf(inst)?.metadata?.name : undefined;
    return !!node && input.leftUnconfirmed!(node);
  };
  const eligible = (inst: Instance) =>
    isLive(inst) && usable(inst) && strongEnough(inst) && (isWarm(inst) || mayReuse) && !vacated(inst);
  // Warm Ready instances first (they place the pod at once, and were kept for that), then other
  // Ready ones, then those on their way (warm first), oldest first. Sorted once per plan; the
  // Instances this plan creates rank last (Pending, not warm, newest) and are appended in order.
  // Under Pod isolation only free ones can serve: in a burst that is none of the class's
  // thousands, so they are left out before the sort.
  const rank = (i: Instance) => (i.status?.phase === 'Ready' ? 0 : 2) + (isWarm(i) ? 0 : 1);
  const candidates = instances
    .filter((i) => (isolation !== 'Pod' || !occupied(i.metadata.name!)) && eligible(i))
    .map((i) => ({ i, rank: rank(i), t: createdAt(i) }))
    .sort((a, b) => a.rank - b.rank || a.t - b.t)
    .map(({ i }) => i);
  /**
   * Under Pod isolation an occupied candidate stays occupied for the rest of the plan (load only
   * grows), so the search for a home resumes after the last one found full instead of rescanning
   * them for every pod of a burst.
   */
  let firstFree = 0;
  const findHome = (pod: V1Pod): Instance | undefined => {
    // A pod with zone needs may skip free candidates of other zones: it searches them all.
    if (isolation !== 'Pod' || zonesOf(pod)) return candidates.find((i) => inItsZone(i, pod) && hasRoom(i, pod));
    while (firstFree < candidates.length && !hasRoom(candidates[firstFree]!, pod)) firstFree++;
    return candidates[firstFree];
  };
  // An Instance this plan creates: a candidate for later pods of the batch, known by its name.
  const planned = (name: string, zones: string[] | undefined) => {
    const fresh: Instance = {
      metadata: { name, creationTimestamp: new Date(8.64e15) },
      spec: { class: cls.metadata.name!, ...(zones ? { zones } : {}) },
      status: { phase: 'Pending' },
    };
    if (eligible(fresh)) candidates.push(fresh);
    byName.set(name, fresh);
    // A create already in flight (a claim's Instance written but not cached yet) counts once.
    if (!creating.has(name)) liveCount++;
  };

  // Pinned pods whose Instance vanished before the scheduler bound them get it back, same name.
  for (const pod of pods.filter(pinnedUnbound)) {
    const claimed = claimOf(pod)!;
    if (byName.has(claimed) || input.exists?.(claimed)) continue;
    if (cls.spec.maxInstances !== undefined && liveCount >= cls.spec.maxInstances) {
      out.blockedByMaxInstances.push(pod);
      continue;
    }
    const zones = zonesOf(pod)?.zones;
    planned(claimed, zones?.length ? zones : undefined);
    out.claims.push({ pod, instance: claimed, create: true, ...(zones?.length ? { zones } : {}) });
  }

  // Pinned by name, unbound, and unschedulable for a while: its node is gone, replaced, or unfit.
  const now = input.now ?? Date.now();
  for (const pod of pods) {
    const pinned = pinnedNodeOf(pod);
    const since = refusedSince(pod);
    if (!pinned || pod.spec?.nodeName || pod.metadata?.deletionTimestamp || isTerminal(pod) || awaitsPlacement(pod))
      continue;
    if (!since || now - since.getTime() < (input.strandedAfterMs ?? STRANDED_AFTER_MS)) continue;
    const claimed = claimOf(pod);
    const inst = claimed ? byName.get(claimed) : undefined;
    const node = inst && isLive(inst) ? nodeOf(inst) : undefined;
    const scheduler =
      (pod.status?.conditions ?? []).find((c) => c.type === 'PodScheduled')?.message ?? 'no reason given';
    const why =
      !inst || !isLive(inst)
        ? `its Instance ${claimed} is gone`
        : !node || node.metadata?.name !== pinned
          ? `node ${pinned} of its Instance ${claimed} is gone`
          : `kube-scheduler cannot place it on node ${pinned}: ${scheduler}`;
    out.stranded.push({ pod, why });
  }

  /** Under Pod isolation, the Instances a waiting claimer has kept in this pass. */
  const kept = new Set<string>();
  for (const pod of waiting) {
    let claimed = claimOf(pod);
    // A claim naming another class's Instance (copied or forged) is no claim at all.
    if (claimed && !byName.has(claimed) && input.exists?.(claimed)) claimed = undefined;
    let current = claimed ? byName.get(claimed) : undefined;
    // Its Instance's node is refused now (its taints or labels changed after it was Ready): placement
    // will never place the pod there, so the claim holds nothing. Find it another home.
    if (claimed && current && isLive(current) && refusedSinceReady(current, nodeOf(current))) {
      claimed = undefined;
      current = undefined;
    }
    if (isolation === 'Pod' && claimed && current && isLive(current)) {
      // One pod per instance: a claim stands only if nobody else holds the instance already.
      const others = [...loadOf(claimed).pods].filter((k) => k !== podKey(pod) && !waitingKeys.has(k));
      if (others.length || kept.has(claimed)) {
        claimed = undefined;
        current = undefined;
      } else {
        kept.add(claimed);
      }
    }
    if (claimed && current && isLive(current)) {
      // Claimed, but the take from the warm pool has not landed (it failed, or the controller died
      // after the claim): take it now, and place the pod only once it is out of the pool.
      // Placing it once its Instance is Ready is the placement controller's, pod by pod.
      if (isWarm(current)) out.claims.push({ pod, instance: claimed, create: false, warm: true });
      continue;
    }
    // The claim was recorded but its Instance is not there: never created (the controller died in
    // between) or deleted after a launch/registration timeout. Either way: (re)create it, room
    // allowing; at maxInstances, it looks for a free instance (a warm one filled the last place
    // meanwhile) like an unclaimed pod, rather than wait for a teardown.
    const full = cls.spec.maxInstances !== undefined && liveCount >= cls.spec.maxInstances;
    if (claimed && !current && !full) {
      // Other pods claiming the same name then see it as on its way, not missing (one create, counted once).
      const zones = zonesOf(pod)?.zones;
      planned(claimed, zones?.length ? zones : undefined);
      out.claims.push({ pod, instance: claimed, create: true, ...(zones?.length ? { zones } : {}) });
      continue;
    }
    // Unclaimed, claimed by an Instance that is going away, or by a missing one in a full class:
    // find it a home, if any type can be one.
    if (input.fitsSomeType && !input.fitsSomeType(pod)) {
      out.unfit.push(pod);
      continue;
    }
    const needs = zonesOf(pod);
    if (needs && !needs.zones.length) {
      out.zoneless.push({ pod, why: needs.why, offered: offered ?? [] });
      continue;
    }
    const home = findHome(pod);
    if (home) {
      charge(home.metadata.name!, pod);
      out.claims.push({ pod, instance: home.metadata.name!, create: false, ...(isWarm(home) ? { warm: true } : {}) });
      continue;
    }
    if (cls.spec.maxInstances !== undefined && liveCount >= cls.spec.maxInstances) {
      out.blockedByMaxInstances.push(pod);
      continue;
    }
    const name = newName();
    // Later pods of this batch may join the fresh instance (Class isolation) but never reuse it
    // under Pod isolation: charge() below fills it.
    planned(name, needs?.zones);
    charge(name, pod);
    out.claims.push({ pod, instance: name, create: true, ...(needs ? { zones: needs.zones } : {}) });
  }
  return out;
}
