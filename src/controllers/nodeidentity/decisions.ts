// Is a Node that carries ipp labels the node of an Instance? A kubelet may set any ipp.dev/* label on
// its own Node (NodeRestriction allows it), so the labels prove nothing: only spec.providerID, which
// the cloud gave the instance ipp launched and recorded in the Instance's status, does. Pure.
import { isDeepStrictEqual } from 'node:util';
import type { V1Node } from '@kubernetes/client-node';
import { NODE_CLASS_LABEL, NODE_INSTANCE_LABEL, QUARANTINE_ANNOTATION } from '../../api/names.ts';
import type { Instance } from '../../api/types.ts';
import { nodeRefusal } from '../instance/decisions.ts';

export type NodeStanding =
  /** Not labelled as an ipp node at all. */
  | { kind: 'unlabelled' }
  /** The node of an Instance (by providerID): the Instance controller checks that its labels agree. */
  | { kind: 'instance'; instance: Instance }
  /** Names an Instance whose cloud instance is not recorded yet: a real node can register first. */
  | { kind: 'unconfirmed'; instance: Instance }
  /** Carries ipp labels, and is the node of no Instance: cordon it and report it. */
  | { kind: 'impostor'; why: string; claimed?: Instance };

export interface InstanceLookup {
  instance(name: string): Instance | undefined;
  instanceByProviderID(providerID: string | undefined): Instance | undefined;
  instancesOfClass(cls: string): Instance[];
}

const launching = (i: Instance) => !i.status?.providerID && !i.metadata.deletionTimestamp;

/**
 * How long a node may name an Instance whose cloud instance is not recorded yet. The launch records
 * it as soon as the cloud answers, long before a node boots; a node still unconfirmed after this
 * names an Instance that is not its own.
 */
export const UNCONFIRMED_GRACE_MS = 60_000;

/**
 * @param unconfirmedForMs how long this node has been seen naming an Instance without a recorded
 * cloud instance (0 the first time)
 */
export function nodeStanding(node: V1Node, lookup: InstanceLookup, unconfirmedForMs = 0): NodeStanding {
  const labels = node.metadata?.labels ?? {};
  const cls = labels[NODE_CLASS_LABEL];
  const named = labels[NODE_INSTANCE_LABEL];
  if (cls === undefined && named === undefined) return { kind: 'unlabelled' };
  const providerID = node.spec?.providerID;
  const owner = lookup.instanceByProviderID(providerID);
  if (owner) return { kind: 'instance', instance: owner };
  const claimed = named === undefined ? undefined : lookup.instance(named);
  const carries = Object.entries({ [NODE_CLASS_LABEL]: cls, [NODE_INSTANCE_LABEL]: named })
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const own = providerID ? `providerID ${providerID}` : 'no providerID';
  if (claimed && !claimed.status?.providerID && !claimed.metadata.deletionTimestamp) {
    if (unconfirmedForMs < UNCONFIRMED_GRACE_MS) return { kind: 'unconfirmed', instance: claimed };
    return {
      kind: 'impostor',
      claimed,
      why: `it carries ${carries}, but Instance ${named} has recorded no cloud instance for ${Math.round(unconfirmedForMs / 1000)} s, and nothing ties this node (${own}) to it`,
    };
  }
  if (claimed)
    return {
      kind: 'impostor',
      claimed,
      why: `it carries ${carries}, but the cloud instance of Instance ${named} is ${claimed.status?.providerID ?? 'gone'}, and this node has ${own}`,
    };
  // A node of a GKE pool carries its pool's labels (the class), never an Instance's name, and can
  // register before the launch has recorded its providerID: while an Instance of the class is still
  // launching, it may be that one's.
  const waitingInstance =
    named === undefined && cls !== undefined ? lookup.instancesOfClass(cls).find(launching) : undefined;
  if (waitingInstance && unconfirmedForMs < UNCONFIRMED_GRACE_MS)
    return { kind: 'unconfirmed', instance: waitingInstance };
  return {
    kind: 'impostor',
    why: `it carries ${carries}, but its ${own === 'no providerID' ? 'lack of a providerID' : own} matches no Instance`,
  };
}

/**
 * May ipp lift the quarantine it put on this node? Only its own (the annotation), only once the node
 * has proved to be the node of a live Instance (its providerID, recorded by the launch: a node
 * cordoned while its Instance's launch was slow to record it) and its labels and taints are that
 * Instance's (a node without its class's taints stays cordoned: the Instance controller refuses it).
 */
export function mayRelease(
  node: V1Node,
  standing: NodeStanding,
): standing is Extract<NodeStanding, { kind: 'instance' }> {
  if (standing.kind !== 'instance' || !node.spec?.unschedulable) return false;
  if (node.metadata?.annotations?.[QUARANTINE_ANNOTATION] === undefined) return false;
  const inst = standing.instance;
  return !inst.metadata.deletionTimestamp && nodeRefusal(inst, node) === undefined;
}

/**
 * Does this update of a Node change anything the check reads: its labels, providerID, cordon and
 * quarantine? Not its heartbeats, conditions or taints: a node's kubelet and kube-controller-manager
 * rewrite those several times as it starts, and on 5,000 nodes every few seconds.
 */
export const nodeChangeMattersToIdentity = (old: V1Node, next: V1Node): boolean =>
  old.spec?.providerID !== next.spec?.providerID ||
  !!old.spec?.unschedulable !== !!next.spec?.unschedulable ||
  old.metadata?.annotations?.[QUARANTINE_ANNOTATION] !== next.metadata?.annotations?.[QUARANTINE_ANNOTATION] ||
  !isDeepStrictEqual(old.metadata?.labels ?? {}, next.metadata?.labels ?? {});
