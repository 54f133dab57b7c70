// The simulated cloud: what the demo and most e2e tests run on. Its "instances" are ConfigMaps in
// one namespace (so they outlive the controller, like real instances do), and its "kubelet" is a
// loop that registers a kwok-managed Node for each instance once its boot delay has passed, with
// the providerID, labels and taint a real node would register with. The controller cannot tell it
// from a real cloud: same interface, same typed errors, same registration path.
import { createHash } from 'node:crypto';
import { CoreV1Api, KubeConfig, type V1ConfigMap, type V1Node } from '@kubernetes/client-node';
import type { HostIsolation, InstanceClass } from '../../src/api/types.ts';
import { parseDuration } from '../../src/api/duration.ts';
import { TAG_CLASS, TAG_CLUSTER, TAG_INSTANCE } from '../../src/api/names.ts';
import { isAlreadyExists, isNotFound } from '../../src/kube/errors.ts';
import { Informer } from '../../src/kube/informer.ts';
import { mergePatch } from '../../src/kube/patch.ts';
import type { Logger } from '../../src/log.ts';
import { InsufficientCapacityError, InvalidConfigError, NotFoundError, ThrottledError } from '../errors.ts';
import { requiredIsolation } from '../isolation.ts';
import { launchFirstAvailable, noOfferingInZones, offerings, UnavailableOfferings } from '../offerings.ts';
import type { CloudInstance, CloudProvider, LaunchRequest, NodeIdentity, Resources } from '../types.ts';
import { CATALOG, FEATURES, ZONES } from './catalog.ts';
import type { CloudOperation, SimulatedFaults } from './faults.ts';

export interface SimulatedProviderOptions {
  kubeconfig: KubeConfig;
  clusterName: string;
  /** Namespace holding the simulated instances. */
  namespace: string;
  logger: Logger;
  /** How often the simulated kubelets look for instances to boot. */
  tickMs?: number;
  /** Cloud faults to inject (chaos runs only: --simulated-faults); none by default. */
  faults?: SimulatedFaults;
}

const PREFIX = 'sim:///';
/** Nodes registered at once by the simulated kubelets (bounded only to keep the connections few). */
const REGISTRATIONS_IN_FLIGHT = 16;

/** How long a node this loop created or deleted may be missing from its watch before the watch is believed. */
const UNSEEN_MS = 30_000;
const STATE_LABEL = 'sim.ipp.dev/state';
/** On the simulated kubelets' own nodes, so they find them (and only this cluster's). */
const NODE_LABEL = 'sim.ipp.dev/cluster';

interface SimulatedRecord {
  id: string;
  zone: string;
  instanceType: string;
  launchedAt: string;
  bootDelayMs: number;
  register: boolean;
  node: NodeIdentity;
  tags: { [k: string]: string };
  /** What the launch obtained (absent in records written before host isolation existed). */
  hostIsolation?: HostIsolation;
}

/** Problems with the class's host isolation on the simulated types, naming the field. */
export function simulatedIsolationProblems(cls: InstanceClass): string[] {
  const want = requiredIsolation(cls);
  const out: string[] = [];
  cls.spec.instanceTypes.forEach((t, i) => {
    const f = FEATURES[t];
    if (!f) return;
    const field = `spec.instanceTypes[${i}]`;
    if (want.level === 'BareMetal' && !f.metal)
      out.push(
        `spec.hostIsolation: BareMetal needs bare-metal instance types, and ${field} ${t} is a VM; use sim.metal`,
      );
    if (want.smt === 'Off' && !f.smtOff)
      out.push(`spec.smt: Off cannot be delivered by ${field} ${t}; use sim.medium or sim.large`);
    if (want.nestedVirtualization && !f.nested)
      out.push(`spec.nestedVirtualization: ${field} ${t} cannot run VMs; use sim.medium or sim.metal`);
  });
  return out;
}

/** The isolation a simulated launch of `instanceType` obtains for the class. */
function obtained(cls: InstanceClass, instanceType: string): HostIsolation {
  const want = requiredIsolation(cls);
  const f = FEATURES[instanceType]!;
  return {
    level: f.metal ? 'BareMetal' : want.level === 'DedicatedHardware' ? 'DedicatedHardware' : 'VM',
    smt: want.smt === 'Off' && f.smtOff ? 'Off' : 'On',
    nestedVirtualization: f.metal || (want.nestedVirtualization === true && f.nested),
  };
}

const idOf = (providerID: string) => providerID.slice(providerID.lastIndexOf('/') + 1);
const nodeName = (id: string) => `sim-${id}`;

/** Records per list call. */
const RECORDS_PAGE = 250;

export class SimulatedProvider implements CloudProvider {
  readonly name = 'simulated';
  private readonly core: CoreV1Api;
  private readonly opts: SimulatedProviderOptions;
  private readonly unavailable = new UnavailableOfferings();
  /** Launch calls per class, for spec.simulated.throttleLaunches. */
  private readonly launchCalls = new Map<string, number>();

  constructor(opts: SimulatedProviderOptions) {
    this.opts = opts;
    this.core = opts.kubeconfig.makeApiClient(CoreV1Api);
  }

  validate(cls: InstanceClass): string[] {
    const problems: string[] = [];
    cls.spec.instanceTypes.forEach((t, i) => {
      if (!CATALOG[t])
        problems.push(
          `spec.instanceTypes[${i}]: unknown simulated instance type "${t}"; use one of ${Object.keys(CATALOG).join(', ')}`,
        );
    });
    (cls.spec.zones ?? []).forEach((z, i) => {
      if (!ZONES.includes(z))
        problems.push(`spec.zones[${i}]: unknown simulated zone "${z}"; use one of ${ZONES.join(', ')}`);
    });
    try {
      parseDuration(cls.spec.simulated?.bootDelay ?? '2s', 'spec.simulated.bootDelay');
    } catch (e) {
      problems.push((e as Error).message);
    }
    return [...problems, ...simulatedIsolationProblems(cls)];
  }

  capacity(instanceType: string): Resources | undefined {
    return CATALOG[instanceType];
  }

  /** One call of the cloud API, under the injected faults if any. */
  private cloud<T>(operation: CloudOperation, call: () => Promise<T>): Promise<T> {
    return this.opts.faults ? this.opts.faults.around(operation, call) : call();
  }

  create(req: LaunchRequest): Promise<CloudInstance> {
    return this.cloud('create', () => this.launch(req));
  }

  delete(providerID: string): Promise<void> {
    return this.cloud('delete', () => this.terminate(providerID));
  }

  get(providerID: string): Promise<CloudInstance> {
    return this.cloud('get', () => this.describe(providerID));
  }

  list(): Promise<CloudInstance[]> {
    return this.cloud('list', async () => (await this.records()).map((r) => this.toInstance(r)));
  }

  findByInstance(instance: string): Promise<CloudInstance[]> {
    return this.cloud('find', () => this.byInstance(instance));
  }

  private async launch(req: LaunchRequest): Promise<CloudInstance> {
    const [existing] = await this.byInstance(req.instance.name);
    if (existing) return existing;
    const problems = this.validate(req.class);
    if (problems.length) throw new InvalidConfigError(problems.join('; '));

    const sim = req.class.spec.simulated ?? {};
    const cls = req.class.metadata.name!;
    const calls = (this.launchCalls.get(cls) ?? 0) + 1;
    this.launchCalls.set(cls, calls);
    if (calls <= (sim.throttleLaunches ?? 0))
      throw new ThrottledError(`simulated throttling of launch ${calls}/${sim.throttleLaunches} for class ${cls}`);

    const all = offerings(req.class, ZONES, req.zones);
    if (!all.length)
      throw new InvalidConfigError(
        noOfferingInZones(req.class, req.instance.name, req.zones ?? [], req.class.spec.zones ?? ZONES),
      );
    return launchFirstAvailable(all, this.unavailable, async (o) => {
      if (
        sim.unavailableInstanceTypes?.includes(o.instanceType) ||
        (o.zone && sim.unavailableZones?.includes(o.zone))
      ) {
        throw new InsufficientCapacityError(`simulated: no ${o.instanceType} capacity in ${o.zone}`, [o]);
      }
      this.opts.faults?.checkCapacity(o);
      // Idempotency token: the same Instance UID and offering always name the same instance.
      const id = `i-${createHash('sha256').update(`${req.instance.uid}/${o.instanceType}/${o.zone}`).digest('hex').slice(0, 17)}`;
      const record: SimulatedRecord = {
        id,
        zone: o.zone ?? ZONES[0]!,
        instanceType: o.instanceType,
        launchedAt: new Date().toISOString(),
        bootDelayMs: parseDuration(sim.bootDelay ?? '2s'),
        register: sim.register !== false,
        node: req.node,
        tags: req.tags,
        hostIsolation: obtained(req.class, o.instanceType),
      };
      try {
        await this.core.createNamespacedConfigMap({ namespace: this.opts.namespace, body: this.toConfigMap(record) });
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        return this.describe(`${PREFIX}${record.zone}/${id}`);
      }
      return this.toInstance(record);
    });
  }

  private async terminate(providerID: string): Promise<void> {
    try {
      await this.core.deleteNamespacedConfigMap({ name: idOf(providerID), namespace: this.opts.namespace });
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`simulated instance ${providerID} does not exist`, { cause: e });
      throw e;
    }
  }

  private async describe(providerID: string): Promise<CloudInstance> {
    try {
      const cm = await this.core.readNamespacedConfigMap({ name: idOf(providerID), namespace: this.opts.namespace });
      return this.toInstance(this.fromConfigMap(cm));
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`simulated instance ${providerID} does not exist`, { cause: e });
      throw e;
    }
  }

  /**
   * The simulated kubelets: register nodes of booted instances, remove nodes of vanished ones. They
   * watch the records and their nodes rather than list both every tick: listing every instance and
   * node twice a second made this stand-in for the cloud cost the controller's process CPU in
   * proportion to the number of instances times the length of a burst.
   */
  async run(signal: AbortSignal): Promise<void> {
    const tick = this.opts.tickMs ?? 500;
    const records = new Informer<V1ConfigMap>({
      kubeconfig: this.opts.kubeconfig,
      resource: 'simulated instances',
      path: `/api/v1/namespaces/${this.opts.namespace}/configmaps`,
      labelSelector: this.selector(),
      logger: this.opts.logger,
      onChange: () => {},
    });
    const nodes = new Informer<V1Node>({
      kubeconfig: this.opts.kubeconfig,
      resource: 'simulated nodes',
      path: '/api/v1/nodes',
      labelSelector: `${NODE_LABEL}=${this.opts.clusterName}`,
      logger: this.opts.logger,
      onChange: () => {},
    });
    const stop = () => void Promise.all([records.stop(), nodes.stop()]);
    signal.addEventListener('abort', stop, { once: true });
    try {
      await Promise.all([records.start(), nodes.start()]);
      while (!signal.aborted) {
        try {
          await this.boot(
            records.list().map((cm) => this.cachedRecord(cm)),
            nodes.list().map((n) => n.metadata!.name!),
          );
        } catch (e) {
          this.opts.logger.warn({ err: e }, 'simulated kubelet loop failed; retrying');
        }
        await new Promise((r) => setTimeout(r, tick));
      }
    } finally {
      signal.removeEventListener('abort', stop);
      await Promise.all([records.stop(), nodes.stop()]);
    }
  }

  /**
   * Nodes this loop created or deleted that the node watch has not shown yet, so a tick on the
   * lagging cache neither registers a node twice nor deletes one twice (for at most UNSEEN_MS).
   */
  private readonly unseen = new Map<string, { created: boolean; at: number }>();

  private async boot(records: SimulatedRecord[], nodes: string[]): Promise<void> {
    const cached = new Set(nodes);
    const now = Date.now();
    for (const [n, u] of this.unseen) if (cached.has(n) === u.created || now - u.at > UNSEEN_MS) this.unseen.delete(n);
    const known = (n: string) => this.unseen.get(n)?.created ?? cached.has(n);
    // Each machine's kubelet registers on its own: one after another, a burst of a thousand booted
    // instances waited ~10 s here for nodes a real cloud would have registered in parallel.
    const booted = records.filter(
      (r) => r.register && !known(nodeName(r.id)) && Date.parse(r.launchedAt) + r.bootDelayMs <= now,
    );
    const failures: unknown[] = [];
    let next = 0;
    const kubelet = async () => {
      for (let r = booted[next++]; r; r = booted[next++]) {
        try {
          await this.register(r);
          this.unseen.set(nodeName(r.id), { created: true, at: now });
        } catch (e) {
          failures.push(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(REGISTRATIONS_IN_FLIGHT, booted.length) }, kubelet));
    if (failures.length) throw failures[0];
    // A terminated instance's node goes away, as the cloud node-lifecycle controller does.
    const live = new Set(records.map((r) => nodeName(r.id)));
    for (const n of nodes) {
      if (live.has(n) || !known(n)) continue;
      await this.core.deleteNode({ name: n }).catch(() => {});
      this.unseen.set(n, { created: false, at: now });
    }
  }

  private async register(r: SimulatedRecord): Promise<void> {
    const capacity = CATALOG[r.instanceType]!;
    const resources = { cpu: `${capacity.cpu}m`, memory: `${capacity.memory}`, pods: `${capacity.pods}` };
    const name = nodeName(r.id);
    try {
      await this.core.createNode({
        body: {
          metadata: {
            name,
            labels: {
              ...r.node.labels,
              'kubernetes.io/hostname': name,
              'kubernetes.io/os': 'linux',
              'node.kubernetes.io/instance-type': r.instanceType,
              'topology.kubernetes.io/zone': r.zone,
              type: 'kwok',
              [NODE_LABEL]: this.opts.clusterName,
            },
            annotations: { 'kwok.x-k8s.io/node': 'fake' },
          },
          spec: { providerID: `${PREFIX}${r.zone}/${r.id}`, taints: r.node.taints },
        },
      });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
    // A kubelet reports its capacity in status; kwok keeps the conditions and heartbeats.
    await this.core.patchNodeStatus(
      { name, body: { status: { capacity: resources, allocatable: resources } } },
      mergePatch,
    );
    this.opts.logger.info({ node: name, instanceType: r.instanceType, zone: r.zone }, 'simulated node registered');
  }

  /** One list selected by the Instance's label (a name too long for a label value is matched after a full list). */
  private async byInstance(instance: string): Promise<CloudInstance[]> {
    const selector = instance.length <= 63 ? `,${TAG_INSTANCE}=${instance}` : '';
    return (await this.records(selector))
      .filter((x) => x.tags[TAG_INSTANCE] === instance)
      .map((r) => this.toInstance(r));
  }

  /** This cluster's running instances (and more, e.g. `,<label>=<value>`). */
  private selector(more = ''): string {
    return `${TAG_CLUSTER}=${this.opts.clusterName},${STATE_LABEL}=running${more}`;
  }

  /**
   * In pages, as a cloud's describe calls answer: one response of thousands of records is parsed
   * (and deserialised) in one go, and held the controller's thread for a quarter of a second at 5,000
   * instances. The pages are one consistent snapshot (the API server's continue token).
   */
  private async records(moreSelector = ''): Promise<SimulatedRecord[]> {
    const out: SimulatedRecord[] = [];
    let next: string | undefined;
    do {
      const page = await this.core.listNamespacedConfigMap({
        namespace: this.opts.namespace,
        labelSelector: this.selector(moreSelector),
        limit: RECORDS_PAGE,
        _continue: next,
      });
      for (const cm of page.items) out.push(this.fromConfigMap(cm));
      next = page.metadata?._continue || undefined;
    } while (next);
    return out;
  }

  private toConfigMap(r: SimulatedRecord): V1ConfigMap {
    return {
      metadata: {
        name: r.id,
        labels: {
          [TAG_CLUSTER]: String(r.tags[TAG_CLUSTER]),
          [TAG_CLASS]: String(r.tags[TAG_CLASS]),
          // Lets a teardown find its instance by label (a label value holds at most 63 characters).
          ...(String(r.tags[TAG_INSTANCE]).length <= 63 ? { [TAG_INSTANCE]: String(r.tags[TAG_INSTANCE]) } : {}),
          [STATE_LABEL]: 'running',
        },
      },
      data: { instance: JSON.stringify(r) },
    };
  }

  private readonly parsed = new WeakMap<V1ConfigMap, SimulatedRecord>();
  /** A cached ConfigMap's record, parsed once (the cache replaces the object when it changes). */
  private cachedRecord(cm: V1ConfigMap): SimulatedRecord {
    let r = this.parsed.get(cm);
    if (!r) this.parsed.set(cm, (r = this.fromConfigMap(cm)));
    return r;
  }

  private fromConfigMap(cm: V1ConfigMap): SimulatedRecord {
    return JSON.parse(cm.data?.instance ?? '{}') as SimulatedRecord;
  }

  private toInstance(r: SimulatedRecord): CloudInstance {
    return {
      providerID: `${PREFIX}${r.zone}/${r.id}`,
      instanceType: r.instanceType,
      zone: r.zone,
      state: 'running',
      tags: r.tags,
      launchedAt: new Date(r.launchedAt),
      ...(r.hostIsolation ? { hostIsolation: r.hostIsolation } : {}),
    };
  }
}
