// `npm run bench -- burst`: runs burst.ts's bursts (1, 100 and 1,000 pods by default) in an empty
// cluster and on a world, for this tree and the baseline commit side by side; prints each figure,
// their ratio and the issue's targets, and writes them as JSON to bench-results/.
import { baselineTree, currentTree, type Tree } from './controller.ts';
import {
  apiserverRequestCounts,
  runBurst,
  runFloor,
  type AdmissionMode,
  type BurstOptions,
  type BurstResult,
} from './burst.ts';
import { round } from './observe.ts';
import {
  describeClients,
  describeHeartbeat,
  prepareBed,
  WORLD_HEARTBEAT,
  withTestbed,
  write,
  type Bed,
} from './scale.ts';
import { ensureIppWorld, ensureOtherPods } from './world.ts';

const FIGURES: [keyof BurstResult, string][] = [
  ['running', 'pods Running'],
  ['seconds', 'first create → last Running (s)'],
  ['podsPerS', 'pods/s to all Running'],
  ['toInstanceP50Ms', 'created → Instance created p50 (ms)'],
  ['toInstanceP99Ms', 'created → Instance created p99 (ms)'],
  ['readyToPinnedP50Ms', 'node Ready → pinned p50 (ms)'],
  ['readyToPinnedP99Ms', 'node Ready → pinned p99 (ms)'],
  ['placeableToPinnedP50Ms', 'node Ready and its Instance launched → pinned p50 (ms)'],
  ['placeableToPinnedP99Ms', 'node Ready and its Instance launched → pinned p99 (ms)'],
  ['readyToPinAnsweredP50Ms', "node Ready → the controller's pin answered (its log) p50 (ms)"],
  ['readyToPinAnsweredP99Ms', "node Ready → the controller's pin answered (its log) p99 (ms)"],
  ['toRunningP50Ms', 'created → Running p50 (ms)'],
  ['toRunningP99Ms', 'created → Running p99 (ms)'],
  ['cpuMsPerPod', 'controller CPU per pod (ms)'],
  ['idleCpuMsPerS', 'controller CPU while idle before the burst (ms/s)'],
  ['cpuMsPerPodNetOfIdle', 'controller CPU per pod, less its idle CPU over the burst (ms)'],
  ['machineCpuMsPerPod', 'CPU per pod of the bench, testbed and controller (ms; 2 cores = 2,000 ms/s)'],
  ['socketsBefore', "controller's sockets before the burst"],
  ['socketsOpened', "controller's sockets opened or accepted during the burst (sampled every 200 ms)"],
  ['socketsPeak', "controller's sockets at most, during the burst"],
  ['rssBeforeMiB', 'controller RSS before (MiB)'],
  ['rssAfterMiB', 'controller RSS after (MiB)'],
  ['rssSettledMiB', 'controller RSS 30 s later, idle (MiB)'],
  ['heapLiveSettledMiB', 'controller live heap then, after a full GC (MiB)'],
  ['rssAfterGcMiB', 'controller RSS after that GC (MiB)'],
  ['admissionErrors', 'admission errors'],
  ['benchPodWatchReopened', "the bench's pod watch opened again (closed by the API server)"],
  ['controllerRequestsPerPod', 'controller API requests per pod (start to stop; not the simulated cloud)'],
  ['controllerWritesPerPod', 'controller API writes per pod'],
  ['apiserverRequestsPerPod', 'API server requests per pod, every client (burst)'],
];

/** The requests per pod by verb and resource, for each tree: the controller's own and the API server's count. */
export function printRequests(results: BurstResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    const row = (label: string, counts: Record<string, number>) => {
      const entries = Object.entries(counts);
      if (entries.length) lines.push(`  ${label}: ${entries.map(([k, n]) => `${k} ${n}`).join(', ')}`);
    };
    lines.push(`requests per pod, ${r.scenario}, ${r.pods} pods, ${r.tree}:`);
    row('controller', r.controllerRequests);
    row('controller work (reconciles by controller, admission reviews)', r.controllerWork ?? {});
    row('webhook calls by kube-apiserver', r.webhookCallsPerPod ?? {});
    row('simulated cloud and kubelets (own client)', r.cloudRequests ?? {});
    row('API server (every client, during the burst)', r.apiserverRequests);
    row('machine CPU per pod by process (ms)', r.cpuMsPerPodByProcess ?? {});
    row('controller CPU per pod by thread (ms)', r.controllerCpuMsPerPodByThread ?? {});
    row(
      'watchers kube-apiserver closed as unresponsive, by resource (every client, the whole burst)',
      r.watchersClosedByServer ?? {},
    );
  }
  return lines;
}

/** One block per scenario and size: this tree, the baseline, and their ratio. */
export function printBursts(results: BurstResult[]): string[] {
  const lines: string[] = [];
  const keys = [...new Set(results.map((r) => `${r.scenario}\u0000${r.pods}`))];
  for (const key of keys) {
    const [scenario, pods] = key.split('\u0000');
    const rs = results.filter((r) => r.scenario === scenario && String(r.pods) === pods);
    const [now, before] = rs;
    lines.push(`burst of ${pods} pods, ${scenario}`);
    lines.push(['figure', ...rs.map((r) => r.tree), ...(before ? ['this / baseline'] : [])].join('\t'));
    for (const [k, label] of FIGURES) {
      const a = now![k] as number;
      const b = before?.[k] as number | undefined;
      lines.push(
        [
          label,
          ...rs.map((r) => (typeof r[k] === 'number' && !Number.isNaN(r[k]) ? r[k] : '-')),
          ...(before ? [b ? `${round(a / b, 2)}×` : '-'] : []),
        ].join('\t'),
      );
    }
  }
  return lines;
}

/**
 * Several rounds of the same bursts, one result per tree, scenario and size: each number the median of
 * its rounds (the per-process and per-request breakdowns too, key by key). The two halves of one round
 * differ by a fifth or more on a shared machine; alternating which tree goes first and taking medians
 * keeps that from deciding a ratio.
 */
export function medianOfRounds(results: BurstResult[]): BurstResult[] {
  const groups = new Map<string, BurstResult[]>();
  for (const r of results) {
    const key = `${r.tree}\u0000${r.scenario}\u0000${r.pods}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const median = (xs: number[]) => {
    const sorted = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    if (!sorted.length) return NaN;
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid]! : round((sorted[mid - 1]! + sorted[mid]!) / 2, 2);
  };
  const merge = (values: unknown[]): unknown => {
    const present = values.filter((v) => v !== undefined);
    if (!present.length) return undefined;
    if (present.every((v) => typeof v === 'number')) return median(present);
    if (present.every((v) => v !== null && typeof v === 'object' && !Array.isArray(v))) {
      const keys = new Set(present.flatMap((v) => Object.keys(v as object)));
      return Object.fromEntries(
        [...keys].map((k) => [k, merge(present.map((v) => (v as Record<string, unknown>)[k] ?? 0))]),
      );
    }
    return present[0];
  };
  return [...groups.values()].map((rs) => {
    if (rs.length === 1) return rs[0]!;
    const keys = new Set(rs.flatMap((r) => Object.keys(r)));
    return Object.fromEntries(
      [...keys].map((k) => [k, merge(rs.map((r) => (r as unknown as Record<string, unknown>)[k]))]),
    ) as unknown as BurstResult;
  });
}

/** One run of every tree at one scenario and size, in the order they ran; `round` counts from 1. */
export interface Round {
  round: number;
  results: BurstResult[];
}

/** One line per round: what moves most between rounds, for each tree in the order it ran. */
export function printRounds(rounds: Round[], roundCount: number): string[] {
  if (roundCount < 2) return [];
  return [
    "each round (controller CPU per pod ms; node Ready → pinned p99 ms, the bench's watch / the pin written; CPU per pod of every process ms):",
    ...rounds.map(
      ({ round: n, results: rs }) =>
        `  round ${n}: ` +
        rs
          .map(
            (r) =>
              `${r.tree} (${r.scenario}, ${r.pods}): ${r.cpuMsPerPod}; ${r.readyToPinnedP99Ms} / ${r.readyToPinAnsweredP99Ms ?? '-'}; ${r.machineCpuMsPerPod ?? '-'}`,
          )
          .join(' — '),
    ),
  ];
}

/** The issue's targets, checked on this tree's results (the first tree of each block). */
export function burstTargets(results: BurstResult[], tree: string): string[] {
  const mine = results.filter((r) => r.tree === tree);
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const lines = ['targets (this tree):'];
  for (const r of mine) {
    const at = `${r.scenario}, ${r.pods} pods`;
    if (r.pods >= 1000) lines.push(`  ${at}: ≥ 40 pods/s: ${r.podsPerS} — ${verdict(r.podsPerS >= 40)}`);
    lines.push(
      `  ${at}: node Ready → pinned p99 ≤ 1000 ms: ${r.readyToPinnedP99Ms} — ${verdict(r.readyToPinnedP99Ms <= 1000)}`,
      // The pin as written (the controller's PATCH answered), without the bench's own watch delivering it.
      ...(r.readyToPinAnsweredP99Ms === undefined
        ? []
        : [
            `  ${at}: node Ready → the pin written (the controller's log) p99 ≤ 1000 ms: ${r.readyToPinAnsweredP99Ms} — ${verdict(r.readyToPinAnsweredP99Ms <= 1000)}`,
          ]),
      `  ${at}: CPU per pod ≤ 10 ms: ${r.cpuMsPerPod}${r.cpuMsPerPodNetOfIdle === undefined ? '' : ` (${r.cpuMsPerPodNetOfIdle} less its idle CPU)`} — ${verdict(r.cpuMsPerPod <= 10)}`,
      `  ${at}: RSS after ≤ 1.5× before: ${r.rssAfterMiB} / ${r.rssBeforeMiB} = ${round(r.rssAfterMiB / r.rssBeforeMiB, 2)}× — ${verdict(r.rssAfterMiB <= 1.5 * r.rssBeforeMiB)}`,
    );
  }
  for (const scenario of new Set(mine.map((r) => r.scenario))) {
    const big = mine.find((r) => r.scenario === scenario && r.pods >= 1000);
    const hundred = mine.find((r) => r.scenario === scenario && r.pods === 100);
    if (big && hundred) {
      const ratio = round(big.cpuMsPerPod / hundred.cpuMsPerPod, 2);
      lines.push(
        `  ${scenario}: CPU per pod at ${big.pods} ≤ 1.5× at 100: ${big.cpuMsPerPod} / ${hundred.cpuMsPerPod} = ${ratio}× — ${verdict(ratio <= 1.5)}`,
      );
    }
  }
  return lines;
}

// ---------------------------------------------------------------- npm run bench -- burst [--flags]

const ADMISSION_SHOWN: Record<AdmissionMode, string> = {
  direct: "each pod's review sent to the controller's webhook by the bench first",
  apiserver: "each tree's own webhook configuration registered, every webhook call kube-apiserver's",
  none: 'no admission',
};

function admissionMode(flag: string): AdmissionMode {
  const mode = ({ true: 'direct', false: 'none' } as Record<string, AdmissionMode>)[flag] ?? flag;
  if (!(mode in ADMISSION_SHOWN)) throw new Error(`--admission=${flag}: expected direct, apiserver or none`);
  return mode as AdmissionMode;
}

/**
 * Flags (or IPP_BENCH_BURST_*): --sizes=1,100,1000 --scenarios=empty,world[,floor: no ipp, a kwok node and a pinned pod
 * each][,least: no ipp, the least a provisioner recording its intent writes per pod] --warm-up=1000 (pods of an
 * unmeasured floor burst first; 0 for none) --world-nodes=5000
 * --world-pods=30000 --timeout=900 (s per run) --parallel=32 --admission=direct|apiserver|none (true|false: direct|none)
 * --controller-args="--kube-api-qps=0" (this tree only) --cpu-profile=<dir> (this tree's controller, one
 * .cpuprofile per run; summarise with `node test/bench/profile.ts <file>`) --alloc-profile=<dir> (what this tree's
 * controller allocates over each burst, sampled; the same summary) --rounds=1 (each size run this many
 * times per tree, the baseline first in every other round; medians printed) --kubelets=apart|controller
 * (where the simulated kubelets run; a tree from before --no-simulated-kubelets runs them in its controller)
 * --prime=0 (pods each controller places, then has removed, before its measured burst).
 */
export async function benchBurst(flags: Record<string, string>): Promise<void> {
  const get = (k: string, d: string) =>
    flags[k] ?? process.env[`IPP_BENCH_BURST_${k.toUpperCase().replace(/-/g, '_')}`] ?? d;
  const sizes = get('sizes', '1,100,1000').split(',').map(Number);
  const scenarios = get('scenarios', 'empty,world').split(',');
  const worldNodes = Number(get('world-nodes', '5000'));
  const worldPods = Number(get('world-pods', '30000'));
  const o: BurstOptions = {
    timeoutS: Number(get('timeout', '900')),
    parallel: Number(get('parallel', '32')),
    admission: admissionMode(get('admission', 'direct')),
    extraArgs: get('controller-args', '').split(' ').filter(Boolean),
    cpuProfileDir: get('cpu-profile', '') || undefined,
    allocProfileDir: get('alloc-profile', '') || undefined,
    kubelets: get('kubelets', 'apart') === 'controller' ? 'controller' : 'apart',
    primePods: Number(get('prime', '0')),
  };
  if (!Number.isInteger(o.primePods) || o.primePods! < 0)
    throw new Error(`--prime must be a whole number of pods: ${get('prime', '0')}`);
  const warmUp = Number(get('warm-up', '1000'));
  if (!Number.isInteger(warmUp) || warmUp < 0) throw new Error(`--warm-up must be a whole number of pods: ${warmUp}`);
  const trees = [currentTree(), baselineTree()].filter((t): t is Tree => !!t);
  const roundCount = Number(get('rounds', '1'));
  if (!Number.isInteger(roundCount) || roundCount < 1)
    throw new Error(`--rounds must be a whole number from 1: ${get('rounds', '1')}`);
  // A world's 5,000 kwok nodes on the testbed's short leases turn Unknown (one machine cannot renew
  // them all), and so would the burst's new nodes: the world bench's heartbeats, for every scenario.
  const heartbeat = scenarios.includes('world') ? WORLD_HEARTBEAT : undefined;
  await withTestbed(async (kubeconfig, clients) => {
    /** Every run in the order it ran (the floor's too, once per size). */
    const rounds: Round[] = [];
    const burst = async (bed: Bed, scenario: string) => {
      for (const size of sizes)
        for (let round = 1; round <= roundCount; round++) {
          // Every other round the baseline goes first: neither tree always meets the machine as the other left it.
          const order = round % 2 ? trees : [...trees].reverse();
          const ran: BurstResult[] = [];
          for (const tree of order) ran.push(await runBurst(bed, tree, bed.world.cls, size, scenario, o));
          rounds.push({ round, results: ran });
        }
    };
    if (warmUp) {
      // kube-apiserver sizes a new watcher's buffer from its watch cache's size (about one second of
      // events, at least 10, at most 100), and a fresh server's cache is small: the first run after the
      // testbed starts had its pod watchers (the controller's, the bench's…) closed as unresponsive 16
      // and 23 times in its burst, later ones 0–4, and its pins seen late. A burst of the floor first, not
      // measured, gives every tree a server as a running cluster's is.
      const bed = await prepareBed(kubeconfig, 'warm', 0);
      await runFloor(bed, warmUp, o);
    }
    if (scenarios.includes('empty')) {
      const bed = await prepareBed(kubeconfig, 'burst', 0);
      await ensureIppWorld(bed.kc, bed.world); // the class alone
      await burst(bed, 'empty cluster');
    }
    if (scenarios.includes('floor')) {
      const bed = await prepareBed(kubeconfig, 'floor', 0);
      for (const size of sizes) rounds.push({ round: 1, results: [await runFloor(bed, size, o)] });
    }
    if (scenarios.includes('least')) {
      const bed = await prepareBed(kubeconfig, 'least', 0);
      for (const size of sizes) rounds.push({ round: 1, results: [await runFloor(bed, size, o, true)] });
    }
    if (scenarios.includes('world')) {
      const bed = await prepareBed(kubeconfig, 'burstw', worldNodes);
      const t0 = Date.now();
      await ensureIppWorld(bed.kc, bed.world);
      await ensureOtherPods(bed.kc, bed.world, worldPods);
      process.stderr.write(`[bench] world built in ${round((Date.now() - t0) / 1000)} s\n`);
      await settleNodeWrites(bed.kc, worldNodes);
      await burst(bed, `world (${worldNodes} busy ipp nodes of the class, ${worldPods} other pods)`);
    }
    // Each block with this tree first, as printBursts expects; rounds merged into medians.
    const first = (r: BurstResult) => (r.tree === trees[0]!.label ? 0 : 1);
    const combined = medianOfRounds(rounds.flatMap((r) => [...r.results].sort((a, b) => first(a) - first(b))));
    const settings =
      `simulated provider, boot delay 0; ${ADMISSION_SHOWN[o.admission]}; ` +
      (warmUp ? `a floor burst of ${warmUp} pods first, not measured (kube-apiserver's watch cache grown); ` : '') +
      `controller flags: ${o.extraArgs.length ? o.extraArgs.join(' ') : 'defaults'}; ` +
      (roundCount > 1
        ? `${roundCount} rounds of each burst (not of the floor), the baseline first in every other one, each figure their median; `
        : '') +
      (o.primePods
        ? `each controller first placed ${o.primePods} pods, removed before its measured burst (its code warmed up, as a running controller's is); `
        : 'each controller measured on its first burst after start; ') +
      (o.kubelets === 'apart'
        ? 'the simulated kubelets in a process of their own (in the controller for a tree from before --no-simulated-kubelets: its CPU includes them)'
        : 'the simulated kubelets in the controller');
    console.log(
      [
        describeClients(clients),
        ...(heartbeat ? [describeHeartbeat(heartbeat)] : []),
        settings,
        ...printBursts(combined),
        ...printRounds(
          rounds.filter((r) => r.results.some((x) => trees.some((t) => t.label === x.tree))),
          roundCount,
        ),
        ...printRequests(combined),
        ...burstTargets(combined, trees[0]!.label),
      ].join('\n'),
    );
    console.log(
      `written to ${write('burst', { clients, heartbeat, settings, sizes, worldNodes, worldPods, options: o, results: combined, rounds })}`,
    );
  }, heartbeat);
}

/**
 * Waits for the wave of node writes that follows building a world to pass: kwok writes the status of
 * thousands of new nodes for minutes after they exist, and a burst started meanwhile measures that
 * wave (in one run, the first tree's 100-pod burst shared its 52 s with 7,663 node status writes, 77
 * per pod: 1 s of CPU per pod over all processes, against 0.16 for the second tree). Settled once the
 * API server takes no more than one node write a second per 100 nodes (50/s at 5,000) in two 10 s
 * windows in a row; after 10 minutes the bench goes on and says so.
 */
async function settleNodeWrites(kc: Bed['kc'], nodes: number): Promise<void> {
  const limit = Math.max(30, nodes / 100);
  const windowS = 10;
  const writes = async () => {
    let n = 0;
    for (const [k, v] of await apiserverRequestCounts(kc)) if (/^(PATCH|PUT) nodes\b/.test(k)) n += v;
    return n;
  };
  const t0 = Date.now();
  let last = await writes();
  for (let quiet = 0; quiet < 2;) {
    if (Date.now() - t0 > 10 * 60_000) {
      process.stderr.write(`[bench] node writes never fell to ${limit}/s in 10 minutes; bursting anyway\n`);
      return;
    }
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const now = await writes();
    const rate = (now - last) / windowS;
    last = now;
    quiet = rate <= limit ? quiet + 1 : 0;
    process.stderr.write(`[bench] node writes ${round(rate)}/s (waiting for ≤ ${limit}/s twice)\n`);
  }
  process.stderr.write(`[bench] node writes settled after ${round((Date.now() - t0) / 1000)} s\n`);
}
