// The workload of a chaos run: Deployments, ReplicaSets and Jobs of the chaos classes, created over
// time, some of their pods deleted on purpose (their owners recreate them: more provisions) and some
// whole workloads deleted. What the driver deletes is "asked to go"; every other pod must survive.
// An observer lists the namespace every second and remembers every pod it ever saw, so that at the
// end a pod that vanished, failed or is being deleted without having been asked to go is found.
import type { V1Node, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { CLASS_LABEL } from '../../src/api/names.ts';
import { breaches, type Breach } from '../e2e/support/isolation.ts';
import { Random } from './random.ts';
import { CLASSES, WORKLOAD_NAMESPACE as NS, type Clients } from './world.ts';

/** The chaos classes with Pod isolation (the default): one of their pods per node at a time. */
const ONE_POD_CLASSES = new Set(
  Object.entries(CLASSES)
    .filter(([, spec]) => (spec.isolation ?? 'Pod') === 'Pod')
    .map(([name]) => name),
);

export const WORKLOAD_LABEL = 'chaos.ipp.dev/workload';
type Kind = 'Deployment' | 'ReplicaSet' | 'Job';

export interface SeenPod {
  uid: string;
  name: string;
  workload: string;
  cls: string;
  phase: string;
  node: string | undefined;
  deleting: boolean;
  reason: string | undefined;
}

export interface WorkloadOptions {
  seed: number;
  /** Pods to ask for in all (first pods, replacements of deleted ones, Job completions). */
  provisions: number;
  /** The requests are spread over about three quarters of this. */
  durationMs: number;
  /** At most this many live pods (and so instances) at once: whole workloads are deleted above it. */
  maxLive: number;
  log: (line: string) => void;
}

const spec = (restartPolicy: 'Always' | 'Never'): V1PodSpec => ({
  containers: [{ name: 'main', image: 'registry.example.com/chaos/app:1' }],
  restartPolicy,
  terminationGracePeriodSeconds: 0,
});
const template = (name: string, cls: string, restartPolicy: 'Always' | 'Never') => ({
  metadata: { labels: { [WORKLOAD_LABEL]: name, [CLASS_LABEL]: cls } },
  spec: spec(restartPolicy),
});

export class Workload {
  /** Pods asked for so far. */
  planned = 0;
  /** Every workload created; `count` is its replicas or its Job completions. */
  readonly workloads = new Map<string, { kind: Kind; cls: string; count: number; deleted: boolean }>();
  readonly askedPods = new Set<string>();
  readonly seen = new Map<string, SeenPod>();
  /** Latest sample: pods by UID, and the node names that existed. */
  current = new Map<string, V1Pod>();
  nodes: V1Node[] = [];
  readonly breaches = new Map<string, Breach>();
  actions = { created: 0, podsDeleted: 0, workloadsDeleted: 0, failedCalls: 0 };
  private readonly r: Random;
  private readonly o: WorkloadOptions;
  private readonly c: Clients;
  private serial = 0;

  constructor(c: Clients, o: WorkloadOptions) {
    this.c = c;
    this.o = o;
    this.r = Random.fork(o.seed, 'workload');
  }

  /** Pods alive now (not finished, not going away). */
  live(): V1Pod[] {
    return [...this.current.values()].filter(
      (p) => !p.metadata?.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed',
    );
  }

  /** A pod the driver asked to go, itself or with its whole workload. */
  asked(p: SeenPod): boolean {
    return this.askedPods.has(p.uid) || this.workloads.get(p.workload)?.deleted === true;
  }

  /** One sample of the namespace and the nodes; failures (an apiserver restart) skip the sample. */
  async observe(): Promise<boolean> {
    try {
      const [pods, nodes] = await Promise.all([
        this.c.core.listNamespacedPod({ namespace: NS }),
        this.c.core.listNode(),
      ]);
      this.current = new Map(pods.items.map((p) => [p.metadata!.uid!, p]));
      this.nodes = nodes.items;
      for (const p of pods.items) {
        const uid = p.metadata!.uid!;
        this.seen.set(uid, {
          uid,
          name: p.metadata!.name!,
          workload: p.metadata?.labels?.[WORKLOAD_LABEL] ?? '',
          cls: p.metadata?.labels?.[CLASS_LABEL] ?? '',
          phase: p.status?.phase ?? '',
          node: p.spec?.nodeName,
          deleting: !!p.metadata?.deletionTimestamp,
          reason: p.status?.reason,
        });
      }
      for (const b of breaches(nodes.items, pods.items, new Set(), ONE_POD_CLASSES))
        this.breaches.set(`${b.pod}@${b.node}`, b);
      return true;
    } catch {
      return false;
    }
  }

  /** Observes every `everyMs` until `stop` is called; resolves when the last sample is done. */
  observeUntilStopped(everyMs = 1_000): { stop(): Promise<void> } {
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        await this.observe();
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
    return {
      async stop() {
        stopped = true;
        await loop;
      },
    };
  }

  /** Creates and deletes until `provisions` pods were asked for. */
  async drive(): Promise<void> {
    const paceMs = (0.75 * this.o.durationMs) / this.o.provisions;
    while (this.planned < this.o.provisions) {
      let added = 0;
      try {
        added = await this.step();
      } catch (e) {
        // The apiserver restarting, the webhook down with the controller: the next step tries again.
        this.actions.failedCalls++;
        this.o.log(`workload: ${(e as Error).message.split('\n')[0]}`);
      }
      await new Promise((r) => setTimeout(r, Math.max(1, added) * paceMs * this.r.between(0.5, 1.5)));
    }
  }

  private async step(): Promise<number> {
    const live = this.live();
    const alive = [...this.workloads.entries()].filter(([, w]) => !w.deleted);
    const roll = this.r.next();
    if ((live.length >= this.o.maxLive || roll < 0.12) && alive.length) {
      const [name, w] = this.r.pick(alive);
      await this.deleteWorkload(name, w.kind);
      return 0;
    }
    const deletable = live.filter(
      (p) => this.workloads.get(p.metadata?.labels?.[WORKLOAD_LABEL] ?? '')?.deleted === false,
    );
    if (roll < 0.35 && deletable.length) {
      const p = this.r.pick(deletable);
      this.askedPods.add(p.metadata!.uid!);
      await this.c.core.deleteNamespacedPod({
        name: p.metadata!.name!,
        namespace: NS,
        body: { preconditions: { uid: p.metadata!.uid! } },
      });
      this.actions.podsDeleted++;
      this.planned++;
      return 1;
    }
    return this.create();
  }

  private async create(): Promise<number> {
    const cls = this.r.pick(Object.keys(CLASSES));
    const kind = this.r.pick<Kind>(['Deployment', 'Deployment', 'ReplicaSet', 'Job']);
    const count = Math.min(this.r.int(1, 3), this.o.provisions - this.planned);
    const name = `${kind.toLowerCase()}-${++this.serial}`;
    const selector = { matchLabels: { [WORKLOAD_LABEL]: name } };
    const metadata = { name, labels: { [WORKLOAD_LABEL]: name } };
    // Recorded before the call: a create that times out may still have happened.
    this.workloads.set(name, { kind, cls, count, deleted: false });
    if (kind === 'Deployment')
      await this.c.apps.createNamespacedDeployment({
        namespace: NS,
        body: { metadata, spec: { replicas: count, selector, template: template(name, cls, 'Always') } },
      });
    else if (kind === 'ReplicaSet')
      await this.c.apps.createNamespacedReplicaSet({
        namespace: NS,
        body: { metadata, spec: { replicas: count, selector, template: template(name, cls, 'Always') } },
      });
    else
      await this.c.batch.createNamespacedJob({
        namespace: NS,
        body: {
          metadata,
          spec: { completions: count, parallelism: 1, backoffLimit: 20, template: template(name, cls, 'Never') },
        },
      });
    this.actions.created++;
    this.planned += count;
    return count;
  }

  private async deleteWorkload(name: string, kind: Kind): Promise<void> {
    this.workloads.get(name)!.deleted = true;
    const args = { name, namespace: NS, propagationPolicy: 'Background' };
    const call =
      kind === 'Deployment'
        ? this.c.apps.deleteNamespacedDeployment(args)
        : kind === 'ReplicaSet'
          ? this.c.apps.deleteNamespacedReplicaSet(args)
          : this.c.batch.deleteNamespacedJob(args);
    await call.catch((e: unknown) => {
      // Never created (its create failed): nothing to delete, and nothing of it was planned.
      if ((e as { code?: number }).code !== 404) throw e;
    });
    this.actions.workloadsDeleted++;
  }
}
