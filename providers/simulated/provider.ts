// The simulated cloud: what the demo and most e2e tests run on. Its "instances" are ConfigMaps in
// one namespace (so they outlive the controller, like real instances do), and its machines' kubelets
// (kubelets.ts) register a kwok-managed Node for each instance once its boot delay has passed. The
// controller cannot tell it from a real cloud: same interface, same typed errors, same registration path.
import { createHash } from 'node:crypto';
import type { KubeConfig, V1ConfigMap } from '@kubernetes/client-node';
import type { HostIsolation, InstanceClass } from '../../src/api/types.ts';
import { parseDuration } from '../../src/api/duration.ts';
import { TAG_INSTANCE } from '../../src/api/names.ts';
import { isAlreadyExists, isNotFound } from '../../src/kube/errors.ts';
import { sendJson } from '../../src/kube/request.ts';
import type { Logger } from '../../src/log.ts';
import { InsufficientCapacityError, InvalidConfigError, NotFoundError, ThrottledError } from '../errors.ts';
import { requiredIsolation } from '../isolation.ts';
import { launchFirstAvailable, noOfferingInZones, offerings, UnavailableOfferings } from '../offerings.ts';
import type { CloudInstance, CloudProvider, LaunchRequest, Resources } from '../types.ts';
import { CATALOG, FEATURES, ZONES } from './catalog.ts';
import type { CloudOperation, SimulatedFaults } from './faults.ts';
import { SimulatedKubelets } from './kubelets.ts';
import {
  fromConfigMap,
  idOf,
  providerIdOf,
  recordSelector,
  recordsPath,
  toConfigMap,
  type SimulatedRecord,
} from './records.ts';

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
  /** Run the machines' kubelets here (default); false when another process runs them. */
  kubelets?: boolean;
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

/** Records per list call. */
const RECORDS_PAGE = 250;

export class SimulatedProvider implements CloudProvider {
  readonly name = 'simulated';
  private readonly opts: SimulatedProviderOptions;
  private readonly unavailable = new UnavailableOfferings();
  /** Launch calls per class, for spec.simulated.throttleLaunches. */
  private readonly launchCalls = new Map<string, number>();

  constructor(opts: SimulatedProviderOptions) {
    this.opts = opts;
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
      // The Instance's UID names its one cloud instance, whatever offering it got (as a GCE VM's name
      // does): a retried launch, even after a timeout that hid its success, finds it by that name
      // instead of listing the cloud first.
      const id = `i-${createHash('sha256').update(req.instance.uid).digest('hex').slice(0, 17)}`;
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
        await sendJson(this.opts.kubeconfig, { method: 'POST', path: this.path(), body: toConfigMap(record) });
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        return this.describe(providerIdOf(record));
      }
      return this.toInstance(record);
    });
  }

  private async terminate(providerID: string): Promise<void> {
    try {
      await sendJson(this.opts.kubeconfig, { method: 'DELETE', path: this.recordPath(providerID) });
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`simulated instance ${providerID} does not exist`, { cause: e });
      throw e;
    }
  }

  private async describe(providerID: string): Promise<CloudInstance> {
    try {
      const cm = await sendJson<V1ConfigMap>(this.opts.kubeconfig, {
        method: 'GET',
        path: this.recordPath(providerID),
      });
      return this.toInstance(fromConfigMap(cm));
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`simulated instance ${providerID} does not exist`, { cause: e });
      throw e;
    }
  }

  /** The machines' kubelets, unless they run elsewhere (`kubelets: false`). */
  async run(signal: AbortSignal): Promise<void> {
    if (this.opts.kubelets === false) return;
    await new SimulatedKubelets(this.opts).run(signal);
  }

  /** One list selected by the Instance's label (a name too long for a label value is matched after a full list). */
  private async byInstance(instance: string): Promise<CloudInstance[]> {
    const selector = instance.length <= 63 ? `,${TAG_INSTANCE}=${instance}` : '';
    return (await this.records(selector))
      .filter((x) => x.tags[TAG_INSTANCE] === instance)
      .map((r) => this.toInstance(r));
  }

  /** The records' collection. */
  private path(): string {
    return recordsPath(this.opts.namespace);
  }

  /** One record's path; an empty id must never become the collection (a DELETE of every record). */
  private recordPath(providerID: string): string {
    const id = idOf(providerID);
    if (!id)
      throw new NotFoundError(`simulated instance ${providerID} does not exist: its providerID names no instance`);
    return `${this.path()}/${encodeURIComponent(id)}`;
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
      const query = new URLSearchParams({
        labelSelector: recordSelector(this.opts.clusterName, moreSelector),
        limit: String(RECORDS_PAGE),
        ...(next ? { continue: next } : {}),
      });
      // The raw JSON: `continue`, where client-node's models say `_continue`.
      const page = await sendJson<{ items: V1ConfigMap[]; metadata?: { continue?: string } }>(this.opts.kubeconfig, {
        method: 'GET',
        path: `${this.path()}?${query}`,
      });
      for (const cm of page.items) out.push(fromConfigMap(cm));
      next = page.metadata?.continue || undefined;
    } while (next);
    return out;
  }

  private toInstance(r: SimulatedRecord): CloudInstance {
    return {
      providerID: providerIdOf(r),
      instanceType: r.instanceType,
      zone: r.zone,
      state: 'running',
      tags: r.tags,
      launchedAt: new Date(r.launchedAt),
      ...(r.hostIsolation ? { hostIsolation: r.hostIsolation } : {}),
    };
  }
}
