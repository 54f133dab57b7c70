// Benchmark (not a test): what kube-scheduler pays to place a pod the original project's way and
// ipp's way, on the same scheduler and the same cluster. N kwok nodes: a pool labelled and tainted
// as the original's README asks (ipp=true), holding `existing` running pods that carry the original's
// required pod anti-affinity (each its own class), and one ipp node per pod to pin. Then, with the
// scheduler stopped (SIGSTOP) while they are created so creation speed is not measured, `pods` more
// with the original's manifests (each its own class), then `pods` with ipp's pin (required node
// affinity on metadata.name plus the class tolerations, as src/kube/pods.ts pinOps and
// src/api/classes.ts write them). Reported: pods/s from resuming the scheduler to the last binding
// seen, and the scheduler's CPU per pod from /proc, for each, and their ratio.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig, type V1Affinity, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { classNoExecuteToleration, classToleration } from '../../src/api/classes.ts';
import { CLASS_LABEL, NODE_CLASS_LABEL, NODE_INSTANCE_LABEL, TAINT_KEY } from '../../src/api/names.ts';
import { pinOps } from '../../src/kube/pods.ts';
import { mergePatch } from '../../src/kube/patch.ts';
import { ApiClientConfig } from '../../src/kube/client.ts';
import type { ComponentClients } from '../testbed/controlplane.ts';
import { ensureAssets } from '../testbed/assets.ts';
import { cpuSeconds, follow, round } from './observe.ts';
import { describeClients, withTestbed, write } from './scale.ts';
import { inParallel } from './world.ts';

/** On every node and pod of a placement run: the node's value is the run's prefix. */
export const PLACEMENT_LABEL = 'bench.ipp.dev/placement';

export interface PlacementOptions {
  /** Names everything this run creates (nodes, namespaces, classes), so runs can share a cluster. */
  prefix: string;
  nodes: number;
  /** Running pods with the original's anti-affinity, one per pool node, before the measurement. */
  existing: number;
  /** Pods placed each way. */
  pods: number;
  timeoutS: number;
}

export interface Placement {
  manifest: string;
  pods: number;
  bound: number;
  /** Distinct nodes the pods were bound to: each pod must get a node of its own. */
  nodes: number;
  seconds: number;
  podsPerS: number;
  schedulerCpuMsPerPod: number;
}

export interface PlacementResult {
  schedulerVersion: string;
  clients: ComponentClients;
  nodes: number;
  existing: number;
  /** Scheduler CPU while nothing is pending (kwok heartbeats), ms per second: the floor under both. */
  idleCpuMsPerS: number;
  original: Placement;
  pin: Placement;
}

/** The original project's webhook output for a pod of `cls` (its README, pkg/mutator/mutator.go). */
export const originalPod = (name: string, cls: string, nodeName?: string): V1Pod => ({
  metadata: { name, labels: { [CLASS_LABEL]: cls, [PLACEMENT_LABEL]: 'pod' } },
  spec: {
    ...(nodeName ? { nodeName } : {}),
    containers: [{ name: 'main', image: 'nginx:alpine' }],
    tolerations: [{ key: 'ipp', operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'ipp', operator: 'In', values: ['true'] }] }],
        },
      },
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          {
            labelSelector: { matchExpressions: [{ key: CLASS_LABEL, operator: 'NotIn', values: [cls] }] },
            topologyKey: 'kubernetes.io/hostname',
          },
        ],
      },
    },
  },
});

/** An ipp pod after its pin: the webhook's class tolerations, the gate lifted, the node required by name. */
export function pinnedPod(name: string, cls: string, node: string): V1Pod {
  const pod: V1Pod = {
    metadata: { name, labels: { [CLASS_LABEL]: cls, [PLACEMENT_LABEL]: 'pod' } },
    spec: {
      containers: [{ name: 'main', image: 'postfix' }],
      tolerations: [classToleration(cls), classNoExecuteToleration(cls)],
    },
  };
  // The pin of a pod without affinity is one op adding spec.affinity.
  const [add] = pinOps(pod, node) as { value: V1Affinity }[];
  pod.spec!.affinity = add!.value;
  return pod;
}

const poolNode = (p: string, i: number) => `${p}-pool-${i}`;
const ippNode = (p: string, i: number) => `${p}-ipp-${i}`;

function node(name: string, prefix: string, ipp: { cls: string } | undefined): V1Node {
  const labels: Record<string, string> = ipp
    ? { [NODE_CLASS_LABEL]: ipp.cls, [NODE_INSTANCE_LABEL]: name }
    : { ipp: 'true' };
  const taints = ipp
    ? ['NoSchedule', 'NoExecute'].map((effect) => ({ key: TAINT_KEY, value: ipp.cls, effect }))
    : [{ key: 'ipp', value: 'true', effect: 'NoSchedule' }];
  return {
    metadata: {
      name,
      labels: { ...labels, 'kubernetes.io/hostname': name, type: 'kwok', [PLACEMENT_LABEL]: prefix },
      annotations: { 'kwok.x-k8s.io/node': 'fake' },
    },
    spec: { taints },
  };
}

const ignoreExisting = (e: unknown) => {
  if ((e as { code?: number }).code !== 409) throw e;
};

/**
 * The testbed's kwok cannot keep thousands of node leases fresh on a loaded machine, and the node
 * lifecycle controller then taints nodes not-ready/unreachable. Both kinds of pods tolerate those
 * taints alike, so what is measured is the placement predicates, not kwok's heartbeats.
 */
export const LIFECYCLE_TOLERATIONS = ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'].map((key) => ({
  key,
  operator: 'Exists',
}));

const tolerant = (p: V1Pod): V1Pod => ({
  ...p,
  spec: { ...p.spec!, tolerations: [...(p.spec!.tolerations ?? []), ...LIFECYCLE_TOLERATIONS] },
});

/** Nodes kwok has taken over (it reports their conditions), so the scheduler sees them with capacity. */
async function waitNodesUp(core: CoreV1Api, prefix: string, count: number, timeoutS: number) {
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    let up = 0;
    let cont: string | undefined;
    do {
      const page = await core.listNode({ labelSelector: `${PLACEMENT_LABEL}=${prefix}`, limit: 1000, _continue: cont });
      up += page.items.filter((n) => (n.status?.conditions ?? []).some((c) => c.type === 'Ready')).length;
      cont = page.metadata?._continue || undefined;
    } while (cont);
    if (up >= count) return;
    if (Date.now() > deadline)
      throw new Error(`only ${up} of ${count} placement nodes taken over by kwok after ${timeoutS} s`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

async function podsRunning(core: CoreV1Api, namespace: string): Promise<number> {
  let n = 0;
  let cont: string | undefined;
  do {
    const page = await core.listNamespacedPod({ namespace, limit: 1000, _continue: cont });
    n += page.items.filter((p) => p.status?.phase === 'Running').length;
    cont = page.metadata?._continue || undefined;
  } while (cont);
  return n;
}

/** Creates `pods` with the scheduler stopped, resumes it, and times it until every pod is bound. */
async function place(
  kc: KubeConfig,
  schedulerPid: number,
  namespace: string,
  manifest: string,
  pods: V1Pod[],
  timeoutS: number,
): Promise<Placement> {
  const core = kc.makeApiClient(CoreV1Api);
  const bound = new Map<string, { at: number; node: string }>();
  const watch = await follow<V1Pod>(
    kc,
    `/api/v1/namespaces/${namespace}/pods`,
    '',
    (c) => core.listNamespacedPod({ namespace, limit: 500, _continue: c }),
    (_type, p, at) => {
      const name = p.metadata!.name!;
      if (p.spec?.nodeName && !bound.has(name)) bound.set(name, { at, node: p.spec.nodeName });
    },
  );
  try {
    process.kill(schedulerPid, 'SIGSTOP');
    let cpu0: number;
    let t0: number;
    try {
      await inParallel(pods.length, 32, async (i) => {
        await core.createNamespacedPod({ namespace, body: pods[i]! });
      });
    } finally {
      cpu0 = cpuSeconds(schedulerPid);
      t0 = Date.now();
      process.kill(schedulerPid, 'SIGCONT');
    }
    const deadline = t0 + timeoutS * 1000;
    while (bound.size < pods.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const cpu1 = cpuSeconds(schedulerPid);
    const end = bound.size ? Math.max(...[...bound.values()].map((b) => b.at)) : Date.now();
    const seconds = (end - t0) / 1000;
    return {
      manifest,
      pods: pods.length,
      bound: bound.size,
      nodes: new Set([...bound.values()].map((b) => b.node)).size,
      seconds: round(seconds, 2),
      podsPerS: round(bound.size / seconds, 1),
      schedulerCpuMsPerPod: round(((cpu1 - cpu0) * 1000) / pods.length, 2),
    };
  } finally {
    watch.stop();
  }
}

/** Builds the cluster of `o` (nodes, existing pods) and measures both ways of placing `o.pods` pods. */
export async function runPlacement(
  kc: KubeConfig,
  scheduler: { pid: number; version: string; clients: ComponentClients },
  o: PlacementOptions,
): Promise<PlacementResult> {
  const core = kc.makeApiClient(CoreV1Api);
  const pool = o.nodes - o.pods;
  if (pool < o.existing + o.pods)
    throw new Error(
      `${o.nodes} nodes cannot hold ${o.existing} existing pods and ${o.pods} placed each way; add nodes`,
    );
  const [orig, ipp] = [`${o.prefix}-orig`, `${o.prefix}-ipp`];
  for (const ns of [orig, ipp]) await core.createNamespace({ body: { metadata: { name: ns } } }).catch(ignoreExisting);
  const t0 = Date.now();
  await inParallel(o.nodes, 32, async (i) => {
    const name = i < pool ? poolNode(o.prefix, i) : ippNode(o.prefix, i - pool);
    await core
      .createNode({ body: node(name, o.prefix, i < pool ? undefined : { cls: `${o.prefix}-k${i - pool}` }) })
      .catch(ignoreExisting);
    const resources = { cpu: '4', memory: '16Gi', pods: '110' };
    await core.patchNodeStatus({ name, body: { status: { capacity: resources, allocatable: resources } } }, mergePatch);
  });
  await waitNodesUp(core, o.prefix, o.nodes, Math.max(300, o.timeoutS));
  await inParallel(o.existing, 32, async (i) => {
    await core
      .createNamespacedPod({
        namespace: orig,
        body: tolerant(originalPod(`old-${i}`, `${o.prefix}-c${i}`, poolNode(o.prefix, i))),
      })
      .catch(ignoreExisting);
  });
  for (let running = 0; running < o.existing; running = await podsRunning(core, orig)) {
    if (Date.now() - t0 > Math.max(600, o.timeoutS) * 1000)
      throw new Error(`only ${running} of ${o.existing} existing pods Running`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
  process.stderr.write(`[bench] placement cluster built in ${round((Date.now() - t0) / 1000)} s\n`);

  // The floor: what the scheduler burns with nothing to place (node and pod updates from kwok).
  const idle0 = cpuSeconds(scheduler.pid);
  await new Promise((r) => setTimeout(r, 5_000));
  const idleCpuMsPerS = round(((cpuSeconds(scheduler.pid) - idle0) * 1000) / 5, 2);

  const original = await place(
    kc,
    scheduler.pid,
    orig,
    "original's anti-affinity",
    Array.from({ length: o.pods }, (_, i) => tolerant(originalPod(`new-${i}`, `${o.prefix}-n${i}`))),
    o.timeoutS,
  );
  const pin = await place(
    kc,
    scheduler.pid,
    ipp,
    "ipp's pin by node name",
    Array.from({ length: o.pods }, (_, i) =>
      tolerant(pinnedPod(`pin-${i}`, `${o.prefix}-k${i}`, ippNode(o.prefix, i))),
    ),
    o.timeoutS,
  );
  return {
    schedulerVersion: scheduler.version,
    clients: scheduler.clients,
    nodes: o.nodes,
    existing: o.existing,
    idleCpuMsPerS,
    original,
    pin,
  };
}

export function printPlacement(r: PlacementResult): string[] {
  const rows: [keyof Placement, string][] = [
    ['bound', 'pods bound'],
    ['nodes', 'distinct nodes'],
    ['seconds', 'scheduler resumed → last bound (s)'],
    ['podsPerS', 'pods/s'],
    ['schedulerCpuMsPerPod', 'scheduler CPU per pod (ms)'],
  ];
  const lines = [
    `placement on ${r.schedulerVersion}, ${describeClients(r.clients)}`,
    `${r.nodes} kwok nodes, ${r.existing} running pods with the original's anti-affinity (each its own class); ${r.original.pods} placed each way; scheduler idle CPU ${r.idleCpuMsPerS} ms/s`,
    ['figure', r.original.manifest, r.pin.manifest, 'original / pin'].join('\t'),
  ];
  for (const [k, label] of rows) {
    const a = r.original[k] as number;
    const b = r.pin[k] as number;
    lines.push([label, a, b, b ? `${round(a / b, 2)}×` : '-'].join('\t'));
  }
  return lines;
}

/** The kube-scheduler process started with this testbed's scheduler kubeconfig (for the e2e testbed, run by vitest). */
export function schedulerPidOf(testbedDir: string): number {
  const flag = `--kubeconfig=${join(testbedDir, 'scheduler.kubeconfig')}`;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const argv = (() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        return [];
      }
    })();
    if (argv[0]?.endsWith('kube-scheduler') && argv.includes(flag)) return Number(pid);
  }
  throw new Error(`no kube-scheduler running with ${flag}`);
}

export const schedulerVersion = (assets: string) =>
  execFileSync(join(assets, 'bin', 'kube-scheduler'), ['--version'], { encoding: 'utf8' }).trim();

// ---------------------------------------------------------------- npm run bench -- placement [--flags]

/** Flags (or IPP_BENCH_PLACEMENT_*): --nodes=5000 --existing=2000 --pods=500 --timeout=600 (s). */
export async function benchPlacement(flags: Record<string, string>): Promise<void> {
  const get = (k: string, d: string) => Number(flags[k] ?? process.env[`IPP_BENCH_PLACEMENT_${k.toUpperCase()}`] ?? d);
  const o: PlacementOptions = {
    prefix: 'place',
    nodes: get('nodes', '5000'),
    existing: get('existing', '2000'),
    pods: get('pods', '500'),
    timeoutS: get('timeout', '600'),
  };
  await withTestbed(async (kubeconfig, clients, plane) => {
    const kc = new ApiClientConfig({ qps: 0, burst: 1 });
    kc.loadFromFile(kubeconfig);
    const pid = plane.components.find((c) => c.name === 'kube-scheduler')!.process.pid!;
    const r = await runPlacement(kc, { pid, version: schedulerVersion(ensureAssets()), clients }, o);
    console.log(printPlacement(r).join('\n'));
    console.log(`written to ${write('placement', { options: o, ...r })}`);
  });
}
