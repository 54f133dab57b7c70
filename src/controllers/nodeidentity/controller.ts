// The node identity check: every Node labelled as an ipp node must be the node of an Instance, matched
// by spec.providerID. A kubelet may copy another node's ipp.dev/* labels onto its own Node
// (NodeRestriction allows it); ipp never places a pod by label (it pins by node name after matching
// providerIDs), so such a node gets nothing, but it is a compromised or misconfigured node: it is
// cordoned and reported (Warning Event on the Node, and on the Instance it claims to be). A node that
// is an Instance's is the Instance controller's to check (its labels must agree with that Instance).
import type { Instance } from '../../api/types.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import type { Controller, ControllerContext, Wakes } from '../context.ts';
import { mayRelease, nodeChangeMattersToIdentity, nodeStanding } from './decisions.ts';
import { identityConfirmed, impostorNode } from './events.ts';

/** How often a node naming an Instance without a recorded cloud instance is looked at again. */
const UNCONFIRMED_RECHECK_MS = 2_000;
/** How soon a release that met a changed node is tried again on the node as it is now. */
const RELEASE_RETRY_MS = 1_000;
/** How long after its Instance went a node may still register without being reported. */
export const LATE_REGISTRATION_MS = 10 * 60_000;

export class NodeIdentityController implements Controller {
  readonly name = 'nodeidentity';
  readonly wakes: Wakes = {
    node: (n, _state, old) => (old && !nodeChangeMattersToIdentity(old, n) ? [] : [n.metadata!.name!]),
    // An Instance recording its providerID settles the node that has it (one it may have quarantined).
    instance: (i, state, old) => {
      this.noteTermination(i);
      if (old && old.status?.providerID === i.status?.providerID) return [];
      const node = state.nodeByProviderID(i.status?.providerID);
      return node ? [node.metadata!.name!] : [];
    },
    // An Instance going settles the nodes that name it.
    resync: (state) => state.nodes.list().map((n) => n.metadata!.name!),
  };

  private readonly ctx: ControllerContext;
  /** Per node UID: what was last reported, so a resync does not report it again. */
  private readonly reported = new Map<string, string>();
  /** Per node UID: since when it has named an Instance that has recorded no cloud instance. */
  private readonly unconfirmedSince = new Map<string, number>();
  /**
   * providerIDs of Instances seen being deleted, until when they are forgiven. A machine terminated
   * while booting can register its Node after its Instance is gone (a kubelet also re-registers a
   * Node deleted under it): that Node is ipp's own leftover, cordoned quietly, until the cloud's node
   * lifecycle removes it.
   */
  private readonly terminated = new Map<string, number>();

  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  async reconcile(name: string): Promise<ReconcileResult | void> {
    const node = this.ctx.state.node(name);
    if (!node) {
      this.forgetGone();
      return;
    }
    const uid = node.metadata?.uid ?? name;
    const now = (this.ctx.now ?? Date.now)();
    const since = this.unconfirmedSince.get(uid) ?? now;
    const standing = nodeStanding(node, this.ctx.state, now - since);
    if (standing.kind === 'unconfirmed') {
      this.unconfirmedSince.set(uid, since);
      return { requeueAfterMs: UNCONFIRMED_RECHECK_MS };
    }
    this.unconfirmedSince.delete(uid);
    if (mayRelease(node, standing)) {
      // Changed since read (often a status or taint change that wakes nothing here): look again soon.
      if (!(await this.ctx.api.nodes.release(node))) return { requeueAfterMs: RELEASE_RETRY_MS };
      this.ctx.events.record(identityConfirmed(name, standing.instance));
      this.ctx.logger.info(
        { node: name, instance: standing.instance.metadata.name },
        `node ${name} proved to be Instance ${standing.instance.metadata.name}'s; uncordoned`,
      );
    }
    if (standing.kind !== 'impostor') {
      this.reported.delete(uid);
      return;
    }
    if (!node.spec?.unschedulable) await this.ctx.api.nodes.quarantine(node, 'identity unproven');
    const forgivenUntil = this.terminated.get(node.spec?.providerID ?? '');
    if (forgivenUntil !== undefined && now < forgivenUntil) {
      this.ctx.logger.debug({ node: name }, 'node of a terminated Instance registered late; cordoned');
      return;
    }
    if (this.reported.get(uid) === standing.why) return;
    this.reported.set(uid, standing.why);
    this.ctx.events.record(...impostorNode(name, standing.why, standing.claimed));
    this.ctx.logger.error(
      { node: name, providerID: node.spec?.providerID, claims: standing.claimed?.metadata.name },
      `node ${name} carries ipp labels but is no Instance's node: ${standing.why}; cordoned`,
    );
  }

  private noteTermination(inst: Instance): void {
    const id = inst.status?.providerID;
    if (!id || !inst.metadata.deletionTimestamp) return;
    const now = (this.ctx.now ?? Date.now)();
    this.terminated.set(id, now + LATE_REGISTRATION_MS);
    for (const [k, until] of this.terminated) if (until <= now) this.terminated.delete(k);
  }

  /** Drops what is remembered about nodes no longer in the cache. */
  private forgetGone(): void {
    const live = new Set(this.ctx.state.nodes.list().map((n) => n.metadata?.uid ?? n.metadata!.name!));
    for (const uid of [...this.reported.keys()]) if (!live.has(uid)) this.reported.delete(uid);
    for (const uid of [...this.unconfirmedSince.keys()]) if (!live.has(uid)) this.unconfirmedSince.delete(uid);
  }
}
