// Benchmarks of ipp at scale (not tests): "memory" (controller RSS with 0, 10,000 and 50,000 cached
// pods; bytes per pod; with IPP_BENCH_MEMORY_IPP_NODES=n, bytes per ipp node too) and "world" (N ipp nodes with Ready Instances and their pods plus M other
// pods; two replicas with leader election; event-loop lag, lease transitions, CPU per minute, RSS,
// admission latency while the leader works). Each figure is measured for this tree and, in the same
// run, for the code before the change (see baselineTree), printed side by side and written as JSON.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ApiClientConfig } from '../../src/kube/client.ts';
import { ensureAssets } from '../testbed/assets.ts';
import {
  componentClients,
  startControlPlane,
  type ComponentClients,
  type ControlPlane,
  type NodeHeartbeat,
} from '../testbed/controlplane.ts';
import { installCrds } from '../testbed/crds.ts';
import {
  admissionRoundTrip,
  baselineTree,
  currentTree,
  describeEntry,
  logDir,
  startController,
  type Controller,
  type Tree,
} from './controller.ts';
import { ensureDaemonSets, ensureIppWorld, ensureOtherPods, WORLD_DAEMONSETS, type WorldOptions } from './world.ts';

const MiB = 1024 * 1024;
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/**
 * The q-quantile of a Prometheus histogram's observations as histogram_quantile() computes it: linear
 * within the bucket the rank falls in (from 0 for the first); past the last finite bound, that bound.
 * `bounds` are the finite upper bounds in order, `cumulative` the counts of each and then of +Inf.
 */
export function histogramQuantile(q: number, bounds: readonly number[], cumulative: readonly number[]): number {
  const total = cumulative[cumulative.length - 1] ?? 0;
  if (!total) return NaN;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (cumulative[i]! < rank) continue;
    const lo = i ? bounds[i - 1]! : 0;
    const below = i ? cumulative[i - 1]! : 0;
    const inBucket = cumulative[i]! - below;
    return inBucket ? lo + ((bounds[i]! - lo) * (rank - below)) / inBucket : lo;
  }
  return bounds[bounds.length - 1] ?? NaN;
}

const DELAY = 'ipp_event_loop_delay_seconds';

/** The event-loop delay histogram in a scrape: finite bounds and cumulative counts (+Inf last); undefined when not exported (an older tree). */
export function delayBuckets(m: Map<string, number>): { bounds: number[]; cumulative: number[] } | undefined {
  const finite: [number, number][] = [];
  for (const [k, v] of m) {
    const le = /^ipp_event_loop_delay_seconds_bucket\{le="([^"]+)"\}$/.exec(k)?.[1];
    if (le !== undefined && le !== '+Inf') finite.push([Number(le), v]);
  }
  const inf = m.get(`${DELAY}_bucket{le="+Inf"}`);
  if (inf === undefined) return undefined;
  finite.sort((a, b) => a[0] - b[0]);
  return { bounds: finite.map(([b]) => b), cumulative: [...finite.map(([, c]) => c), inf] };
}

export interface Bed {
  kubeconfig: string;
  kc: KubeConfig;
  world: WorldOptions;
  logs: string;
}

/** A namespace pair and names for one bench run on an existing control plane. */
export async function prepareBed(kubeconfig: string, name: string, ippNodes: number): Promise<Bed> {
  const kc = new ApiClientConfig({ qps: 0, burst: 1 });
  kc.loadFromFile(kubeconfig);
  await installCrds(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const world: WorldOptions = {
    cluster: name,
    cls: `${name}-c`,
    namespace: `${name}-work`,
    cloudNamespace: `${name}-cloud`,
    ippNodes,
  };
  for (const ns of [world.namespace, world.cloudNamespace, `${name}-system`])
    await core.createNamespace({ body: { metadata: { name: ns } } }).catch((e: { code?: number }) => {
      if (e.code !== 409) throw e;
    });
  return { kubeconfig, kc, world, logs: logDir() };
}

// ---------------------------------------------------------------- memory per cached pod

export interface MemoryPoint {
  tree: string;
  pods: number;
  /** ipp nodes (each with a Ready Instance and a pod) cached as well; 0 for the pod-only points. */
  ippNodes: number;
  rssMiB: number;
  peakMiB: number;
  /** Live heap after a forced full GC. */
  heapMiB: number;
  /** RSS once that GC returned the LIST's garbage to the system. */
  rssAfterGcMiB: number;
  readyAfterS: number;
}

/**
 * RSS and live heap of each tree with each count of other pods cached; then, with `ippNodes`, once
 * more after building that many ipp nodes with Ready Instances and pods (on top of the last count's pods).
 */
export async function measureMemory(bed: Bed, trees: Tree[], counts: number[], ippNodes = 0): Promise<MemoryPoint[]> {
  const out: MemoryPoint[] = [];
  const steps: { pods: number; ippNodes: number }[] = counts.map((pods) => ({ pods, ippNodes: 0 }));
  if (ippNodes > 0 && counts.length) steps.push({ pods: counts[counts.length - 1]!, ippNodes });
  for (const { pods, ippNodes } of steps) {
    const t0 = Date.now();
    if (ippNodes) await ensureIppWorld(bed.kc, { ...bed.world, ippNodes });
    else await ensureOtherPods(bed.kc, bed.world, pods);
    process.stderr.write(
      `[bench] ${pods} other pods and ${ippNodes} ipp nodes in the cluster (${Date.now() - t0} ms to create)\n`,
    );
    for (const tree of trees) {
      const c = await startController(tree, {
        kubeconfig: bed.kubeconfig,
        cluster: bed.world.cluster,
        namespace: `${bed.world.cluster}-system`,
        cloudNamespace: bed.world.cloudNamespace,
        identity: 'mem',
        webhook: false,
        logDir: bed.logs,
        inspect: true,
      });
      // Let the LIST's garbage be collected, as it would be long before anyone looks.
      await new Promise((r) => setTimeout(r, 5_000));
      const m = c.memory();
      const heap = await c.heapAfterGc();
      await new Promise((r) => setTimeout(r, 1_000));
      const afterGc = c.memory();
      await c.stop();
      const point = {
        tree: tree.label,
        pods,
        ippNodes,
        rssMiB: round(m.rss / MiB),
        peakMiB: round(m.peak / MiB),
        heapMiB: round(heap / MiB),
        rssAfterGcMiB: round(afterGc.rss / MiB),
        readyAfterS: round(c.readyAfterMs / 1000),
      };
      out.push(point);
      process.stderr.write(`[bench] ${tree.label}: ${JSON.stringify(point)}\n`);
    }
  }
  return out;
}

export function printMemory(points: MemoryPoint[], trees: Tree[]): string[] {
  const lines = [
    'memory per cached pod: controller RSS 5 s after sync, live heap after a forced GC, and RSS 1 s after that GC (MiB); bytes per pod against the 0-pod run',
  ];
  const counts = [...new Set(points.filter((p) => !p.ippNodes).map((p) => p.pods))];
  lines.push(
    [
      'pods',
      ...trees.flatMap((t) => [
        `${t.label}: RSS`,
        'RSS peak',
        'RSS B/pod',
        'heap',
        'heap B/pod',
        'RSS after GC',
        'B/pod',
      ]),
    ].join('\t'),
  );
  for (const n of counts) {
    const row = [String(n)];
    for (const t of trees) {
      const p = points.find((x) => x.tree === t.label && x.pods === n);
      const zero = points.find((x) => x.tree === t.label && x.pods === 0);
      const per = (k: 'rssMiB' | 'heapMiB' | 'rssAfterGcMiB') =>
        p && zero && n > 0 ? String(Math.round(((p[k] - zero[k]) * MiB) / n)) : '-';
      row.push(
        String(p?.rssMiB ?? '-'),
        String(p?.peakMiB ?? '-'),
        per('rssMiB'),
        String(p?.heapMiB ?? '-'),
        per('heapMiB'),
        String(p?.rssAfterGcMiB ?? '-'),
        per('rssAfterGcMiB'),
      );
    }
    lines.push(row.join('\t'));
  }
  for (const t of trees) {
    const p = points.find((x) => x.tree === t.label && x.ippNodes > 0);
    const before = p && points.find((x) => x.tree === t.label && !x.ippNodes && x.pods === p.pods);
    if (!p || !before) continue;
    const per = (k: 'rssMiB' | 'heapMiB') => Math.round(((p[k] - before[k]) * MiB) / p.ippNodes);
    lines.push(
      `${t.label}: with ${p.ippNodes} ipp nodes (Node, Ready Instance, pod) on top of ${p.pods} pods: RSS ${p.rssMiB} MiB (${per('rssMiB')} B/ipp node), heap ${p.heapMiB} MiB (${per('heapMiB')} B/ipp node)`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------- world at scale, two replicas

export interface WorldResult {
  tree: string;
  ippNodes: number;
  otherPods: number;
  seconds: number;
  syncS: number;
  lagP50Ms: number;
  /**
   * The worst 2 s window's p99 (prom-client's gauges cover the time since the last scrape): nearly the
   * max. This and lagP50Ms and lagMaxMs are prom-client's less its monitor's resolution.
   */
  lagP99Ms: number;
  /** p99 of every event-loop probe tick of the leader over the run (ipp_event_loop_delay_seconds); NaN for a tree without it. */
  lagRunP99Ms: number;
  /** Share of those ticks later than 50 ms, in percent. */
  lagOver50msPct: number;
  lagMaxMs: number;
  leaseTransitions: number;
  /** Replica processes that exited (lease lost) and were started again. */
  replicaRestarts: number;
  leaderCpuSecondsPerMin: number;
  standbyCpuSecondsPerMin: number;
  rssAfterSyncMiB: number;
  rssPeakMiB: number;
  admissionP50Ms: number;
  admissionP99Ms: number;
  admissions: number;
  admissionErrors: number;
}

/**
 * The resolution of a tree's prom-client event-loop monitor (EVENT_LOOP_MONITOR_MS, read from its
 * source; prom-client's default, 10 ms, for a tree that does not set it). Node's monitor records the
 * time between its ticks, so every value it gives is at least this.
 */
export function monitorResolutionMs(tree: Tree): number {
  const file = join(tree.root, 'src', 'metrics', 'metrics.ts');
  const m = existsSync(file) ? /EVENT_LOOP_MONITOR_MS\s*=\s*(\d[\d_]*)/.exec(readFileSync(file, 'utf8')) : null;
  return m ? Number(m[1]!.replaceAll('_', '')) : 10;
}

export async function runReplicas(bed: Bed, tree: Tree, seconds: number, otherPods: number): Promise<WorldResult> {
  const resolutionMs = monitorResolutionMs(tree);
  const lease = `bench-${tree.label.replace(/\W+/g, '-')}-${Date.now()}`;
  const system = `${bed.world.cluster}-system`;
  const common = {
    kubeconfig: bed.kubeconfig,
    cluster: bed.world.cluster,
    namespace: system,
    cloudNamespace: bed.world.cloudNamespace,
    leaderElectionId: lease,
    webhook: true,
    logDir: bed.logs,
  };
  // Each replica as a Deployment keeps it: a process that exits (it does on losing its lease) is
  // started again under the same identity, and counted. Its CPU is summed over its lifetimes.
  interface Replica {
    identity: string;
    current?: Controller;
    restarting?: Promise<void>;
    cpuSpent: number;
    cpuAtStart: number;
    cpuLast: number;
  }
  const replicas: Replica[] = ['bench-a', 'bench-b'].map((identity) => ({
    identity,
    cpuSpent: 0,
    cpuAtStart: 0,
    cpuLast: 0,
  }));
  const everyProcess: Controller[] = [];
  let restarts = 0;
  // IPP_BENCH_WORLD_CPU_PROFILE=<dir>: a V8 CPU profile of every replica of every tree (the same
  // overhead for each), for `node test/bench/profile.ts <file> --stalls`.
  const profiles = process.env.IPP_BENCH_WORLD_CPU_PROFILE;
  const nodeArgs = profiles
    ? ['--cpu-prof', `--cpu-prof-dir=${join(profiles, tree.label.replace(/\W+/g, '-'))}`]
    : undefined;
  const start = async (r: Replica) => {
    const c = await startController(tree, { ...common, identity: r.identity, nodeArgs });
    process.stderr.write(`[bench] ${tree.label}: replica ${r.identity} pid ${c.pid} ready, log ${c.logFile}\n`);
    everyProcess.push(c);
    r.current = c;
  };
  const cpu = async (c: Controller) => (await c.metrics()).get('process_cpu_seconds_total') ?? NaN;
  try {
    await start(replicas[0]!);
    const rssAfterSync = replicas[0]!.current!.memory().rss;
    await start(replicas[1]!);
    const leases = bed.kc.makeApiClient(CoordinationV1Api);
    const holder = async () => {
      const l = await leases.readNamespacedLease({ name: lease, namespace: system }).catch(() => undefined);
      return { holder: l?.spec?.holderIdentity, transitions: l?.spec?.leaseTransitions ?? 0 };
    };
    let first = await holder();
    for (let i = 0; !first.holder && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 200));
      first = await holder();
    }
    let leader = replicas.find((r) => r.identity === first.holder) ?? replicas[0]!;
    // The leader's event-loop delay histogram over the run: each scrape's increase, summed while that
    // process leads (a restarted process counts from its start).
    const lastDelay = new Map<Controller, number[]>();
    let runDelay: { bounds: number[]; cumulative: number[] } | undefined;
    const addDelay = (c: Controller, m: Map<string, number>, leads: boolean) => {
      const h = delayBuckets(m);
      if (!h) return;
      const before = lastDelay.get(c) ?? h.cumulative.map(() => 0);
      lastDelay.set(c, h.cumulative);
      if (!leads) return;
      runDelay ??= { bounds: h.bounds, cumulative: h.cumulative.map(() => 0) };
      h.cumulative.forEach((n, i) => (runDelay!.cumulative[i]! += n - before[i]!));
    };
    for (const r of replicas) {
      r.cpuAtStart = r.cpuLast = await cpu(r.current!);
      // Resets prom-client's event-loop window; the histogram counts from here.
      addDelay(r.current!, await r.current!.metrics(), false);
    }

    const lag = { p50: [] as number[], p99: [] as number[], max: [] as number[] };
    const latencies: number[] = [];
    let errors = 0;
    const until = Date.now() + seconds * 1000;
    let n = 0;
    const admit = (async () => {
      while (Date.now() < until) {
        const url = leader.current && !leader.current.exited() ? leader.current.webhookUrl : undefined;
        // ~20 admissions per second, each awaited, as a busy namespace would send them.
        if (url)
          await admissionRoundTrip(url, bed.world.cls, bed.world.namespace, n++).then(
            (ms) => latencies.push(ms),
            () => errors++,
          );
        else errors++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 2_000));
      for (const r of replicas) {
        if (!r.current?.exited() || r.restarting) continue;
        restarts++;
        r.cpuSpent += r.cpuLast - r.cpuAtStart;
        r.cpuAtStart = r.cpuLast = 0;
        process.stderr.write(`[bench] replica ${r.identity} exited (${r.current.logFile}); starting it again\n`);
        r.restarting = start(r).finally(() => (r.restarting = undefined));
      }
      const h = await holder();
      leader = replicas.find((r) => r.identity === h.holder) ?? leader;
      for (const r of replicas) {
        if (!r.current || r.current.exited() || r.restarting) continue;
        const m = await r.current.metrics().catch(() => undefined);
        if (!m) continue;
        r.cpuLast = m.get('process_cpu_seconds_total') ?? r.cpuLast;
        addDelay(r.current, m, r === leader);
        if (r !== leader) continue;
        // prom-client's monitor records the interval between its ticks: its resolution plus the lag.
        const lagMs = (name: string) => Math.max(0, (m.get(name) ?? NaN) * 1000 - resolutionMs);
        lag.p50.push(lagMs('nodejs_eventloop_lag_p50_seconds'));
        lag.p99.push(lagMs('nodejs_eventloop_lag_p99_seconds'));
        lag.max.push(lagMs('nodejs_eventloop_lag_max_seconds'));
        if (lag.max.at(-1)! >= 250)
          process.stderr.write(
            `[bench] ${tree.label}: leader ${r.identity} event-loop lag max ${round(lag.max.at(-1)!)} ms in the 2 s before ${new Date().toISOString()}\n`,
          );
      }
    }
    await admit;
    const last = await holder();
    const perMin = (r: Replica) => round(((r.cpuSpent + r.cpuLast - r.cpuAtStart) / seconds) * 60, 2);
    const standby = replicas.find((r) => r !== leader)!;
    return {
      tree: tree.label,
      ippNodes: bed.world.ippNodes,
      otherPods,
      seconds,
      syncS: round(everyProcess[0]!.readyAfterMs / 1000),
      lagP50Ms: round(quantile(lag.p50, 0.5)),
      // prom-client gives each scrape window's p99 and max; the worst window is reported.
      lagP99Ms: round(Math.max(...lag.p99)),
      lagRunP99Ms: runDelay ? round(histogramQuantile(0.99, runDelay.bounds, runDelay.cumulative) * 1000) : NaN,
      lagOver50msPct: runDelay
        ? round(
            (100 * (runDelay.cumulative.at(-1)! - runDelay.cumulative[runDelay.bounds.indexOf(0.05)]!)) /
              runDelay.cumulative.at(-1)!,
            3,
          )
        : NaN,
      lagMaxMs: round(Math.max(...lag.max)),
      leaseTransitions: last.transitions - first.transitions,
      replicaRestarts: restarts,
      leaderCpuSecondsPerMin: perMin(leader),
      standbyCpuSecondsPerMin: perMin(standby),
      rssAfterSyncMiB: round(rssAfterSync / MiB),
      rssPeakMiB: round(Math.max(...everyProcess.filter((c) => !c.exited()).map((c) => c.memory().peak)) / MiB),
      admissionP50Ms: round(quantile(latencies, 0.5)),
      admissionP99Ms: round(quantile(latencies, 0.99)),
      admissions: latencies.length,
      admissionErrors: errors,
    };
  } finally {
    for (const r of replicas) await r.restarting?.catch(() => {});
    for (const c of everyProcess) await c.stop();
  }
}

const FIGURES: [keyof WorldResult, string][] = [
  ['syncS', 'first replica ready (s)'],
  ['lagP50Ms', "event-loop lag p50 (ms, prom-client's monitor less its resolution)"],
  ['lagRunP99Ms', 'event-loop lag p99 over the run (ms, ipp_event_loop_delay_seconds)'],
  ['lagOver50msPct', 'event-loop ticks later than 50 ms (%)'],
  ['lagP99Ms', 'event-loop lag p99, worst 2 s window (ms, the same)'],
  ['lagMaxMs', 'event-loop lag max (ms, the same)'],
  ['leaseTransitions', 'lease transitions'],
  ['replicaRestarts', 'replica restarts'],
  ['leaderCpuSecondsPerMin', 'leader CPU (s/min)'],
  ['standbyCpuSecondsPerMin', 'standby CPU (s/min)'],
  ['rssAfterSyncMiB', 'RSS after sync (MiB)'],
  ['rssPeakMiB', 'RSS peak (MiB)'],
  ['admissionP50Ms', 'admission p50 (ms)'],
  ['admissionP99Ms', 'admission p99 (ms)'],
  ['admissions', 'admissions sent'],
  ['admissionErrors', 'admission errors'],
];

export function printWorld(results: WorldResult[]): string[] {
  const [now, before] = results;
  const lines = [
    `world: ${now!.ippNodes} ipp nodes with Ready Instances and pods, ${now!.otherPods} other pods; two replicas for ${now!.seconds} s`,
    ['figure', ...results.map((r) => r.tree), ...(before ? ['ratio'] : [])].join('\t'),
  ];
  for (const [k, label] of FIGURES) {
    const a = now![k] as number;
    const b = before?.[k] as number | undefined;
    lines.push([label, a, ...(before ? [b, b ? `${round(a / b, 2)}×` : '-'] : [])].join('\t'));
  }
  return lines;
}

// ---------------------------------------------------------------- npm run bench -- memory | world

export function write(name: string, data: unknown): string {
  const dir = process.env.IPP_BENCH_OUT ?? join(import.meta.dirname, '..', '..', 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2));
  return file;
}

const numbers = (v: string | undefined, d: number[]) => (v ? v.split(',').map(Number) : d);

/**
 * Client QPS for the testbed's controller-manager and scheduler (the bench must not measure their
 * throttling); IPP_TESTBED_KCM_QPS/_BURST and IPP_TESTBED_SCHEDULER_QPS/_BURST override them.
 */
const RAISED: ComponentClients = { controllerManager: { qps: 200, burst: 400 }, scheduler: { qps: 200, burst: 400 } };

export async function withTestbed(
  fn: (kubeconfig: string, clients: ComponentClients, plane: ControlPlane) => Promise<void>,
  nodeHeartbeat?: NodeHeartbeat,
): Promise<void> {
  const fromEnv = componentClients();
  const clients = componentClients({
    controllerManager: fromEnv.controllerManager ?? RAISED.controllerManager,
    scheduler: fromEnv.scheduler ?? RAISED.scheduler,
  });
  const plane = await startControlPlane({
    assets: ensureAssets(),
    clients,
    nodeHeartbeat,
    log: (l) => process.stderr.write(`[testbed] ${l}\n`),
  });
  try {
    await fn(plane.kubeconfig, clients, plane);
  } finally {
    await plane.stop();
  }
}

export const describeClients = (c: ComponentClients) =>
  `testbed client QPS/burst: kube-controller-manager ${c.controllerManager?.qps ?? 20}/${c.controllerManager?.burst ?? 30}, kube-scheduler ${c.scheduler?.qps ?? 50}/${c.scheduler?.burst ?? 100}`;

export async function benchMemory(): Promise<void> {
  const counts = numbers(process.env.IPP_BENCH_MEMORY_PODS, [0, 10_000, 50_000]);
  const trees = [currentTree(), baselineTree()].filter((t): t is Tree => !!t);
  await withTestbed(async (kubeconfig, clients) => {
    const ippNodes = Number(process.env.IPP_BENCH_MEMORY_IPP_NODES ?? 0);
    const bed = await prepareBed(kubeconfig, 'mem', ippNodes);
    const points = await measureMemory(bed, trees, counts, ippNodes);
    const lines = [describeClients(clients), ...trees.map(describeEntry), ...printMemory(points, trees)];
    console.log(lines.join('\n'));
    console.log(`written to ${write('memory', { clients, counts, points })}`);
  });
}

/**
 * Node heartbeats of the world bench: kwok's leases last 10 minutes and kube-controller-manager waits
 * 15 for a renewal. With the testbed's 40 s leases, one 2-core machine renewing 5,000 of them every
 * ~10 s (500 writes/s besides everything else) falls behind, and the nodes turn Unknown: the bench
 * would measure the testbed's kwok, not a cluster whose 5,000 kubelets each renew their own lease.
 */
export const WORLD_HEARTBEAT: NodeHeartbeat = { leaseSeconds: 600, monitorGraceSeconds: 900 };

export const describeHeartbeat = (h: NodeHeartbeat) =>
  `node heartbeats: kwok lease ${h.leaseSeconds} s, kube-controller-manager --node-monitor-grace-period=${h.monitorGraceSeconds}s`;

export async function benchWorld(): Promise<void> {
  const ippNodes = Number(process.env.IPP_BENCH_WORLD_NODES ?? 5_000);
  const otherPods = Number(process.env.IPP_BENCH_WORLD_PODS ?? 30_000);
  const seconds = Number(process.env.IPP_BENCH_WORLD_SECONDS ?? 600);
  const withDaemonSets = process.env.IPP_BENCH_WORLD_DAEMONSETS !== '0';
  const trees = [currentTree(), baselineTree()].filter((t): t is Tree => !!t);
  await withTestbed(async (kubeconfig, clients) => {
    const bed = await prepareBed(kubeconfig, 'world', ippNodes);
    const t0 = Date.now();
    await ensureIppWorld(bed.kc, bed.world);
    await ensureOtherPods(bed.kc, bed.world, otherPods);
    const daemonSetPods = withDaemonSets ? await ensureDaemonSets(bed.kc) : 0;
    process.stderr.write(`[bench] world built in ${round((Date.now() - t0) / 1000)} s\n`);
    const results: WorldResult[] = [];
    for (const tree of trees) results.push(await runReplicas(bed, tree, seconds, otherPods));
    const world = `${withDaemonSets ? WORLD_DAEMONSETS.length : 0} DaemonSets (kube-system, every node) running ${daemonSetPods} pods`;
    console.log(
      [
        describeClients(clients),
        describeHeartbeat(WORLD_HEARTBEAT),
        world,
        ...trees.map(describeEntry),
        ...printWorld(results),
      ].join('\n'),
    );
    console.log(`written to ${write('world', { clients, heartbeat: WORLD_HEARTBEAT, daemonSetPods, results })}`);
  }, WORLD_HEARTBEAT);
}
