// Termination, once the Instance is being deleted: cordon its Node, drain the pods on it through the
// Eviction API (PodDisruptionBudgets and grace periods honoured, `ipp.dev/do-not-disrupt` respected
// unless the node has been NotReady for repairAfter), then delete the Node, terminate the cloud instance (and any copy
// launched without its status being written), and release the finalizer.
import type { V1Node } from '@kubernetes/client-node';
import { providerName } from '../../api/classes.ts';
import { DO_NOT_DISRUPT_ANNOTATION, NODE_CLASS_LABEL, TAG_INSTANCE } from '../../api/names.ts';
import { isWorkload } from '../../api/pods.ts';
import type { Instance, InstanceClass } from '../../api/types.ts';
import { kubeError } from '../../kube/errors.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import type { Logger } from '../../log.ts';
import { NotFoundError } from '../../../providers/errors.ts';
import type { CloudProvider } from '../../../providers/types.ts';
import type { ControllerContext } from '../context.ts';
import { cloudStateGone, notReadySince, timeouts } from './decisions.ts';
import * as events from './events.ts';
import type { StatusExpectations } from './expectations.ts';

const DRAIN_RECHECK_MS = 5_000;
/** How long after its launch a cloud's "not found" for an instance is not taken as gone (it may lag). */
export const CLOUD_CATCH_UP_MS = 2 * 60_000;
const CLOUD_RECHECK_MS = 10_000;
/**
 * How long a pod whose eviction was accepted is not evicted again. The eviction deletes it, but a
 * pass soon after (the drain's recheck, a pod's event) may still read it from a cache that has
 * not shown that: a second eviction then raced the pod's deletion, and with the pod gone from the
 * webhook's cache first it was refused as an unknown pod and logged as a failed eviction.
 */
const EVICTED_MS = 60_000;

export class Termination {
  private readonly ctx: ControllerContext;
  private readonly expectations: StatusExpectations;
  /** Pod UID → when its eviction was accepted. */
  private readonly evicted = new Map<string, number>();
  constructor(ctx: ControllerContext, expectations: StatusExpectations) {
    this.ctx = ctx;
    this.expectations = expectations;
  }

  async reconcile(inst: Instance, cls: InstanceClass | undefined, log: Logger): Promise<ReconcileResult | void> {
    const { state, api } = this.ctx;
    const name = inst.metadata.name!;
    if (inst.status?.phase !== 'Draining' && inst.status?.phase !== 'Terminated') {
      const written = await api.instances.patchStatus(name, { phase: 'Draining' });
      this.expectations.wrote(inst, (this.ctx.now ?? Date.now)(), written);
    }
    const node = await this.nodeOf(inst);
    if (node) {
      const nodeName = node.metadata!.name!;
      if (!node.spec?.unschedulable) await api.nodes.cordon(node);
      const now = (this.ctx.now ?? Date.now)();
      const notReady = notReadySince(node, now);
      const pods = state.podsOnNode(nodeName).filter(isWorkload);
      if (pods.length && !(await this.podsDown(inst, cls, notReady, now, log))) {
        const blocked = pods.filter((p) => p.metadata?.annotations?.[DO_NOT_DISRUPT_ANNOTATION] === 'true');
        if (blocked.length) {
          this.ctx.events.record(...events.disruptionBlocked(inst, blocked));
          log.info({ pods: blocked.length }, 'teardown waits: pods opted out of disruption');
          return { requeueAfterMs: 30_000 };
        }
        for (const [uid, at] of this.evicted) if (now - at >= EVICTED_MS) this.evicted.delete(uid);
        const evictable = (p: (typeof pods)[number]) =>
          !p.metadata?.deletionTimestamp && !this.evicted.has(p.metadata?.uid ?? '');
        for (const pod of pods.filter(evictable)) {
          try {
            await api.pods.evict(pod);
            if (pod.metadata?.uid) this.evicted.set(pod.metadata.uid, now);
            this.ctx.events.record(events.evicting(pod, name));
          } catch (e) {
            // 429: a PodDisruptionBudget says not now. Anything else (a refusal by the webhook whose
            // cache lags, a 500) is this pod's: the drain goes on with the others and tries it again.
            if (kubeError(e)?.code === 429)
              this.ctx.events.record(events.evictionBlocked(pod, name, kubeError(e)!.message));
            else
              log.warn(
                { pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, err: e },
                'eviction failed; retrying',
              );
          }
        }
        log.info(
          { node: nodeName, pods: pods.length, ...(notReady !== undefined ? { notReadyForMs: now - notReady } : {}) },
          notReady === undefined
            ? 'draining: waiting for pods to leave'
            : `draining a NotReady node: waiting for pods to leave, or for it to have been NotReady for repairAfter`,
        );
        return { requeueAfterMs: DRAIN_RECHECK_MS };
      }
      // The cache may lack a pod bound a moment ago (a pin that raced the teardown, a lagging watch):
      // deleting the Node would kill it without an eviction. Only the API server's word that the node
      // holds no workload lets it go; a pod found there is drained once the cache shows it.
      if (!pods.length && this.ctx.lookup.pods) {
        const bound = (await this.ctx.lookup.pods.onNode(nodeName)).filter(isWorkload);
        if (bound.length) {
          log.info(
            { node: nodeName, pods: bound.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`) },
            'the cache showed the node empty but the API server has pods on it; draining them first',
          );
          return { requeueAfterMs: DRAIN_RECHECK_MS };
        }
      }
      await api.nodes.cordonAndDelete(node);
      log.info({ node: nodeName }, 'node cordoned and deleted');
    }
    const which = inst.status?.provider ?? (cls ? providerName(cls) : undefined);
    const provider = this.providerOf(inst, cls);
    if (provider) {
      const launchedAt = Date.parse(inst.status?.launchedAt ?? '');
      const young = (this.ctx.now ?? Date.now)() - launchedAt < CLOUD_CATCH_UP_MS;
      let unseen = false;
      const terminate = async (id: string) => {
        try {
          await provider.delete(id, cls);
          log.info({ providerID: id }, 'cloud instance terminated');
        } catch (e) {
          if (!(e instanceof NotFoundError)) throw e;
          // EC2's reads are eventually consistent: moments after RunInstances, DescribeInstances may
          // not show the instance yet. Called gone then, it would run until garbage collection found it.
          if (e.unseen && young && id === inst.status?.providerID) unseen = true;
        }
      };
      // The recorded machine first: a search for copies that fails (a zone unreachable, a throttled
      // list) must not keep it running and billed until the search succeeds.
      if (inst.status?.providerID) await terminate(inst.status.providerID);
      const ids = await this.copies(provider, inst);
      for (const id of ids) if (id !== inst.status?.providerID) await terminate(id);
      if (unseen) {
        log.info(
          { providerID: inst.status?.providerID },
          'the cloud does not show the instance launched moments ago; asking again before calling it gone',
        );
        return { requeueAfterMs: CLOUD_RECHECK_MS };
      }
      this.ctx.events.record(events.terminated(inst, [...ids]));
    } else if (inst.status?.providerID) {
      log.error(
        { provider: which },
        'cannot terminate: provider not enabled in this controller; the finalizer stays until it is',
      );
      throw new Error(
        `provider ${which} of Instance ${name} is not enabled (--providers); enable it so the cloud instance can be terminated`,
      );
    }
    await api.instances.removeFinalizer(inst);
  }

  /**
   * Are the pods of a NotReady node down already, so that no drain can be graceful? Yes once it has
   * been NotReady as long as repair waits, or when the cloud says its machine is gone. A shorter
   * NotReady spell (a kubelet restart, a network blip) is no proof: skipping the drain then would stop
   * running pods past their PodDisruptionBudgets and do-not-disrupt. An unanswered cloud is no proof either.
   */
  private async podsDown(
    inst: Instance,
    cls: InstanceClass | undefined,
    notReady: number | undefined,
    now: number,
    log: Logger,
  ): Promise<boolean> {
    if (notReady === undefined) return false;
    if (now - notReady >= timeouts(cls).repairMs) return true;
    const provider = this.providerOf(inst, cls);
    const providerID = inst.status?.providerID;
    if (!provider || !providerID) return false;
    try {
      return cloudStateGone((await provider.get(providerID, cls)).state);
    } catch (e) {
      if (e instanceof NotFoundError) return true;
      log.warn(
        { err: e, providerID },
        `node is NotReady and the cloud could not be asked about its instance; draining on`,
      );
      return false;
    }
  }

  private providerOf(inst: Instance, cls: InstanceClass | undefined): CloudProvider | undefined {
    const which = inst.status?.provider ?? (cls ? providerName(cls) : undefined);
    return which ? this.ctx.providers.get(which) : undefined;
  }

  /**
   * Its node by providerID only: a node that took the recorded name since is another machine's. One
   * missing from the cache is read from the API before the drain is skipped: the cache may lag, and
   * a node deleted and registered again a moment ago still runs the pods bound to it.
   */
  private async nodeOf(inst: Instance): Promise<V1Node | undefined> {
    const providerID = inst.status?.providerID;
    const cached = this.ctx.state.nodeByProviderID(providerID);
    const recorded = inst.status?.nodeName;
    if (cached || !providerID || !recorded) return cached;
    const read = await this.ctx.lookup.nodes.read(recorded);
    // Without its ipp labels it is not a node ipp may write (the scope policy): drained it cannot be,
    // and as before, the machine goes without.
    return read?.spec?.providerID === providerID && read.metadata?.labels?.[NODE_CLASS_LABEL] ? read : undefined;
  }

  /** The recorded cloud instance and any other the provider finds launched for the Instance (a launch whose status was lost). */
  private async copies(provider: CloudProvider, inst: Instance): Promise<Set<string>> {
    const name = inst.metadata.name!;
    const ids = new Set<string>();
    if (inst.status?.providerID) ids.add(inst.status.providerID);
    const tagged = provider.findByInstance
      ? await provider.findByInstance(name)
      : (await provider.list()).filter((c) => c.tags[TAG_INSTANCE] === name);
    for (const c of tagged) ids.add(c.providerID);
    return ids;
  }
}
