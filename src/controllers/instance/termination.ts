// Termination, once the Instance is being deleted: cordon its Node, drain the pods on it through the
// Eviction API (PodDisruptionBudgets and grace periods honoured, `ipp.dev/do-not-disrupt` respected
// while the node is healthy), then delete the Node, terminate the cloud instance (and any copy
// launched without its status being written), and release the finalizer.
import { providerName } from '../../api/classes.ts';
import { DO_NOT_DISRUPT_ANNOTATION, TAG_INSTANCE } from '../../api/names.ts';
import { isWorkload } from '../../api/pods.ts';
import type { Instance, InstanceClass } from '../../api/types.ts';
import { kubeError } from '../../kube/errors.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import type { Logger } from '../../log.ts';
import { ignoreCloudNotFound } from '../../../providers/errors.ts';
import type { CloudProvider } from '../../../providers/types.ts';
import type { ControllerContext } from '../context.ts';
import { notReadySince } from './decisions.ts';
import * as events from './events.ts';
import type { StatusExpectations } from './expectations.ts';

const DRAIN_RECHECK_MS = 5_000;

export class Termination {
  private readonly ctx: ControllerContext;
  private readonly expectations: StatusExpectations;
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
    // Its node by providerID only: a node that took the recorded name since is another machine's.
    const node = state.nodeByProviderID(inst.status?.providerID);
    if (node) {
      const nodeName = node.metadata!.name!;
      if (!node.spec?.unschedulable) await api.nodes.cordon(node);
      // A node whose kubelet is gone cannot run a graceful shutdown: its pods are already down.
      const healthy = notReadySince(node, (this.ctx.now ?? Date.now)()) === undefined;
      const pods = state.podsOnNode(nodeName).filter(isWorkload);
      if (healthy && pods.length) {
        const blocked = pods.filter((p) => p.metadata?.annotations?.[DO_NOT_DISRUPT_ANNOTATION] === 'true');
        if (blocked.length) {
          this.ctx.events.record(...events.disruptionBlocked(inst, blocked));
          log.info({ pods: blocked.length }, 'teardown waits: pods opted out of disruption');
          return { requeueAfterMs: 30_000 };
        }
        for (const pod of pods.filter((p) => !p.metadata?.deletionTimestamp)) {
          try {
            await api.pods.evict(pod);
            this.ctx.events.record(events.evicting(pod, name));
          } catch (e) {
            // 429: a PodDisruptionBudget says not now.
            if (kubeError(e)?.code !== 429) throw e;
            this.ctx.events.record(events.evictionBlocked(pod, name, kubeError(e)!.message));
          }
        }
        log.info({ node: nodeName, pods: pods.length }, 'draining: waiting for pods to leave');
        return { requeueAfterMs: DRAIN_RECHECK_MS };
      }
      await api.nodes.cordonAndDelete(node);
      log.info({ node: nodeName }, 'node cordoned and deleted');
    }
    const which = inst.status?.provider ?? (cls ? providerName(cls) : undefined);
    const provider = which ? this.ctx.providers.get(which) : undefined;
    if (provider) {
      const ids = await this.copies(provider, inst);
      for (const id of ids) {
        await ignoreCloudNotFound(provider.delete(id));
        log.info({ providerID: id }, 'cloud instance terminated');
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

  /** The recorded cloud instance and any other tagged with the Instance's name (a launch whose status was lost). */
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
