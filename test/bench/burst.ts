// Benchmark (not a test): a burst of pending pods of one class, in an empty cluster and on a world
// (ipp nodes with Ready Instances and their pods, other pods; built directly, as world.ts does),
// with the simulated provider at boot delay 0. For each size: pods/s until all are Running, and per
// pod created → Instance created, node Ready → pinned, created → Running (p50/p99), the controller's
// CPU per pod and its RSS before and after. Each run gets a fresh controller process; afterwards its
// pods, Instances, nodes and cloud records are removed, so every run starts from the same cluster.
// Every figure is measured for this tree and, in the same run, for the baseline commit.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { CLASS_LABEL, GATE, GROUP, TAINT_KEY, VERSION } from '../../src/api/names.ts';
import { mergePatch } from '../../src/kube/patch.ts';
import { apiserverMetrics } from '../testbed/apiserver-metrics.ts';
import { podSeen, type Seen, type WatchTarget } from './burst-watch.ts';
import { caBundlePatched, registerWebhooks, webhookCalls } from './admission.ts';
import { admissionRoundTrip, startController, webhookConfigName, type Tree } from './controller.ts';
import {
  cpuByCommand,
  cpuByThread,
  socketInodes,
  cpuSeconds,
  follow,
  instancePage,
  quantile,
  round,
  rssBytes,
  type Page,
} from './observe.ts';
import type { Bed } from './scale.ts';
import { inParallel } from './world.ts';

const MiB = 1024 * 1024;
const sum = (xs: Iterable<number>) => [...xs].reduce((a, b) => a + b, 0);
export const RUN_LABEL = 'bench.ipp.dev/run';

export interface BurstOptions {
  /** Give up on a run after this long and report what reached Running. */
  timeoutS: number;
  /** Pod creations in flight. */
  parallel: number;
  /**
   * direct: send each pod's AdmissionReview to the controller's webhook first, as the API server would
   * for its creation, and create it as the webhook leaves it. apiserver: register the tree's own webhook
   * configuration (admission.ts) and create pods as a user writes them; every call is the API server's.
   * none: pods created as the webhook would leave them, no webhook.
   */
  admission: AdmissionMode;
  /** More flags for this tree's controller (a baseline may not know them). */
  extraArgs: string[];
  /** How long after the burst the settled RSS is read (default 30 s). */
  settleMs?: number;
  /** How long the controller's CPU is read while idle before the burst (default 10 s). */
  idleMs?: number;
  /**
   * Write V8 CPU profiles of this tree's controller here, for profile.ts: one of its whole run (node
   * --cpu-prof) and one of each burst alone (through the inspector).
   */
  cpuProfileDir?: string;
  /**
   * Write a sampled allocation profile of this tree's controller over each burst here (every object
   * allocated, collected or not), for profile.ts.
   */
  allocProfileDir?: string;
  /** Where the simulated kubelets run (a tree from before --no-simulated-kubelets: in its controller). */
  kubelets: 'apart' | 'controller';
  /** Pods placed by the controller (then removed) before the measured burst; 0 for none. See prime(). */
  primePods?: number;
}

export interface BurstResult {
  tree: string;
  scenario: string;
  pods: number;
  running: number;
  seconds: number;
  podsPerS: number;
  toInstanceP50Ms: number;
  toInstanceP99Ms: number;
  readyToPinnedP50Ms: number;
  readyToPinnedP99Ms: number;
  /**
   * From the later of node Ready and its Instance naming the node's providerID (what a pin needs to
   * tell the node is the Instance's) to pinned. With boot delay 0 a node can turn Ready before the
   * launch's status write lands; a real instance boots for seconds to minutes after it.
   */
  placeableToPinnedP50Ms?: number;
  placeableToPinnedP99Ms?: number;
  /** Node Ready (the bench's watch) → the controller logged the pin answered (its clock, same machine). */
  readyToPinAnsweredP50Ms?: number;
  readyToPinAnsweredP99Ms?: number;
  toRunningP50Ms: number;
  toRunningP99Ms: number;
  cpuMsPerPod: number;
  /**
   * The controller's CPU while idle just before the burst (ms per second): on a world, its thousands of
   * nodes' heartbeats and the periodic re-checks, which a burst pays for as long as it lasts.
   */
  idleCpuMsPerS?: number;
  /** cpuMsPerPod less what the controller spends idle over the burst's length: what the pods themselves cost. */
  cpuMsPerPodNetOfIdle?: number;
  /** The controller's CPU per pod by thread name: the main thread against V8's and libuv's workers. */
  controllerCpuMsPerPodByThread?: Record<string, number>;
  /** The controller's sockets: held before the burst, opened or accepted during it, most held at once (sampled every 200 ms). */
  socketsBefore?: number;
  socketsOpened?: number;
  socketsPeak?: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  /** RSS 30 s after the last pod was Running, the controller idle: what stays, against what the burst only passed through. */
  rssSettledMiB?: number;
  /** The live heap then, after a forced full GC: what the caches and maps hold, against what V8 and malloc keep. */
  heapLiveSettledMiB?: number;
  /** RSS right after that GC: how much of the settled RSS V8 gives back when made to collect. */
  rssAfterGcMiB?: number;
  admissionErrors: number;
  /**
   * How often the bench's own pod watch was opened again during the run (kube-apiserver closes a
   * watcher that does not keep up): its pins are then seen late, and node Ready → pinned with them.
   */
  benchPodWatchReopened?: number;
  /**
   * Per pod, from the controller's own metrics over the burst: reconciles by controller, and the
   * admission reviews it answered. Where its CPU per pod goes when that figure moves.
   */
  controllerWork?: Record<string, number>;
  /** kube-apiserver's calls to each webhook, per pod, where it admitted the pods (--admission=apiserver). */
  webhookCallsPerPod?: Record<string, number>;
  /** Watchers kube-apiserver closed as unresponsive during the burst, by resource, every client's. */
  watchersClosedByServer?: Record<string, number>;
  /** API requests per pod the controller process sent (simulated cloud included), start to stop; NaN if it did not say. */
  controllerRequestsPerPod: number;
  /** Of those, writes (POST, PUT, PATCH, DELETE). */
  controllerWritesPerPod: number;
  /** Requests per pod the API server answered during the burst, from every client (apiserver_request_total). */
  apiserverRequestsPerPod: number;
  /** Per pod, by `VERB resource[/subresource]`: the controller's own requests. */
  controllerRequests: Record<string, number>;
  /** Per pod, by `VERB resource[/subresource]`: the simulated cloud's and kubelets' own client, where it has one. */
  cloudRequests?: Record<string, number>;
  /** Per pod, by `VERB resource[/subresource]`: every client's, as the API server counted them in the burst. */
  apiserverRequests: Record<string, number>;
  /** CPU of the bench and every process it started, per pod that reached Running (ms), first create to last Running. */
  machineCpuMsPerPod?: number;
  /** The same by process: the controller, the testbed's parts (etcd, kube-apiserver, kwok…), the bench itself. */
  cpuMsPerPodByProcess?: Record<string, number>;
}

/** Reconciles by controller and admission reviews, per pod, between two scrapes of the controller's metrics. */
export function controllerWork(before: Map<string, number>, after: Map<string, number>, pods: number) {
  const out: Record<string, number> = {};
  for (const [series, value] of after) {
    const m = /^ipp_(reconcile_total|webhook_requests_total)\{(?:controller|webhook)="([^"]+)"/.exec(series);
    if (!m) continue;
    const key = `${m[1] === 'reconcile_total' ? 'reconciles' : 'reviews'} ${m[2]}`;
    out[key] = (out[key] ?? 0) + value - (before.get(series) ?? 0);
  }
  return Object.fromEntries(
    Object.entries(out)
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => [k, round(n / Math.max(1, pods), 2)]),
  );
}

/** The API server's and the machine's figures of a run; the controller's own counts are filled in from its log. */
function serverFigures(apiRequests: Map<string, number>, pods: number, machine: ReturnType<typeof cpuPerPod>) {
  return {
    controllerRequestsPerPod: NaN,
    controllerWritesPerPod: NaN,
    apiserverRequestsPerPod: round(sum(apiRequests.values()) / pods, 2),
    controllerRequests: {},
    apiserverRequests: perPod(apiRequests, pods),
    machineCpuMsPerPod: machine.total,
    cpuMsPerPodByProcess: machine.by,
  };
}

/** CPU per pod by process (ms), largest first, and their sum. */
function cpuPerPod(
  before: Map<string, number>,
  after: Map<string, number>,
  pods: number,
  named: ReadonlyMap<number, string> = new Map(),
) {
  // A named process (the controller, the simulated kubelets) stays in the rows at 0: a few pods can cost it less
  // than one clock tick (10 ms), and a missing row would read as a process not found.
  const keep = new Set(named.values());
  const by = [...after]
    .map(([k, s]) => [k, s - (before.get(k) ?? 0)] as const)
    .filter(([k, s]) => s > 0 || keep.has(k));
  const total = by.reduce((a, [, s]) => a + s, 0);
  const rows = by
    .map(([k, s]) => [k, round((s * 1000) / Math.max(1, pods))] as const)
    .filter(([k, ms]) => ms >= 0.5 || keep.has(k))
    .sort((a, b) => b[1] - a[1]);
  return { total: round((total * 1000) / Math.max(1, pods)), by: Object.fromEntries(rows) };
}

/**
 * Watchers kube-apiserver closed because they did not keep up (apiserver_terminated_watchers_total),
 * by resource, every client's: a watch closed mid-burst delivers what happened meanwhile late.
 */
function terminatedWatchers(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_terminated_watchers_total{')) continue;
    const resource = /resource="([^"]*)"/.exec(line)?.[1] ?? '';
    out.set(resource, (out.get(resource) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** The API server's counters a burst reads before and after: requests, and watchers it closed. */
async function apiserverCounters(kc: KubeConfig) {
  const metrics = await apiserverMetrics(kc);
  return {
    requests: requestCounts(metrics),
    closedWatchers: terminatedWatchers(metrics),
    webhooks: webhookCalls(metrics),
  };
}

/** Each count of `after` less the same count of `before`. */
function minus(after: Map<string, number>, before: Map<string, number>): Map<string, number> {
  const out = new Map(after);
  for (const [k, n] of before) out.set(k, (out.get(k) ?? 0) - n);
  return out;
}

/** apiserver_request_total summed over codes and versions, by `VERB resource[/subresource]` (groups other than k8s.io's appended). */
export async function apiserverRequestCounts(kc: KubeConfig): Promise<Map<string, number>> {
  return requestCounts(await apiserverMetrics(kc));
}

function requestCounts(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!] as const));
    const group = labels.group ?? '';
    const what =
      `${labels.resource ?? ''}${group && !group.endsWith('.k8s.io') && group.includes('.') ? `.${group}` : ''}` +
      (labels.subresource ? `/${labels.subresource}` : '');
    // Refusals apart (a 409 is a write decided on a stale read, paid for and retried).
    const key = `${labels.verb} ${what}${Number(labels.code) >= 400 ? ` ${labels.code}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

interface OwnCounts {
  requests?: Record<string, number>;
  simulatedCloudRequests?: Record<string, number>;
}

/**
 * The controller's own count (its shutdown log line 'kube API requests since start'; the simulated
 * cloud's client apart, where it has its own), or undefined for a tree that does not log it.
 */
function controllerRequestCounts(logFile: string): OwnCounts | undefined {
  let found: OwnCounts | undefined;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('kube API requests since start')) continue;
    try {
      found = JSON.parse(line) as OwnCounts;
    } catch {
      /* not a JSON line */
    }
  }
  return found;
}

/**
 * When the controller logged each pod pinned or bound (the API server had answered the write), by pod
 * name: against the bench's own watch, this splits a pin's latency into the controller's part and the
 * watch delivering it.
 */
function placedLoggedAt(logFile: string): Map<string, number> {
  const at = new Map<string, number>();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"pod pinned"') && !line.includes('"pod bound"')) continue;
    try {
      const l = JSON.parse(line) as { time: string; pod: string };
      at.set(l.pod.slice(l.pod.indexOf('/') + 1), Date.parse(l.time));
    } catch {
      /* not a JSON line */
    }
  }
  return at;
}

const isWrite = (key: string) => /^(POST|PUT|PATCH|DELETE|DELETECOLLECTION|APPLY|CREATE|UPDATE) /.test(key);

/** Per pod, largest first, zero rows left out. */
const perPod = (counts: Map<string, number>, pods: number): Record<string, number> =>
  Object.fromEntries(
    [...counts]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => [k, round(n / Math.max(1, pods), 2)]),
  );

export type AdmissionMode = 'direct' | 'apiserver' | 'none';

/** A pod as its owner writes it: the label alone (the registered webhook gates and tolerates it). */
const userPod = (name: string, cls: string, run: string): V1Pod => ({
  metadata: { name, labels: { [CLASS_LABEL]: cls, [RUN_LABEL]: run } },
  spec: { containers: [{ name: 'main', image: 'busybox' }] },
});

/** The pod a burst creates: as its owner writes it where the API server admits it, else as the webhook leaves it. */
const podFor = (o: BurstOptions, name: string, cls: string, run: string): V1Pod =>
  o.admission === 'apiserver' ? userPod(name, cls, run) : pendingPod(name, cls, run);

/** A pod as the webhook leaves it in pin mode: the class's tolerations and the scheduling gate. */
export const pendingPod = (name: string, cls: string, run: string): V1Pod => ({
  metadata: { name, labels: { [CLASS_LABEL]: cls, [RUN_LABEL]: run } },
  spec: {
    containers: [{ name: 'main', image: 'busybox' }],
    tolerations: ['NoSchedule', 'NoExecute'].map((effect) => ({
      key: TAINT_KEY,
      operator: 'Equal',
      value: cls,
      effect,
    })),
    schedulingGates: [{ name: GATE }],
  },
});

/** What the watches saw of one run, each time the first moment it was seen. */
class Timeline {
  readonly created = new Map<string, number>();
  readonly claim = new Map<string, string>();
  readonly pinned = new Map<string, number>();
  readonly nodeOf = new Map<string, string>();
  readonly running = new Map<string, number>();
  readonly instanceSeen = new Map<string, number>();
  /** When each Instance's status first named its cloud instance (providerID): from then on its node can be matched. */
  readonly instanceLaunched = new Map<string, number>();
  readonly instanceClass = new Map<string, string>();
  readonly nodeReady = new Map<string, number>();
  readonly nodesSeen = new Set<string>();

  /** When the node a pod went to turned Ready. */
  readyAt(pod: string): number | undefined {
    const n = this.nodeOf.get(pod);
    return n ? this.nodeReady.get(n) : undefined;
  }

  /** One event as the watch thread saw it (burst-watch.ts). */
  seen(s: Seen): void {
    const { name, at } = s as { name: string; at: number };
    if (s.kind === 'pod') {
      if (s.claim && !this.claim.has(name)) this.claim.set(name, s.claim);
      if (!s.gated && !this.pinned.has(name)) this.pinned.set(name, at);
      if (s.nodeName) this.nodeOf.set(name, s.nodeName);
      if (s.running && !this.running.has(name)) this.running.set(name, at);
    } else if (s.kind === 'instance') {
      if (!this.instanceSeen.has(name)) this.instanceSeen.set(name, at);
      if (s.launched && !this.instanceLaunched.has(name)) this.instanceLaunched.set(name, at);
      this.instanceClass.set(name, s.cls);
    } else if (s.kind === 'node') {
      this.nodesSeen.add(name);
      if (s.ready && !this.nodeReady.has(name)) this.nodeReady.set(name, at);
    }
  }

  /** Per pod, `to(pod) - from(pod)` where both are known. */
  spans(pods: string[], from: (p: string) => number | undefined, to: (p: string) => number | undefined): number[] {
    return pods.flatMap((p) => {
      const a = from(p);
      const b = to(p);
      return a === undefined || b === undefined ? [] : [b - a];
    });
  }
}

/** The run's watches, in a thread of their own (burst-watch.ts), feeding `t`; resolves once all have begun. */
async function watchRun(kubeconfig: string, namespace: string, cls: string, run: string, t: Timeline) {
  const worker = new Worker(new URL('./burst-watch.ts', import.meta.url), {
    workerData: { kubeconfig, namespace, cls, podSelector: `${RUN_LABEL}=${run}` } satisfies WatchTarget,
  });
  let reopened: ((n: number) => void) | undefined;
  const listed = await new Promise<Extract<Seen, { kind: 'listed' }>>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('message', (s: Seen) => {
      if (s.kind === 'listed') resolve(s);
      else if (s.kind === 'reopened') reopened?.(s.pods);
      else t.seen(s);
    });
  });
  return {
    existingInstances: new Set(listed.existingInstances),
    existingNodes: new Set(listed.existingNodes),
    /** The bench's pod watch opened again: a watch the API server closed delivers its events late. */
    podWatchReopened: () =>
      new Promise<number>((resolve) => {
        reopened = resolve;
        worker.postMessage('reopened');
      }),
    stop: async () => {
      worker.postMessage('stop');
      await worker.terminate();
    },
  };
}

const names = async (list: (c: string | undefined) => Promise<Page<{ metadata?: { name?: string } }>>) => {
  const out = new Set<string>();
  let cont: string | undefined;
  do {
    const page = await list(cont);
    for (const o of page.items) out.add(o.metadata!.name!);
    cont = page.metadata?._continue || page.metadata?.continue || undefined;
  } while (cont);
  return out;
};

/** Removes what one run added: its pods, the Instances made during it, their nodes and cloud records. */
async function removeRun(bed: Bed, run: string, instances: string[], nodes: string[], records: string[]) {
  const core = bed.kc.makeApiClient(CoreV1Api);
  const custom = bed.kc.makeApiClient(CustomObjectsApi);
  const gone = (e: unknown) => {
    if ((e as { code?: number }).code !== 404) throw e;
  };
  // A DELETE of a thousand pods can outlast a loaded API server's request timeout: retry, it is idempotent.
  for (let attempt = 1; ; attempt++) {
    try {
      await core.deleteCollectionNamespacedPod({
        namespace: bed.world.namespace,
        labelSelector: `${RUN_LABEL}=${run}`,
        gracePeriodSeconds: 0,
      });
      break;
    } catch (e) {
      if (attempt >= 5) throw new Error(`could not delete the pods of burst run ${run}: ${String(e)}`, { cause: e });
      await new Promise((r) => setTimeout(r, 2_000 * attempt));
    }
  }
  await inParallel(instances.length, 16, async (i) => {
    const name = instances[i]!;
    const at = { group: GROUP, version: VERSION, plural: 'instances', name };
    await custom
      .patchClusterCustomObject({ ...at, body: [{ op: 'replace', path: '/metadata/finalizers', value: [] }] })
      .catch(gone);
    await custom.deleteClusterCustomObject(at).catch(gone);
  });
  await inParallel(nodes.length, 16, (i) => core.deleteNode({ name: nodes[i]! }).then(() => {}, gone));
  await inParallel(records.length, 16, (i) =>
    core.deleteNamespacedConfigMap({ name: records[i]!, namespace: bed.world.cloudNamespace }).then(() => {}, gone),
  );
}

/**
 * `pods` pods of class `cls` placed by the controller, to Running, then removed with their Instances,
 * nodes and cloud records, and 10 s to settle: the measured burst then meets a controller that has
 * placed pods before (V8's optimizing compiler has seen its code, its connections are open), as a
 * controller that has been running does, rather than one just started.
 */
async function prime(bed: Bed, cls: string, pods: number, webhookUrl: string, o: BurstOptions): Promise<void> {
  const core = bed.kc.makeApiClient(CoreV1Api);
  const custom = bed.kc.makeApiClient(CustomObjectsApi);
  const run = `p${Date.now().toString(36)}`;
  const ns = bed.world.namespace;
  const world = async () => ({
    instances: await names((c) => instancePage(custom, c)),
    nodes: await names((c) => core.listNode({ limit: 500, _continue: c })),
    records: await names((c) =>
      core.listNamespacedConfigMap({ namespace: bed.world.cloudNamespace, limit: 500, _continue: c }),
    ),
  });
  const before = await world();
  await inParallel(pods, o.parallel, async (i) => {
    if (o.admission === 'direct') await admissionRoundTrip(webhookUrl, cls, ns, i);
    await core.createNamespacedPod({ namespace: ns, body: podFor(o, `${run}-${i}`, cls, run) });
  });
  const deadline = Date.now() + o.timeoutS * 1000;
  for (;;) {
    const list = await core.listNamespacedPod({ namespace: ns, labelSelector: `${RUN_LABEL}=${run}` });
    if (list.items.filter((p) => p.status?.phase === 'Running').length >= pods) break;
    if (Date.now() > deadline) throw new Error(`priming burst ${run}: not all ${pods} pods Running in ${o.timeoutS} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const after = await world();
  const added = (k: keyof typeof before) => [...after[k]].filter((n) => !before[k].has(n));
  await removeRun(bed, run, added('instances'), added('nodes'), added('records'));
  await new Promise((r) => setTimeout(r, 10_000));
}

/** One burst of `size` pods of class `cls` against a fresh controller of `tree`. */
export async function runBurst(
  bed: Bed,
  tree: Tree,
  cls: string,
  size: number,
  scenario: string,
  o: BurstOptions,
): Promise<BurstResult> {
  const core = bed.kc.makeApiClient(CoreV1Api);
  const run = `r${Date.now().toString(36)}`;
  const ns = bed.world.namespace;
  const recordsBefore = await names((c) =>
    core.listNamespacedConfigMap({ namespace: bed.world.cloudNamespace, limit: 500, _continue: c }),
  );
  const t = new Timeline();
  const watching = await watchRun(bed.kubeconfig, ns, cls, run, t);
  let unregister: (() => Promise<void>) | undefined;
  const controllerNs = `${bed.world.cluster}-system`;
  const controller = await startController(tree, {
    kubeconfig: bed.kubeconfig,
    cluster: bed.world.cluster,
    namespace: controllerNs,
    cloudNamespace: bed.world.cloudNamespace,
    identity: `burst-${size}`,
    webhook: o.admission !== 'none',
    ...(o.admission === 'apiserver'
      ? {
          beforeStart: async (url: string) => {
            unregister = await registerWebhooks(bed.kc, tree, webhookConfigName(bed.world.cluster), url, controllerNs);
          },
        }
      : {}),
    logDir: bed.logs,
    inspect: true,
    extraArgs: tree.label === 'this tree' ? o.extraArgs : [],
    nodeArgs: tree.label === 'this tree' && o.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfileDir}`] : [],
    // A tree from before --no-simulated-kubelets runs them in its controller whatever is asked.
    kubelets: existsSync(join(tree.root, 'providers', 'simulated', 'kubelets.ts')) ? o.kubelets : 'controller',
  }).catch(async (e: unknown) => {
    // A controller that never became ready leaves no webhooks behind refusing the testbed's opted-in pods.
    await unregister?.();
    await watching.stop();
    throw e;
  });
  const podNames = Array.from({ length: size }, (_, i) => `${run}-${i}`);
  let result: BurstResult;
  try {
    if (unregister) await caBundlePatched(bed.kc, webhookConfigName(bed.world.cluster));
    // Let the first passes after sync finish, so the burst is measured, not the start.
    await new Promise((r) => setTimeout(r, 3_000));
    if (o.primePods) await prime(bed, cls, o.primePods, controller.webhookUrl, o);
    const idleMs = o.idleMs ?? 10_000;
    const idleFrom = cpuSeconds(controller.pid);
    await new Promise((r) => setTimeout(r, idleMs));
    const idleCpuMsPerS = ((cpuSeconds(controller.pid) - idleFrom) * 1000) / (idleMs / 1000);
    const serverBefore = await apiserverCounters(bed.kc);
    const rssBefore = rssBytes(controller.pid);
    const ours = tree.label === 'this tree';
    const stopSampling = ours && o.allocProfileDir ? await controller.sampleAllocations() : undefined;
    const stopProfiling = ours && o.cpuProfileDir ? await controller.sampleCpu() : undefined;
    const cpuBefore = cpuSeconds(controller.pid);
    const threadsBefore = cpuByThread(controller.pid);
    const socketsBefore = socketInodes(controller.pid);
    const socketsOpened = new Set<string>();
    const named = new Map([[controller.pid, 'ipp controller']]);
    if (controller.kubeletsPid) named.set(controller.kubeletsPid, 'simulated kubelets');
    const machineBefore = cpuByCommand(process.pid, named);
    const workBefore = await controller.metrics();
    let admissionErrors = 0;
    const t0 = Date.now();
    await inParallel(size, o.parallel, async (i) => {
      const name = podNames[i]!;
      if (o.admission === 'direct')
        await admissionRoundTrip(controller.webhookUrl, cls, ns, i).catch(() => {
          admissionErrors++;
        });
      await core.createNamespacedPod({ namespace: ns, body: podFor(o, name, cls, run) });
      t.created.set(name, Date.now());
    });
    const deadline = t0 + o.timeoutS * 1000;
    let socketsPeak = 0;
    const socketsSeen = () => {
      const now = socketInodes(controller.pid);
      socketsPeak = Math.max(socketsPeak, now.size);
      for (const s of now) if (!socketsBefore.has(s)) socketsOpened.add(s);
    };
    while (t.running.size < size && Date.now() < deadline) {
      socketsSeen();
      await new Promise((r) => setTimeout(r, 200));
    }
    socketsSeen();
    const cpuAfter = cpuSeconds(controller.pid);
    const save = async (dir: string, stop: () => Promise<unknown>, ext: string) => {
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `burst-${scenario.replace(/\W+/g, '-')}-${size}-${Date.now()}.${ext}`);
      writeFileSync(file, JSON.stringify(await stop()));
      process.stderr.write(`[bench] ${ext} of the burst: ${file}\n`);
    };
    if (stopProfiling) await save(o.cpuProfileDir!, stopProfiling, 'cpuprofile');
    if (stopSampling) await save(o.allocProfileDir!, stopSampling, 'heapprofile');
    const threads = minus(cpuByThread(controller.pid), threadsBefore);
    const machine = cpuPerPod(machineBefore, cpuByCommand(process.pid, named), t.running.size, named);
    const rssAfter = rssBytes(controller.pid);
    const work = controllerWork(workBefore, await controller.metrics(), t.running.size);
    const serverAfter = await apiserverCounters(bed.kc);
    const apiAfter = minus(serverAfter.requests, serverBefore.requests);
    const closed = minus(serverAfter.closedWatchers, serverBefore.closedWatchers);
    const webhooks = minus(serverAfter.webhooks, serverBefore.webhooks);
    // A run that timed out is timed to the deadline: its pods/s is what it reached, not a rate of the few.
    const end = t.running.size === size ? Math.max(...t.running.values()) : Date.now();
    const seconds = (end - t0) / 1000;
    const instanceAt = (p: string) => {
      const i = t.claim.get(p);
      return i ? t.instanceSeen.get(i) : undefined;
    };
    const readyAt = (p: string) => t.readyAt(p);
    const toInstance = t.spans(podNames, (p) => t.created.get(p), instanceAt);
    const readyToPinned = t.spans(podNames, readyAt, (p) => t.pinned.get(p));
    const placeableAt = (p: string) => {
      const ready = readyAt(p);
      const claim = t.claim.get(p);
      const launched = claim ? t.instanceLaunched.get(claim) : undefined;
      return ready === undefined || launched === undefined ? undefined : Math.max(ready, launched);
    };
    const placeableToPinned = t.spans(podNames, placeableAt, (p) => t.pinned.get(p));
    const toRunning = t.spans(
      podNames,
      (p) => t.created.get(p),
      (p) => t.running.get(p),
    );
    result = {
      tree: tree.label,
      scenario,
      pods: size,
      running: t.running.size,
      seconds: round(seconds, 2),
      podsPerS: round(t.running.size / seconds, 2),
      toInstanceP50Ms: Math.round(quantile(toInstance, 0.5)),
      toInstanceP99Ms: Math.round(quantile(toInstance, 0.99)),
      readyToPinnedP50Ms: Math.round(quantile(readyToPinned, 0.5)),
      readyToPinnedP99Ms: Math.round(quantile(readyToPinned, 0.99)),
      placeableToPinnedP50Ms: Math.round(quantile(placeableToPinned, 0.5)),
      placeableToPinnedP99Ms: Math.round(quantile(placeableToPinned, 0.99)),
      toRunningP50Ms: Math.round(quantile(toRunning, 0.5)),
      toRunningP99Ms: Math.round(quantile(toRunning, 0.99)),
      // Per pod that reached Running: a run cut short by the deadline is not spread over pods never placed.
      cpuMsPerPod: round(((cpuAfter - cpuBefore) * 1000) / Math.max(1, t.running.size)),
      idleCpuMsPerS: round(idleCpuMsPerS),
      cpuMsPerPodNetOfIdle: round(
        ((cpuAfter - cpuBefore) * 1000 - idleCpuMsPerS * seconds) / Math.max(1, t.running.size),
      ),
      socketsBefore: socketsBefore.size,
      socketsOpened: socketsOpened.size,
      socketsPeak,
      rssBeforeMiB: round(rssBefore / MiB),
      rssAfterMiB: round(rssAfter / MiB),
      admissionErrors,
      benchPodWatchReopened: await watching.podWatchReopened(),
      watchersClosedByServer: Object.fromEntries([...closed].filter(([, n]) => n > 0)),
      controllerWork: work,
      controllerCpuMsPerPodByThread: Object.fromEntries(
        [...threads]
          .filter(([, s]) => s > 0)
          .map(([name, s]) => [name, round((s * 1000) / Math.max(1, t.running.size), 2)]),
      ),
      ...(o.admission === 'apiserver' ? { webhookCallsPerPod: perPod(webhooks, size) } : {}),
      ...serverFigures(apiAfter, size, machine),
    };
    // Read again once idle: what the burst left behind, against what it only passed through.
    await new Promise((r) => setTimeout(r, o.settleMs ?? 30_000));
    result.rssSettledMiB = round(rssBytes(controller.pid) / MiB);
    result.heapLiveSettledMiB = round((await controller.heapAfterGc()) / MiB);
    result.rssAfterGcMiB = round(rssBytes(controller.pid) / MiB);
  } finally {
    await watching.stop();
    // The webhooks first: with the controller gone they would refuse every opted-in pod.
    await unregister?.();
    await controller.stop();
  }
  const placedAt = placedLoggedAt(controller.logFile);
  const readyToPlaced = t.spans(
    podNames,
    (p) => t.readyAt(p),
    (p) => placedAt.get(p),
  );
  result.readyToPinAnsweredP50Ms = Math.round(quantile(readyToPlaced, 0.5));
  result.readyToPinAnsweredP99Ms = Math.round(quantile(readyToPlaced, 0.99));
  const logged = controllerRequestCounts(controller.logFile);
  if (logged?.simulatedCloudRequests)
    result.cloudRequests = perPod(new Map(Object.entries(logged.simulatedCloudRequests)), size);
  if (logged?.requests) {
    const own = new Map(Object.entries(logged.requests));
    result.controllerRequests = perPod(own, size);
    result.controllerRequestsPerPod = round(sum(own.values()) / size, 2);
    result.controllerWritesPerPod = round(sum([...own].filter(([k]) => isWrite(k)).map(([, n]) => n)) / size, 2);
  }
  // Reported before the cleanup, so a cleanup that fails does not lose the measurement.
  process.stderr.write(`[bench] ${JSON.stringify(result)}\n`);
  const newInstances = [...t.instanceSeen.keys()].filter(
    (i) => !watching.existingInstances.has(i) && t.instanceClass.get(i) === cls,
  );
  const newNodes = [...t.nodesSeen].filter((n) => !watching.existingNodes.has(n));
  const recordsAfter = await names((c) =>
    core.listNamespacedConfigMap({ namespace: bed.world.cloudNamespace, limit: 500, _continue: c }),
  );
  await removeRun(
    bed,
    run,
    newInstances,
    newNodes,
    [...recordsAfter].filter((r) => !recordsBefore.has(r)),
  );
  return result;
}

/**
 * The testbed's own floor, no ipp at all: for each of `size` pods, a kwok Node is created (as a cloud's
 * kubelet would register it) and a pod pinned to it by name, both at once. What the API server,
 * etcd, kube-scheduler, kube-controller-manager and kwok spend on a pod that gets a new node of its
 * own, and how fast they do it on this machine: the ceiling for any provisioner here.
 *
 * `least`: the least any provisioner that records its intent could write, still without ipp: the pod
 * arrives gated (as admission leaves it, but with no webhook call), then per pod one intent record
 * (an Instance), one cloud record (the simulated cloud's ConfigMap), the Node, and one write that
 * pins the pod by name and lifts its gate. No claim, no status, no Event: the ceiling of the flow
 * itself on this machine, below which ipp's own choices cannot be told apart from the testbed.
 */
const FLOOR_TAINT = 'bench.ipp.dev/floor';

export async function runFloor(bed: Bed, size: number, o: BurstOptions, least = false): Promise<BurstResult> {
  const core = bed.kc.makeApiClient(CoreV1Api);
  const custom = bed.kc.makeApiClient(CustomObjectsApi);
  const run = `f${Date.now().toString(36)}`;
  const ns = bed.world.namespace;
  const t = new Timeline();
  const pods = await follow<V1Pod>(
    bed.kc,
    `/api/v1/namespaces/${ns}/pods`,
    `${RUN_LABEL}=${run}`,
    (c) => core.listNamespacedPod({ namespace: ns, labelSelector: `${RUN_LABEL}=${run}`, limit: 500, _continue: c }),
    (_type, p, at) => t.seen(podSeen(p, at)),
  );
  const apiBefore = await apiserverRequestCounts(bed.kc);
  const machineBefore = cpuByCommand();
  const names = Array.from({ length: size }, (_, i) => `${run}-${i}`);
  const t0 = Date.now();
  try {
    await inParallel(size, o.parallel, async (i) => {
      const name = names[i]!;
      const pin = {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [name] }] }],
          },
        },
      };
      const body = pendingPod(name, 'none', run);
      delete body.metadata!.labels![CLASS_LABEL];
      body.spec!.tolerations = [{ key: FLOOR_TAINT, operator: 'Equal', value: run, effect: 'NoSchedule' }];
      if (least) {
        await core.createNamespacedPod({ namespace: ns, body });
        t.created.set(name, Date.now());
        await custom.createClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: 'instances',
          body: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'Instance',
            metadata: { name, labels: { [RUN_LABEL]: run } },
            // A class that does not exist: should a controller run meanwhile (the e2e smoke run), it launches nothing.
            spec: { class: `${run}-none` },
          },
        });
        await core.createNamespacedConfigMap({
          namespace: bed.world.cloudNamespace,
          body: {
            metadata: { name, labels: { [RUN_LABEL]: run } },
            data: { instance: JSON.stringify({ id: name, zone: 'sim-zone-a' }) },
          },
        });
      }
      await core.createNode({
        body: {
          metadata: {
            name,
            labels: { [RUN_LABEL]: run, type: 'kwok', 'kubernetes.io/hostname': name },
            annotations: { 'kwok.x-k8s.io/node': 'fake' },
          },
          // Tainted, like an ipp node: nothing but its own pod lands there.
          spec: { providerID: `floor:///${name}`, taints: [{ key: FLOOR_TAINT, value: run, effect: 'NoSchedule' }] },
        },
      });
      if (least) {
        // One merge patch, as ipp's pin is: the gate lifted and the node named (a gated pod may gain node affinity).
        await core.patchNamespacedPod(
          { namespace: ns, name, body: { spec: { schedulingGates: null, affinity: pin } } },
          mergePatch,
        );
        return;
      }
      body.spec!.schedulingGates = [];
      body.spec!.affinity = pin;
      await core.createNamespacedPod({ namespace: ns, body });
      t.created.set(name, Date.now());
    });
    const deadline = t0 + o.timeoutS * 1000;
    while (t.running.size < size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  } finally {
    pods.stop();
  }
  const machine = cpuPerPod(machineBefore, cpuByCommand(), t.running.size);
  const apiAfter = minus(await apiserverRequestCounts(bed.kc), apiBefore);
  const end = t.running.size === size ? Math.max(...t.running.values()) : Date.now();
  const seconds = (end - t0) / 1000;
  const toRunning = t.spans(
    names,
    (p) => t.created.get(p),
    (p) => t.running.get(p),
  );
  const result: BurstResult = {
    tree: 'no ipp',
    scenario: least
      ? 'least writes, no ipp: a gated pod, an Instance, a cloud record, a kwok node and one pin, each'
      : 'testbed floor: a kwok node and a pod pinned to it, each, no ipp',
    pods: size,
    running: t.running.size,
    seconds: round(seconds, 2),
    podsPerS: round(t.running.size / seconds, 2),
    toInstanceP50Ms: NaN,
    toInstanceP99Ms: NaN,
    readyToPinnedP50Ms: NaN,
    readyToPinnedP99Ms: NaN,
    toRunningP50Ms: Math.round(quantile(toRunning, 0.5)),
    toRunningP99Ms: Math.round(quantile(toRunning, 0.99)),
    cpuMsPerPod: NaN,
    rssBeforeMiB: NaN,
    rssAfterMiB: NaN,
    admissionErrors: 0,
    ...serverFigures(apiAfter, size, machine),
  };
  process.stderr.write(`[bench] ${JSON.stringify(result)}\n`);
  await core.deleteCollectionNamespacedPod({
    namespace: ns,
    labelSelector: `${RUN_LABEL}=${run}`,
    gracePeriodSeconds: 0,
  });
  await inParallel(size, 16, (i) => core.deleteNode({ name: names[i]! }).then(() => {}));
  if (least) {
    await inParallel(size, 16, (i) =>
      custom
        .deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instances', name: names[i]! })
        .catch((e: { code?: number }) => {
          if (e.code !== 404) throw e;
        }),
    );
    await core.deleteCollectionNamespacedConfigMap({
      namespace: bed.world.cloudNamespace,
      labelSelector: `${RUN_LABEL}=${run}`,
    });
  }
  return result;
}
