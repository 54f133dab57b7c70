// Node repair: a registered instance whose node is NotReady, or gone, for longer than the class's
// repairAfter is replaced. A node missing from the cache is not believed missing until a direct read
// agrees and the absence has lasted repairAfter: a cache gap or a kubelet re-registering its Node must
// never cost a running workload. At most a fifth of a class is repaired at once.
//
// A node that looks dead (NotReady/Unknown, deleted, or tainted shut down) makes this step ask the
// cloud about that one instance at once, rather than wait for repairAfter or the garbage collector's
// poll: a machine the cloud reports terminated, shutting down or stopped (out-of-band termination, a
// spot interruption) is replaced within seconds, and the pods bound to it, which died with it, are
// deleted so that their controllers recreate them. A cloud that says running keeps the grace; a
// cloud that cannot be asked (an error) decides nothing: the step waits and asks again.
//
// When more of a class than deadLimit looks dead at once, the cause is the cluster, not the machines:
// repair of that class is suspended (a warning and an Event on the class, once a minute) and the cloud
// is not asked node by node, so an API server that lost its kubelets' heartbeats is not also flooded
// with thousands of cloud checks and deletions.
import type { V1Pod } from '@kubernetes/client-node';
import { providerName } from '../../api/classes.ts';
import { CLASS_LABEL } from '../../api/names.ts';
import { isWorkload } from '../../api/pods.ts';
import { describeError } from '../../kube/errors.ts';
import { NotFoundError } from '../../../providers/errors.ts';
import type { ControllerContext } from '../context.ts';
import {
  cloudRecheckMs,
  classHealth,
  cloudStateGone,
  deadLimit,
  everReady,
  labelMismatch,
  looksDead,
  notReadySince,
  ownNodeName,
  repairBudget,
  timeouts,
} from './decisions.ts';
import * as events from './events.ts';
import type { InstanceView, Step, StepResult } from './step.ts';

/** How long a class's dead count is reused: counting is a pass over the class, not worth doing per Instance. */
const HEALTH_TTL_MS = 5_000;
/** How often a suspended instance looks again, and how often the suspension is reported. */
const SUSPENDED_RECHECK_MS = 30_000;
const SUSPENDED_REPORT_MS = 60_000;
const PRUNE_EVERY_MS = 60_000;

interface ClassHealth {
  at: number;
  registered: number;
  dead: number;
  suspended: boolean;
  /** When the suspension was last reported (log and Event). */
  warnedAt?: number;
}

/** What the cloud said about the instance of a node that looks dead. */
type CloudAnswer = { gone: true; state: string } | { gone: false; recheckMs: number };

export class Repair implements Step {
  private readonly ctx: ControllerContext;
  /** Instance UID → when its node was first confirmed missing (this process's view; restarts count again). */
  private readonly missingSince = new Map<string, number>();
  /** Instance UID → when the cloud was last asked about it while its node looked dead, and how often. */
  private readonly asked = new Map<string, { at: number; times: number }>();
  /** Instance UID → its name, for every UID the maps above hold: what prune() checks against the cache. */
  private readonly names = new Map<string, string>();
  private prunedAt = 0;
  /** Class → its health as last counted (recounted at most every HEALTH_TTL_MS) and when it was last reported suspended. */
  private readonly health = new Map<string, ClassHealth>();

  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  async reconcile(view: InstanceView): Promise<StepResult> {
    const { inst, node, cls } = view;
    if (!inst.status?.providerID || !everReady(inst)) return {};
    const uid = inst.metadata.uid ?? inst.metadata.name!;
    const now = (this.ctx.now ?? Date.now)();
    this.prune(now);
    this.names.set(uid, inst.metadata.name!);
    const { repairMs } = timeouts(cls);
    const after = cls?.spec.repairAfter ?? '10m';
    const nodeName = inst.status.nodeName;

    const dead = !node || looksDead(node, now);
    if (dead && this.suspended(view, now)) {
      this.asked.delete(uid);
      this.missingSince.delete(uid);
      return { halt: !node, requeueAfterMs: SUSPENDED_RECHECK_MS };
    }
    // A healthy node of a suspended class recounts it, so that the suspension (and its gauge) ends.
    if (!dead && this.health.get(inst.spec.class)?.suspended) this.classHealth(inst.spec.class, now);
    if (!node) {
      const found = nodeName ? await this.ctx.lookup.nodes.read(nodeName) : undefined;
      if (found?.spec?.providerID === inst.status.providerID) {
        const tampered = labelMismatch(inst, found);
        // The cache lags the API server: wait for it rather than judge occupancy on a stale view.
        if (!tampered) {
          this.missingSince.delete(uid);
          return { halt: true, requeueAfterMs: 2_000 };
        }
        // Not in the cache because it dropped its ipp labels (a kubelet may rewrite its own Node's):
        // out of every check that reads ipp nodes, and open to any pod that tolerates every taint.
        // ipp may not write a Node without them (the chart's controller-scope policy): the machine goes.
        return this.replace(
          view,
          'NodeLabelsTampered',
          `node ${nodeName} of Instance ${inst.metadata.name}: ${tampered}; its kubelet may be compromised`,
        );
      }
      const cloud = await this.askCloud(view, now);
      if (cloud.gone) return this.replaceTerminated(view, cloud.state);
      const since = this.missingSince.get(uid) ?? now;
      this.missingSince.set(uid, since);
      const left = since + repairMs - now;
      if (left > 0) {
        view.log.warn(
          { node: nodeName, replaceInMs: left },
          'node of a registered instance is missing; waiting for it to come back',
        );
        return { halt: true, requeueAfterMs: Math.min(left, cloud.recheckMs) };
      }
      return this.replace(view, 'NodeLost', `node ${nodeName} has been gone for longer than repairAfter ${after}`);
    }
    this.missingSince.delete(uid);
    if (!looksDead(node, now)) {
      this.asked.delete(uid);
      return {};
    }
    const cloud = await this.askCloud(view, now);
    if (cloud.gone) return this.replaceTerminated(view, cloud.state);
    const notReady = notReadySince(node, now);
    // Tainted shut down but Ready (the taint lags the kubelet's recovery): only the cloud decides.
    if (notReady === undefined) return { requeueAfterMs: cloud.recheckMs };
    const left = notReady + repairMs - now;
    if (left > 0) return { requeueAfterMs: Math.min(left, cloud.recheckMs) };
    return this.replace(
      view,
      'NodeRepair',
      `node ${node.metadata!.name} has not been Ready for longer than repairAfter ${after}`,
    );
  }

  /** Is repair of this instance's class suspended because too much of it looks dead at once? */
  private suspended(view: InstanceView, now: number): boolean {
    const cls = view.inst.spec.class;
    const h = this.classHealth(cls, now);
    if (!h.suspended) return false;
    if (h.warnedAt === undefined || now - h.warnedAt >= SUSPENDED_REPORT_MS) {
      h.warnedAt = now;
      const note = `${h.dead} of ${h.registered} registered instances of class ${cls} have a node that is missing or not Ready (more than ${deadLimit(h.registered)}): suspecting the cluster (API server, network, kubelet heartbeats), not the machines; repair of the class is suspended and the cloud is not asked node by node until it recovers`;
      view.log.warn({ dead: h.dead, registered: h.registered }, note);
      this.ctx.events.record(events.repairSuspended(cls, note));
    }
    return true;
  }

  /** The class's dead count, recounted when older than HEALTH_TTL_MS; keeps ipp_repair_suspended true to it. */
  private classHealth(cls: string, now: number): ClassHealth {
    const known = this.health.get(cls);
    if (known && now - known.at < HEALTH_TTL_MS) return known;
    const counted = classHealth(this.ctx.state.instancesOfClass(cls), (id) => this.ctx.state.nodeByProviderID(id), now);
    const h = {
      ...counted,
      at: now,
      suspended: counted.dead > deadLimit(counted.registered),
      warnedAt: known?.warnedAt,
    };
    this.health.set(cls, h);
    this.ctx.metrics.repairSuspended.set({ class: cls }, h.suspended ? 1 : 0);
    return h;
  }

  /**
   * Asks the provider about this one instance (not more often than cloudRecheckMs while the answer
   * stays "running"). Only a definite answer counts as gone: an error is missing information.
   */
  private async askCloud(view: InstanceView, now: number): Promise<CloudAnswer> {
    const { inst, cls, log } = view;
    const uid = inst.metadata.uid ?? inst.metadata.name!;
    const last = this.asked.get(uid);
    if (last && now - last.at < cloudRecheckMs(last.times))
      return { gone: false, recheckMs: last.at + cloudRecheckMs(last.times) - now };
    const times = (last?.times ?? 0) + 1;
    this.asked.set(uid, { at: now, times });
    const recheckMs = cloudRecheckMs(times);
    const which = inst.status?.provider ?? (cls ? providerName(cls) : undefined);
    const provider = which ? this.ctx.providers.get(which) : undefined;
    if (!provider) return { gone: false, recheckMs };
    const providerID = inst.status!.providerID!;
    try {
      const found = await provider.get(providerID, cls);
      if (cloudStateGone(found.state)) return { gone: true, state: found.state };
      log.info({ providerID, state: found.state }, 'node looks dead but the cloud says the instance runs; waiting');
      return { gone: false, recheckMs };
    } catch (e) {
      if (e instanceof NotFoundError) return { gone: true, state: 'gone' };
      log.warn(
        { err: e, providerID },
        `node looks dead and the cloud could not be asked about the instance (${describeError(e)}); waiting and asking again`,
      );
      return { gone: false, recheckMs };
    }
  }

  /**
   * The cloud instance is terminated, shutting down or stopped: nothing runs there any more. Its
   * bound pods will never be confirmed gone by a kubelet, so they are deleted at once (their
   * controllers recreate them onto fresh instances), and the Instance is torn down. Not budgeted like
   * a repair: the machine is already gone, waiting saves nothing.
   */
  private async replaceTerminated(view: InstanceView, state: string): Promise<StepResult> {
    const { inst, log } = view;
    const { state: cluster } = this.ctx;
    const nodeName = ownNodeName(inst, view.node, (n) => cluster.node(n));
    const bound = nodeName ? cluster.podsOnNode(nodeName).filter(isWorkload) : [];
    const pods = uniquePods([...cluster.podsClaiming(inst.spec.class, inst.metadata.name!), ...bound]);
    const message = `cloud instance ${inst.status!.providerID} is ${state === 'gone' ? 'gone' : state} and node ${nodeName ?? '(none)'} ${view.node ? 'is not Ready' : 'is gone'}: it was terminated or stopped outside ipp`;
    this.ctx.events.record(...events.repairing(inst, pods, 'InstanceTerminated', message));
    this.ctx.metrics.nodeRepairs.inc({ class: inst.spec.class, reason: 'InstanceTerminated' });
    log.warn({ reason: 'InstanceTerminated', state }, message);
    // Only ipp's pods: the controller's admission policy lets it delete no others.
    for (const pod of bound.filter((p) => !!p.metadata?.labels?.[CLASS_LABEL]))
      await this.ctx.api.pods.forceDelete(pod);
    await this.ctx.api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
    this.forget(inst.metadata.uid ?? inst.metadata.name!);
    return { deleted: true };
  }

  private async replace(view: InstanceView, reason: events.RepairReason, message: string): Promise<StepResult> {
    const { inst, log } = view;
    const { state } = this.ctx;
    const ofClass = state.instancesOfClass(inst.spec.class);
    const inRepair = ofClass.filter((i) => i.metadata.deletionTimestamp).length;
    if (inRepair >= repairBudget(ofClass.length)) {
      log.warn(
        { inRepair, reason },
        `${message}; waiting: ${inRepair} instance(s) of the class are already being replaced`,
      );
      return { halt: true, requeueAfterMs: 30_000 };
    }
    const pods = uniquePods([
      ...state.podsClaiming(inst.spec.class, inst.metadata.name!),
      ...(view.node ? state.podsOnNode(view.node.metadata!.name!) : []),
    ]);
    this.ctx.events.record(...events.repairing(inst, pods, reason, message));
    this.ctx.metrics.nodeRepairs.inc({ class: inst.spec.class, reason });
    log.warn({ reason }, message);
    await this.ctx.api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
    this.forget(inst.metadata.uid ?? inst.metadata.name!);
    return { deleted: true };
  }

  private forget(uid: string): void {
    this.missingSince.delete(uid);
    this.asked.delete(uid);
    this.names.delete(uid);
  }

  /**
   * Drops what this step remembers about Instances that are gone (torn down idle, deleted by hand):
   * only reconciles of live Instances reach forget(), so without this the maps would grow for the life
   * of the process. Once a minute: a pass over what is remembered, not over the cache.
   */
  private prune(now: number): void {
    if (now - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = now;
    for (const [uid, name] of this.names) if (this.ctx.state.instance(name)?.metadata.uid !== uid) this.forget(uid);
  }
}

const uniquePods = (pods: V1Pod[]) => [...new Map(pods.map((p) => [p.metadata?.uid, p])).values()];
