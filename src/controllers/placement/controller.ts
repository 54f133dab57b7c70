// Placement, one pod at a time (the queue key is namespace/name): a claimed pod is pinned or bound the
// moment its Instance and node are Ready, whatever else its class is doing. A class's provisioning
// pass reads every pod of the class and writes claims in rounds; placing behind it made every node
// that turned Ready in a burst wait for the round under way (seconds at a thousand pods).
import type { V1Pod } from '@kubernetes/client-node';
import { awaitsPlacement, claimOf, classOf, isNodeReady, podKey } from '../../api/pods.ts';
import { isNotFound, isStale } from '../../kube/errors.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import type { ClusterView, Controller, ControllerContext, Wakes } from '../context.ts';
import { nodeChangeMatters } from '../provisioning/controller.ts';
import { isWarm } from '../warmpool/pool.ts';
import { instanceChangeMattersToPlacement, placementOf } from './decide.ts';
import { place } from './place.ts';

/** Pods waiting on a claim to `instance`, by key (a handful at most: usually one). */
const waitingOn = (state: ClusterView, cls: string | undefined, instance: string) =>
  cls === undefined ? [] : state.podsClaiming(cls, instance).filter(awaitsPlacement).map(podKey);

/** If a pin's watch event has not arrived after this long, the pod is decided again anyway. */
const SENT_TIMEOUT_MS = 10_000;

export class PlacementController implements Controller {
  readonly name = 'placement';
  readonly wakes: Wakes = {
    // The pod itself (also once placed, to forget what was sent for it), and under Pod isolation the
    // claimers it may have been holding back: of its own Instance, of the one it claimed before (a
    // claimer re-homed by provisioning leaves the younger ones of its old Instance to be served), and
    // of the Instance whose node it is on without claiming it (a pod bound there by name, leaving).
    pod: (p, state, old) => {
      const claim = claimOf(p);
      const own = this.sent.has(podKey(p)) ? [podKey(p)] : [];
      const keys = claim ? [...own, ...waitingOn(state, classOf(p), claim)] : own;
      const before = old && claimOf(old);
      if (before && (before !== claim || classOf(old) !== classOf(p)))
        keys.push(...waitingOn(state, classOf(old), before));
      // The node's Instance by providerID, as placement matches them (a GKE pool's nodes carry no
      // Instance label). A claim of another class, or a forged one, does not make it the pod's own.
      const nodeName = p.spec?.nodeName;
      const node = nodeName ? state.node(nodeName) : undefined;
      const host = node ? state.instanceByProviderID(node.spec?.providerID) : undefined;
      if (host && !(host.metadata.name === claim && host.spec.class === classOf(p)))
        keys.push(...waitingOn(state, host.spec.class, host.metadata.name!));
      return keys;
    },
    instance: (i, state, old) =>
      i.status?.providerID && !isWarm(i) && (!old || instanceChangeMattersToPlacement(old, i))
        ? waitingOn(state, i.spec.class, i.metadata.name!)
        : [],
    node: (n, state, old) => {
      if (!isNodeReady(n) || (old && !nodeChangeMatters(old, n))) return [];
      const inst = state.instanceByProviderID(n.spec?.providerID);
      return inst ? waitingOn(state, inst.spec.class, inst.metadata.name!) : [];
    },
    instanceClass: (c, state) =>
      state
        .podsOfClass(c.metadata.name!)
        .filter((p) => awaitsPlacement(p) && claimOf(p))
        .map(podKey),
    resync: (state) =>
      state.classes
        .list()
        .flatMap((c) => state.podsOfClass(c.metadata.name!))
        .filter((p) => awaitsPlacement(p) && claimOf(p))
        .map(podKey),
  };

  private readonly ctx: ControllerContext;
  /**
   * The resourceVersion each pod was placed from, until the cache shows a newer one: a reconcile
   * woken meanwhile (by its Instance or node) would place it again and be refused as stale.
   */
  private readonly sent = new Map<string, { resourceVersion: string; at: number }>();

  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const slash = key.indexOf('/');
    const pod = this.ctx.state.pods.get(key.slice(slash + 1), key.slice(0, slash));
    if (!pod) return void this.sent.delete(key);
    if (this.inFlight(key, pod)) return;
    const placement = placementOf(pod, this.ctx.state);
    if (!placement) return;
    try {
      await place(this.ctx, placement);
      this.sent.set(key, { resourceVersion: pod.metadata!.resourceVersion!, at: this.now() });
    } catch (e) {
      // Changed since it was read, or gone: the watch event that says how wakes the pod again.
      if (isStale(e) || isNotFound(e)) return;
      throw e;
    }
  }

  private inFlight(key: string, pod: V1Pod): boolean {
    const sent = this.sent.get(key);
    if (!sent) return false;
    if (sent.resourceVersion === pod.metadata?.resourceVersion && this.now() - sent.at < SENT_TIMEOUT_MS) return true;
    this.sent.delete(key);
    return false;
  }

  private now(): number {
    return (this.ctx.now ?? Date.now)();
  }
}
