// An Instance's life, level-based: each call reads the Instance, its class, its node and its pods,
// and takes the one step that moves it on: launch → register → ready → (idle) → terminate.
import { CoreV1Api, type V1Node } from '@kubernetes/client-node';
import {
  NODE_CLASS_LABEL,
  NODE_INSTANCE_LABEL,
  TAG_CLASS,
  TAG_CLUSTER,
  TAG_INSTANCE,
  TAINT_KEY,
} from '../../api/names.ts';
import type { Instance, InstanceClass, InstanceStatus, Phase } from '../../api/types.ts';
import { isNodeReady } from '../../api/pods.ts';
import { describeError, isConflict, isNotFound } from '../../kube/errors.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import type { ControllerContext } from '../context.ts';
import { instanceRef, podRef } from '../../kube/events.ts';
import type { Logger } from '../../log.ts';
import {
  InsufficientCapacityError,
  InvalidConfigError,
  NotFoundError,
  ThrottledError,
} from '../../../providers/errors.ts';
import type { CloudProvider } from '../../../providers/types.ts';
import { idleExpiry, livenessExpiry, occupants } from './decisions.ts';

export type InstanceControllerDeps = ControllerContext;

/** Which provider a class uses: the one whose settings block it sets. */
export function providerName(cls: InstanceClass): string | undefined {
  return (['simulated', 'aws', 'gce'] as const).find((p) => cls.spec[p] !== undefined);
}

/** Status as observed; idleSince null erases the field in the merge patch. */
type ObservedStatus = Omit<InstanceStatus, 'idleSince'> & { idleSince?: string | null };

export class InstanceController {
  private readonly d: InstanceControllerDeps;
  private readonly core: CoreV1Api;
  private readonly now: () => number;
  /**
   * Instance UIDs whose registration this process has reported (Event, histogram). A reconcile that
   * reads the Instance from a cache not yet showing our own status write sees it unregistered again.
   */
  private readonly registrationReported = new Set<string>();

  constructor(deps: InstanceControllerDeps) {
    this.d = deps;
    this.core = deps.kubeconfig.makeApiClient(CoreV1Api);
    this.now = deps.now ?? Date.now;
  }

  async reconcile(name: string): Promise<ReconcileResult | void> {
    const inst = this.d.state.instance(name);
    if (!inst) return;
    const log = this.d.logger.child({ instance: name, class: inst.spec.class });
    const cls = this.d.state.instanceClass(inst.spec.class);

    if (inst.metadata.deletionTimestamp) return this.terminate(inst, cls, log);

    const provider = cls ? this.provider(cls) : undefined;
    if (!cls || !provider) {
      // Nothing can launch for a class that is gone or unusable; an Instance not yet launched is dropped.
      if (!inst.status?.providerID) {
        log.info('class missing or unusable; dropping the unlaunched instance');
        await this.d.writer.delete(name);
        return;
      }
    }

    if (!inst.status?.providerID) {
      const expiry = livenessExpiry(inst, cls, false, this.now());
      if (expiry.expired) return this.expire(inst, expiry.reason, expiry.message, log);
      return this.launch(inst, cls!, provider!, log);
    }

    const node = this.d.state.nodeByProviderID(inst.status.providerID);
    const status = this.observe(inst, node);
    const liveness = livenessExpiry(
      { ...inst, status: { ...inst.status, phase: status.phase } },
      cls,
      node !== undefined,
      this.now(),
    );
    if (liveness.expired) return this.expire(inst, liveness.reason, liveness.message, log);

    let idleInMs = Infinity;
    if (status.phase === 'Ready') {
      const idle = idleExpiry(status.idleSince ?? undefined, cls, this.now());
      if (idle.expired) {
        try {
          // Guarded: a pod reserving the instance meanwhile changed its resourceVersion.
          await this.d.writer.delete(name, inst.metadata.resourceVersion);
        } catch (e) {
          if (!isConflict(e)) throw e;
          log.debug('instance changed since it was found idle (reserved by a pod?); re-reading');
          return { requeueAfterMs: 250 };
        }
        this.d.events.publish(
          instanceRef(inst),
          'Normal',
          'Idle',
          'Teardown',
          `${idle.message}; terminating ${inst.status.providerID}`,
        );
        log.info({ node: node?.metadata?.name }, 'idle timeout reached; tearing down');
        return;
      }
      idleInMs = idle.remainingMs;
    }
    await this.writeStatus(inst, status, log);
    const next = Math.min(idleInMs, liveness.remainingMs, 30_000);
    return { requeueAfterMs: Math.max(next, 250) };
  }

  private provider(cls: InstanceClass): CloudProvider | undefined {
    const p = providerName(cls);
    return p ? this.d.providers.get(p) : undefined;
  }

  private async launch(
    inst: Instance,
    cls: InstanceClass,
    provider: CloudProvider,
    log: Logger,
  ): Promise<ReconcileResult | void> {
    const name = inst.metadata.name!;
    const clsName = cls.metadata.name!;
    try {
      const launched = await provider.create({
        instance: { name, uid: inst.metadata.uid! },
        class: cls,
        tags: { [TAG_CLUSTER]: this.d.clusterName, [TAG_CLASS]: clsName, [TAG_INSTANCE]: name },
        node: {
          labels: { [NODE_CLASS_LABEL]: clsName, [NODE_INSTANCE_LABEL]: name },
          taints: [{ key: TAINT_KEY, value: clsName, effect: 'NoSchedule' }],
        },
      });
      await this.d.writer.patchStatus(name, {
        phase: 'Launched',
        provider: provider.name,
        providerID: launched.providerID,
        instanceType: launched.instanceType,
        zone: launched.zone,
        launchedAt: launched.launchedAt.toISOString(),
      });
      this.d.events.publish(
        instanceRef(inst),
        'Normal',
        'Launched',
        'Launch',
        `launched ${launched.instanceType} in ${launched.zone} as ${launched.providerID}`,
      );
      log.info(
        { providerID: launched.providerID, instanceType: launched.instanceType, zone: launched.zone },
        'instance launched',
      );
      return { requeueAfterMs: 1_000 };
    } catch (e) {
      const pods = this.d.state.podsClaiming(name);
      if (e instanceof InsufficientCapacityError) {
        this.warn(inst, pods, 'InsufficientCapacity', `no capacity for class ${clsName}: ${e.message}; will retry`);
      } else if (e instanceof ThrottledError) {
        log.info({ err: e }, 'cloud API throttled the launch; backing off');
        return { requeueAfterMs: e.retryAfterMs ?? 2_000 + Math.random() * 3_000 };
      } else if (e instanceof InvalidConfigError) {
        this.warn(inst, pods, 'InvalidClass', `InstanceClass ${clsName} cannot launch: ${e.message}; fix the class`);
        return { requeueAfterMs: 60_000 };
      } else {
        this.warn(inst, pods, 'LaunchFailed', `launch failed for class ${clsName}: ${describeError(e)}`);
      }
      throw e;
    }
  }

  private warn(
    inst: Instance,
    pods: { metadata?: { name?: string; namespace?: string; uid?: string } }[],
    reason: string,
    note: string,
  ): void {
    this.d.events.publish(instanceRef(inst), 'Warning', reason, 'Launch', note);
    for (const p of pods) {
      this.d.events.publish(podRef(p), 'Warning', reason, 'Provision', note);
    }
  }

  /** The status the world implies now: registration, readiness, who is on it, since when idle. */
  private observe(inst: Instance, node: V1Node | undefined): ObservedStatus {
    const s = inst.status ?? {};
    const nowIso = new Date(this.now()).toISOString();
    if (!node) return { phase: 'Launched' };
    const ready = isNodeReady(node);
    const phase: Phase = ready || s.phase === 'Ready' ? 'Ready' : 'Registered';
    const pods = occupants(
      this.d.state.podsClaiming(inst.metadata.name!),
      this.d.state.podsOnNode(node.metadata!.name!),
    );
    const idleSince = phase === 'Ready' && pods.length === 0 ? (s.idleSince ?? nowIso) : null;
    return {
      phase,
      nodeName: node.metadata!.name!,
      registeredAt: s.registeredAt ?? nowIso,
      readyAt: phase === 'Ready' ? (s.readyAt ?? nowIso) : undefined,
      pods,
      idleSince,
    };
  }

  private async writeStatus(inst: Instance, next: ObservedStatus, log: Logger): Promise<void> {
    const s = inst.status ?? {};
    const changed =
      next.phase !== s.phase ||
      next.nodeName !== s.nodeName ||
      (next.idleSince ?? undefined) !== s.idleSince ||
      JSON.stringify(next.pods ?? []) !== JSON.stringify(s.pods ?? []) ||
      (next.readyAt && !s.readyAt) ||
      (next.registeredAt && !s.registeredAt);
    if (!changed) return;
    await this.d.writer.patchStatus(inst.metadata.name!, next as unknown as InstanceStatus);
    const cls = inst.spec.class;
    const uid = inst.metadata.uid ?? inst.metadata.name!;
    if (
      ((next.phase === 'Registered' && s.phase !== 'Registered') || (next.phase === 'Ready' && !s.registeredAt)) &&
      !this.registrationReported.has(uid)
    ) {
      this.registrationReported.add(uid);
      this.d.events.publish(
        instanceRef(inst),
        'Normal',
        'Registered',
        'Register',
        `node ${next.nodeName} joined the cluster`,
      );
      if (s.launchedAt)
        this.d.metrics.instanceRegistrationDuration.observe(
          { class: cls, provider: s.provider ?? '' },
          (this.now() - Date.parse(s.launchedAt)) / 1000,
        );
    }
    if (next.phase === 'Ready' && s.phase !== 'Ready') log.info({ node: next.nodeName }, 'node is Ready');
    if (next.idleSince && !s.idleSince)
      this.d.events.publish(
        instanceRef(inst),
        'Normal',
        'BecameIdle',
        'Idle',
        `no pods on node ${next.nodeName}; terminating after the class's idleTimeout unless a pod arrives`,
      );
  }

  private async expire(inst: Instance, reason: string, message: string, log: Logger): Promise<void> {
    this.warn(inst, this.d.state.podsClaiming(inst.metadata.name!), reason, `${message}; replacing the instance`);
    log.warn({ reason }, message);
    await this.d.writer.delete(inst.metadata.name!, inst.metadata.resourceVersion);
  }

  /** Cordon, delete the Node, terminate the cloud instance, then let the Instance go. */
  private async terminate(inst: Instance, cls: InstanceClass | undefined, log: Logger): Promise<void> {
    const name = inst.metadata.name!;
    if (inst.status?.phase !== 'Draining' && inst.status?.phase !== 'Terminated') {
      await this.d.writer.patchStatus(name, { phase: 'Draining' });
    }
    const node =
      this.d.state.nodeByProviderID(inst.status?.providerID) ??
      (inst.status?.nodeName ? this.d.state.node(inst.status.nodeName) : undefined);
    if (node) {
      const nodeName = node.metadata!.name!;
      try {
        if (!node.spec?.unschedulable)
          await this.core.patchNode({
            name: nodeName,
            body: [{ op: 'add', path: '/spec/unschedulable', value: true }],
          });
        await this.core.deleteNode({ name: nodeName });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      log.info({ node: nodeName }, 'node cordoned and deleted');
    }
    const providerName_ = inst.status?.provider ?? (cls ? providerName(cls) : undefined);
    const provider = providerName_ ? this.d.providers.get(providerName_) : undefined;
    if (provider) {
      // The launch may have happened without its status being written: find it by its tag too.
      const ids = new Set<string>();
      if (inst.status?.providerID) ids.add(inst.status.providerID);
      for (const c of await provider.list()) if (c.tags[TAG_INSTANCE] === name) ids.add(c.providerID);
      for (const id of ids) {
        try {
          await provider.delete(id);
          log.info({ providerID: id }, 'cloud instance terminated');
        } catch (e) {
          if (!(e instanceof NotFoundError)) throw e;
        }
      }
      this.d.events.publish(
        instanceRef(inst),
        'Normal',
        'Terminated',
        'Terminate',
        ids.size ? `terminated ${[...ids].join(', ')}` : 'nothing was launched',
      );
    } else if (inst.status?.providerID) {
      log.error(
        { provider: providerName_ },
        'cannot terminate: provider not enabled in this controller; the finalizer stays until it is',
      );
      throw new Error(
        `provider ${providerName_} of Instance ${name} is not enabled (--providers); enable it so the cloud instance can be terminated`,
      );
    }
    await this.d.writer.removeFinalizer(inst);
    this.registrationReported.delete(inst.metadata.uid ?? name);
  }
}
