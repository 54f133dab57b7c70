// When may a class's pass be skipped? After a pass found every waiting pod of the class holding a claim
// that stands and no pinned pod left unplaced, a burst's hundreds of pods wait for their nodes, and
// each of their pins, bindings and Instance status writes woke the class for a pass that read every
// one of them again to decide nothing (up to ten a second: 8 % of the controller's CPU in a profiled
// 1,000-pod burst). Such a class is calm: an event wakes it for a pass at the end of the second
// (CALM_RECHECK_MS), and one that could give a pass something to decide ends the calm, for a pass
// at once. Every event is seen by a full pass within the second.
// Pure functions over one event, so what ends the calm is tested on its own (calm.test.ts).
import type { V1Pod } from '@kubernetes/client-node';
import { NODE_CLASS_LABEL } from '../../api/names.ts';
import { awaitsPlacement, claimOf, classOf, isTerminal } from '../../api/pods.ts';
import type { Instance } from '../../api/types.ts';
import type { ClusterView } from '../context.ts';
import { isWarm } from '../warmpool/pool.ts';
import { isLive } from '../../api/instances.ts';

/** How long a calm class goes without a full pass, whatever its events: the bound on what the rules below miss. */
export const CALM_RECHECK_MS = 1_000;

type View = Pick<ClusterView, 'instance' | 'node' | 'nodeByProviderID'>;

/**
 * The classes whose calm this pod event ends: a pod added or deleted, a claim that changes,
 * a pod that ends, starts deleting or waits again, and a pod bound to an ipp node that is not its
 * claim's (it takes that node from the pod claiming it). Not the updates a burst is made of: the pin
 * of a pod to its claim's node, its binding there, its status, nor the scheduler refusing a pinned
 * pod for a node it has not seen Ready yet (nothing to decide until the pod may be stranded, minutes
 * later: the pass within the second that follows the event asks for its own requeue then).
 */
export function podEndsCalm(old: V1Pod | undefined, now: V1Pod, view: View): string[] {
  const classes = new Set<string>();
  const own = classOf(now);
  const before = old ? classOf(old) : undefined;
  const claim = claimOf(now);
  const inst = claim ? view.instance(claim) : undefined;
  if (
    !old ||
    before !== own ||
    claimOf(old) !== claim ||
    isTerminal(old) !== isTerminal(now) ||
    !old.metadata?.deletionTimestamp !== !now.metadata?.deletionTimestamp ||
    (awaitsPlacement(now) && !awaitsPlacement(old))
  ) {
    if (own) classes.add(own);
    if (before) classes.add(before);
    // A claim on another class's Instance keeps that one's pod from standing too.
    if (inst) classes.add(inst.spec.class);
  }
  const node = now.spec?.nodeName;
  if (node && node !== old?.spec?.nodeName) {
    const claimNode = inst ? view.nodeByProviderID(inst.status?.providerID)?.metadata?.name : undefined;
    const nodeClass = view.node(node)?.metadata?.labels?.[NODE_CLASS_LABEL];
    if (claimNode !== node && nodeClass) classes.add(nodeClass);
  }
  return [...classes];
}

/**
 * Does this Instance event end its class's calm? What a standing claim rests on: the Instance exists,
 * is live, not warm, of the class. Its launch and registration (providerID, phase) do not.
 */
export function instanceEndsCalm(old: Instance | undefined, now: Instance): boolean {
  return !old || isLive(old) !== isLive(now) || isWarm(old) !== isWarm(now) || old.spec.class !== now.spec.class;
}
