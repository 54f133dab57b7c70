// Node repair: a registered instance whose node is NotReady, or gone, for longer than the class's
// repairAfter is replaced. A node missing from the cache is not believed missing until a direct read
// agrees and the absence has lasted repairAfter: a cache gap or a kubelet re-registering its Node must
// never cost a running workload. At most a fifth of a class is repaired at once.
import type { ControllerContext } from '../context.ts';
import { everReady, notReadySince, repairBudget, timeouts } from './decisions.ts';
import * as events from './events.ts';
import type { InstanceView, Step, StepResult } from './step.ts';

export class Repair implements Step {
  private readonly ctx: ControllerContext;
  /** Instance UID → when its node was first confirmed missing (this process's view; restarts count again). */
  private readonly missingSince = new Map<string, number>();

  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  async reconcile(view: InstanceView): Promise<StepResult> {
    const { inst, node, cls } = view;
    if (!inst.status?.providerID || !everReady(inst)) return {};
    const uid = inst.metadata.uid ?? inst.metadata.name!;
    const now = (this.ctx.now ?? Date.now)();
    const { repairMs } = timeouts(cls);
    const after = cls?.spec.repairAfter ?? '10m';
    const nodeName = inst.status.nodeName;

    if (!node) {
      const found = nodeName ? await this.ctx.lookup.nodes.read(nodeName) : undefined;
      if (found?.spec?.providerID === inst.status.providerID) {
        // The cache lags the API server: wait for it rather than judge occupancy on a stale view.
        this.missingSince.delete(uid);
        return { halt: true, requeueAfterMs: 2_000 };
      }
      const since = this.missingSince.get(uid) ?? now;
      this.missingSince.set(uid, since);
      const left = since + repairMs - now;
      if (left > 0) {
        view.log.warn(
          { node: nodeName, replaceInMs: left },
          'node of a registered instance is missing; waiting for it to come back',
        );
        return { halt: true, requeueAfterMs: Math.min(left, 10_000) };
      }
      return this.replace(view, 'NodeLost', `node ${nodeName} has been gone for longer than repairAfter ${after}`);
    }
    this.missingSince.delete(uid);
    const notReady = notReadySince(node, now);
    if (notReady === undefined) return {};
    const left = notReady + repairMs - now;
    if (left > 0) return { requeueAfterMs: left };
    return this.replace(
      view,
      'NodeRepair',
      `node ${node.metadata!.name} has not been Ready for longer than repairAfter ${after}`,
    );
  }

  private async replace(view: InstanceView, reason: 'NodeLost' | 'NodeRepair', message: string): Promise<StepResult> {
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
    const pods = [
      ...state.podsClaiming(inst.metadata.name!),
      ...(view.node ? state.podsOnNode(view.node.metadata!.name!) : []),
    ];
    const unique = [...new Map(pods.map((p) => [p.metadata?.uid, p])).values()];
    this.ctx.events.record(...events.repairing(inst, unique, reason, message));
    log.warn({ reason }, message);
    await this.ctx.api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
    this.missingSince.delete(inst.metadata.uid ?? inst.metadata.name!);
    return { deleted: true };
  }
}
