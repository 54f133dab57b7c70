// Where may a claimed pod go now? A pure decision over one pod and the few objects its claim names:
// its Instance, that Instance's node, and the other pods holding either. Provisioning decides which
// Instance a pod gets (over its whole class); placing it once that Instance is Ready needs nothing
// else, so it is decided per pod and never waits behind a class's other claims.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { namespaceAllowed } from '../../api/classes.ts';
import { awaitsPlacement, claimOf, classOf, holdsClaim, isNodeReady, isWorkload, podKey } from '../../api/pods.ts';
import type { Instance } from '../../api/types.ts';
import type { ClusterView } from '../context.ts';
import { nodeRefusal } from '../instance/decisions.ts';
import { isWarm } from '../warmpool/pool.ts';
import { isLive } from '../../api/instances.ts';

export interface Placement {
  pod: V1Pod;
  instance: Instance;
  node: V1Node;
}

type View = Pick<
  ClusterView,
  'instance' | 'instanceClass' | 'nodeByProviderID' | 'podsClaiming' | 'podsOnNode' | 'waitingSince' | 'unconfirmedExit'
>;

/** The order in which waiting claimers of one Instance are served: longest waiting first, then by name. */
const before = (view: View, a: V1Pod, b: V1Pod) =>
  (view.waitingSince(a) ?? 0) - (view.waitingSince(b) ?? 0) || (podKey(a) < podKey(b) ? -1 : 1);

/**
 * The placement of `pod` now, or undefined while it must wait: it awaits placement, its class lets
 * its namespace in, its claim names a live, launched Instance of its own class that has left the warm
 * pool, and that Instance's node is Ready, schedulable and labelled for it. Under Pod isolation the pod must also be
 * the Instance's only holder: nobody else pinned or bound to it or running on its node, and no older
 * pod waiting on the same claim (provisioning hands the others new Instances).
 */
export function placementOf(pod: V1Pod, view: View): Placement | undefined {
  if (!awaitsPlacement(pod)) return undefined;
  const className = classOf(pod)!;
  const cls = view.instanceClass(className);
  const claim = claimOf(pod);
  if (!cls || !claim || !namespaceAllowed(cls, pod.metadata?.namespace ?? '')) return undefined;
  const instance = view.instance(claim);
  // A claim naming another class's Instance (copied or forged) is no claim at all.
  if (!instance || instance.spec.class !== className || !isLive(instance)) return undefined;
  // Still in the warm pool: provisioning takes it out first, and the take's update wakes the pod.
  if (isWarm(instance) || !instance.status?.providerID) return undefined;
  // The node the cloud's providerID names, Ready, labelled and tainted for this Instance: what the Instance
  // controller checks before it records phase Ready. Read here rather than waited for, because in a
  // burst that record queues behind a thousand launches (~1 s from node Ready to pinned, measured).
  const node = view.nodeByProviderID(instance.status.providerID);
  if (!node || !isNodeReady(node) || nodeRefusal(instance, node)) return undefined;
  if ((cls.spec.isolation ?? 'Pod') === 'Pod') {
    // A pod force-deleted there may still be running: the Instance is torn down, not handed on.
    if (view.unconfirmedExit(node.metadata!.name!)) return undefined;
    const key = podKey(pod);
    const onNode = view.podsOnNode(node.metadata!.name!).some((p) => podKey(p) !== key && isWorkload(p));
    const rivals = view.podsClaiming(className, claim).filter((p) => podKey(p) !== key && holdsClaim(p));
    if (onNode || rivals.some((p) => !awaitsPlacement(p) || before(view, p, pod) < 0)) return undefined;
  }
  return { pod, instance, node };
}

/**
 * Does this update of an Instance change a placement decision: its class, whether it is live, in the
 * warm pool, launched where? Not its phase turning Ready, nor its other status: the node's readiness
 * is read from the node, whose own event wakes the pod.
 */
export const instanceChangeMattersToPlacement = (old: Instance, next: Instance) =>
  old.spec.class !== next.spec.class ||
  isLive(old) !== isLive(next) ||
  isWarm(old) !== isWarm(next) ||
  old.status?.providerID !== next.status?.providerID;
