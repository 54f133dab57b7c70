// The simulated machines' kubelets: each booted instance of the simulated cloud registers a
// kwok-managed Node with the providerID, labels and taints a real node would register with, and a
// terminated instance's Node goes away, as the cloud node-lifecycle controller does. The demo runs
// them inside the controller; benchmarks run them in a process of their own (test/bench/kubelets.ts),
// as a real cluster's kubelets are never the controller's CPU.
import type { KubeConfig, V1ConfigMap, V1Node } from '@kubernetes/client-node';
import { isAlreadyExists } from '../../src/kube/errors.ts';
import { Informer } from '../../src/kube/informer.ts';
import { sendJson } from '../../src/kube/request.ts';
import type { Logger } from '../../src/log.ts';
import { CATALOG } from './catalog.ts';
import { fromConfigMap, nodeName, providerIdOf, recordSelector, recordsPath, type SimulatedRecord } from './records.ts';

export interface SimulatedKubeletsOptions {
  kubeconfig: KubeConfig;
  clusterName: string;
  /** Namespace holding the simulated instances. */
  namespace: string;
  logger: Logger;
  /** How often the kubelets look for instances to boot. */
  tickMs?: number;
}

/** Nodes registered at once (bounded only to keep the connections few). */
const REGISTRATIONS_IN_FLIGHT = 16;
/** How long a node this loop created or deleted may be missing from its watch before the watch is believed. */
const UNSEEN_MS = 30_000;
/** On the simulated kubelets' own nodes, so they find them (and only this cluster's). */
const NODE_LABEL = 'sim.ipp.dev/cluster';

export class SimulatedKubelets {
  private readonly opts: SimulatedKubeletsOptions;
  private readonly parsed = new WeakMap<V1ConfigMap, SimulatedRecord>();
  /**
   * Nodes this loop created or deleted that the node watch has not shown yet, so a tick on the
   * lagging cache neither registers a node twice nor deletes one twice (for at most UNSEEN_MS).
   */
  private readonly unseen = new Map<string, { created: boolean; at: number }>();

  constructor(opts: SimulatedKubeletsOptions) {
    this.opts = opts;
  }

  /**
   * They watch the records and their nodes rather than list both every tick: listing every instance
   * and node twice a second made this stand-in cost in proportion to the number of instances times
   * the length of a burst.
   */
  async run(signal: AbortSignal): Promise<void> {
    const tick = this.opts.tickMs ?? 500;
    const records = new Informer<V1ConfigMap>({
      kubeconfig: this.opts.kubeconfig,
      resource: 'simulated instances',
      path: recordsPath(this.opts.namespace),
      labelSelector: recordSelector(this.opts.clusterName),
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

  /** A cached ConfigMap's record, parsed once (the cache replaces the object when it changes). */
  private cachedRecord(cm: V1ConfigMap): SimulatedRecord {
    let r = this.parsed.get(cm);
    if (!r) this.parsed.set(cm, (r = fromConfigMap(cm)));
    return r;
  }

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
      await sendJson(this.opts.kubeconfig, { method: 'DELETE', path: `/api/v1/nodes/${n}` }).catch(() => {});
      this.unseen.set(n, { created: false, at: now });
    }
  }

  private async register(r: SimulatedRecord): Promise<void> {
    const capacity = CATALOG[r.instanceType]!;
    const resources = { cpu: `${capacity.cpu}m`, memory: `${capacity.memory}`, pods: `${capacity.pods}` };
    const name = nodeName(r.id);
    // Registered with its capacity in status, as a kubelet registers (the API server keeps a new
    // Node's status); kwok keeps it and adds the conditions and heartbeats. A separate status PATCH
    // cost every launch one more Node write, seen by every Node watcher.
    try {
      await sendJson(this.opts.kubeconfig, {
        method: 'POST',
        path: '/api/v1/nodes',
        body: {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: {
            name,
            labels: {
              ...r.node.labels,
              // The labels a kubelet registers, the beta ones included: without them kube-controller-manager
              // reads and patches every new node to add them (one GET and one PATCH of each Node).
              'kubernetes.io/hostname': name,
              'kubernetes.io/os': 'linux',
              'kubernetes.io/arch': 'amd64',
              'beta.kubernetes.io/os': 'linux',
              'beta.kubernetes.io/arch': 'amd64',
              'node.kubernetes.io/instance-type': r.instanceType,
              'topology.kubernetes.io/zone': r.zone,
              type: 'kwok',
              [NODE_LABEL]: this.opts.clusterName,
            },
            annotations: { 'kwok.x-k8s.io/node': 'fake' },
          },
          spec: { providerID: providerIdOf(r), taints: r.node.taints },
          status: { capacity: resources, allocatable: resources },
        },
      });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
    this.opts.logger.info({ node: name, instanceType: r.instanceType, zone: r.zone }, 'simulated node registered');
  }
}
