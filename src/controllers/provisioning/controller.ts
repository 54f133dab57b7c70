// Provisioning for one class at a time (the queue key is the class name, so two decisions about the
// same class never race): read the class's pods and Instances, plan, then carry the plan out in the
// order that survives a crash at any line: claim the pod → create the Instance → pin or bind.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { GATE, NODE_INSTANCE_LABEL, POD_INSTANCE_ANNOTATION } from '../../api/names.ts';
import type { Instance, InstanceClass } from '../../api/types.ts';
import { awaitsPlacement, isGated } from '../../api/pods.ts';
import { cpuMillis, parseQuantity } from '../../api/quantity.ts';
import { describeError, isNotFound, isStale } from '../../kube/errors.ts';
import { pointer } from '../../kube/patch.ts';
import type { ReconcileResult } from '../../kube/workqueue.ts';
import type { ControllerContext } from '../context.ts';
import { podRef } from '../../kube/events.ts';
import type { CloudProvider } from '../../../providers/types.ts';
import { providerName } from '../instance/controller.ts';
import { plan, type Placement } from './plan.ts';

export type PlacementMode = 'pin' | 'bind';

export interface ProvisioningDeps extends ControllerContext {
  newName?: (cls: string) => string;
}

/** Why pods of this class cannot be provisioned at all, or undefined when they can. */
export function classProblem(
  cls: InstanceClass | undefined,
  className: string,
  providers: Map<string, CloudProvider>,
): { reason: string; message: string } | undefined {
  if (!cls)
    return {
      reason: 'UnknownClass',
      message: `InstanceClass "${className}" does not exist; create it (kubectl get instanceclasses) or fix the pod's ipp-class label`,
    };
  const p = providerName(cls);
  const provider = p ? providers.get(p) : undefined;
  if (!provider)
    return {
      reason: 'InvalidClass',
      message: `InstanceClass "${className}" uses provider "${p}", which this controller does not run (--providers)`,
    };
  const problems = provider.validate(cls);
  if (problems.length)
    return { reason: 'InvalidClass', message: `InstanceClass "${className}" is invalid: ${problems.join('; ')}` };
  return undefined;
}

export const namespaceAllowed = (cls: InstanceClass, ns: string) =>
  !cls.spec.namespaces?.length || cls.spec.namespaces.includes(ns) || cls.spec.namespaces.includes('*');

/**
 * Writes of ours the informer has not shown us yet (client-go's "expectations"). Planning on a
 * cache that lacks our own claims would hand out the same room twice, so a class waits for them.
 */
interface InFlight {
  claims: Map<string, string>;
  instances: Set<string>;
  since: number;
}
const EXPECTATION_TIMEOUT_MS = 30_000;

export class ProvisioningController {
  private readonly d: ProvisioningDeps;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly core: CoreV1Api;
  private readonly now: () => number;
  private readonly newName: (cls: string) => string;

  constructor(deps: ProvisioningDeps) {
    this.d = deps;
    this.core = deps.kubeconfig.makeApiClient(CoreV1Api);
    this.now = deps.now ?? Date.now;
    this.newName = deps.newName ?? ((cls) => `${cls}-${randomBytes(4).toString('hex')}`);
  }

  async reconcile(className: string): Promise<ReconcileResult | void> {
    const log = this.d.logger.child({ class: className });
    if (!this.caughtUp(className)) return { requeueAfterMs: 100 };
    const pods = this.d.state.podsOfClass(className);
    const waiting = pods.filter(awaitsPlacement);
    if (!waiting.length) return;
    const cls = this.d.state.instanceClass(className);

    const problem = classProblem(cls, className, this.d.providers);
    if (problem) {
      for (const p of waiting)
        this.d.events.publish(podRef(p), 'Warning', problem.reason, 'Provision', problem.message);
      log.warn({ pods: waiting.length }, problem.message);
      return; // the class's own events requeue us when it appears or changes
    }
    for (const p of waiting.filter((p) => !namespaceAllowed(cls!, p.metadata!.namespace!))) {
      this.d.events.publish(
        podRef(p),
        'Warning',
        'NamespaceNotAllowed',
        'Provision',
        `InstanceClass "${className}" does not allow namespace "${p.metadata!.namespace}" (spec.namespaces: ${cls!.spec.namespaces!.join(', ')}); add it there or use another class`,
      );
    }

    const provider = this.d.providers.get(providerName(cls!)!)!;
    const decided = plan({
      cls: cls!,
      pods,
      mayPlace: (p) => namespaceAllowed(cls!, p.metadata!.namespace!),
      exists: (n) => this.d.state.instance(n) !== undefined,
      instances: this.d.state.instancesOfClass(className),
      nodeOf: (i) => this.d.state.nodeByProviderID(i.status?.providerID),
      podsOnNode: (n) => this.d.state.podsOnNode(n),
      capacityOf: (i) => {
        const node = this.d.state.nodeByProviderID(i.status?.providerID);
        const alloc = node?.status?.allocatable;
        if (alloc?.cpu && alloc.memory && alloc.pods)
          return { cpu: cpuMillis(alloc.cpu), memory: parseQuantity(alloc.memory), pods: parseQuantity(alloc.pods) };
        return provider.capacity(i.status?.instanceType ?? cls!.spec.instanceTypes[0]!, cls!);
      },
      newName: () => this.newName(className),
    });

    for (const p of decided.blockedByMaxInstances) {
      this.d.events.publish(
        podRef(p),
        'Warning',
        'MaxInstancesReached',
        'Provision',
        `InstanceClass "${className}" is at spec.maxInstances (${cls!.spec.maxInstances}); the pod waits for an instance to free up`,
      );
    }

    let failures = 0;
    const expect: InFlight = { claims: new Map(), instances: new Set(), since: this.now() };
    const reserved = new Set<string>();
    for (const claim of decided.claims) {
      try {
        if (claim.pod.metadata?.annotations?.[POD_INSTANCE_ANNOTATION] !== claim.instance) {
          // Reusing an idle instance: reserve it first, so its idle teardown cannot win the race.
          const idle = claim.create ? undefined : this.d.state.instance(claim.instance);
          if (idle?.status?.idleSince && !reserved.has(claim.instance)) {
            await this.d.writer.reserve(idle);
            reserved.add(claim.instance);
          }
          await this.claim(claim.pod, claim.instance);
          expect.claims.set(claim.pod.metadata!.uid!, claim.instance);
        }
        if (claim.create) {
          await this.d.writer.create(claim.instance, className);
          expect.instances.add(claim.instance);
          this.d.events.publish(
            podRef(claim.pod),
            'Normal',
            'Provisioning',
            'Provision',
            `creating dedicated Instance ${claim.instance} of class ${className}`,
          );
        } else {
          this.d.events.publish(
            podRef(claim.pod),
            'Normal',
            'Provisioning',
            'Provision',
            `reusing Instance ${claim.instance} of class ${className}`,
          );
        }
        log.info(
          {
            pod: `${claim.pod.metadata!.namespace}/${claim.pod.metadata!.name}`,
            instance: claim.instance,
            create: claim.create,
          },
          'pod given an instance',
        );
      } catch (e) {
        failures++;
        if (isStale(e) || isNotFound(e))
          log.debug({ pod: claim.pod.metadata?.name }, 'pod changed since it was read; retrying with a fresh view');
        else
          log.warn({ pod: claim.pod.metadata?.name, instance: claim.instance, err: describeError(e) }, 'claim failed');
      }
    }
    if (expect.claims.size || expect.instances.size) this.inFlight.set(className, expect);
    for (const placement of decided.placements) {
      try {
        // The webhook chose per pod: gated pods are pinned (the scheduler binds), the others carry
        // schedulerName ipp and are bound here.
        await (isGated(placement.pod) ? this.pin(placement) : this.bind(placement));
      } catch (e) {
        failures++;
        if (isStale(e) || isNotFound(e))
          log.debug({ pod: placement.pod.metadata?.name }, 'pod changed since it was read; retrying with a fresh view');
        else log.warn({ pod: placement.pod.metadata?.name, err: describeError(e) }, 'placement failed');
      }
    }
    // Stale reads are normal (our own claim changed the pod); the queue's backoff retries them.
    if (failures)
      throw new Error(`${failures} claim/placement write(s) for class ${className} did not apply; retrying`);
    this.d.metrics.pendingPods.set({ class: className }, waiting.length - decided.placements.length);
  }

  /** True once the cache shows every claim and Instance this controller wrote for the class. */
  private caughtUp(className: string): boolean {
    const f = this.inFlight.get(className);
    if (!f) return true;
    for (const [uid, instance] of f.claims) {
      const pod = this.d.state.pods.list().find((p) => p.metadata?.uid === uid);
      if (!pod || pod.metadata?.annotations?.[POD_INSTANCE_ANNOTATION] === instance) f.claims.delete(uid);
    }
    for (const name of f.instances) if (this.d.state.instance(name)) f.instances.delete(name);
    if ((f.claims.size || f.instances.size) && this.now() - f.since < EXPECTATION_TIMEOUT_MS) return false;
    this.inFlight.delete(className);
    return true;
  }

  /** Records on the pod which Instance it gets, guarded by resourceVersion: the plan saw this version. */
  private async claim(pod: V1Pod, instance: string): Promise<void> {
    const ops: object[] = [{ op: 'test', path: '/metadata/resourceVersion', value: pod.metadata!.resourceVersion }];
    if (!pod.metadata!.annotations) ops.push({ op: 'add', path: '/metadata/annotations', value: {} });
    ops.push({ op: 'add', path: pointer('metadata', 'annotations', POD_INSTANCE_ANNOTATION), value: instance });
    await this.core.patchNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: ops });
  }

  /** One optimistic patch: select the Instance's node and lift the gate; kube-scheduler binds. */
  private async pin({ pod, instance, node }: Placement): Promise<void> {
    const gates = pod.spec!.schedulingGates ?? [];
    const ops: object[] = [{ op: 'test', path: '/metadata/resourceVersion', value: pod.metadata!.resourceVersion }];
    if (!pod.spec!.nodeSelector) ops.push({ op: 'add', path: '/spec/nodeSelector', value: {} });
    ops.push({ op: 'add', path: pointer('spec', 'nodeSelector', NODE_INSTANCE_LABEL), value: instance.metadata.name });
    ops.push({ op: 'replace', path: '/spec/schedulingGates', value: gates.filter((g) => g.name !== GATE) });
    await this.core.patchNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: ops });
    this.placed(
      pod,
      instance,
      node.metadata!.name!,
      'pin',
      'Pinned',
      `pinned to node ${node.metadata!.name} of Instance ${instance.metadata.name}; kube-scheduler binds it`,
    );
  }

  private async bind({ pod, instance, node }: Placement): Promise<void> {
    await this.core.createNamespacedPodBinding({
      name: pod.metadata!.name!,
      namespace: pod.metadata!.namespace!,
      body: {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name: pod.metadata!.name!, namespace: pod.metadata!.namespace! },
        target: { apiVersion: 'v1', kind: 'Node', name: node.metadata!.name! },
      },
    });
    this.placed(
      pod,
      instance,
      node.metadata!.name!,
      'bind',
      'Bound',
      `bound to node ${node.metadata!.name} of Instance ${instance.metadata.name}`,
    );
  }

  private placed(
    pod: V1Pod,
    instance: Instance,
    node: string,
    mode: PlacementMode,
    reason: string,
    note: string,
  ): void {
    this.d.events.publish(podRef(pod), 'Normal', reason, mode === 'pin' ? 'Pin' : 'Bind', note);
    const created = Date.parse(String(pod.metadata?.creationTimestamp ?? ''));
    if (!Number.isNaN(created))
      this.d.metrics.podPinDuration.observe({ class: instance.spec.class, mode }, (this.now() - created) / 1000);
    this.d.logger.info(
      {
        pod: `${pod.metadata!.namespace}/${pod.metadata!.name}`,
        instance: instance.metadata.name,
        node,
        class: instance.spec.class,
      },
      `pod ${reason.toLowerCase()}`,
    );
  }
}
