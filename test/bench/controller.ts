// Runs the real controller (node src/main.ts) of a source tree, this one or an older commit's
// extracted next to it, as a separate process, and reads what a benchmark reports about it: its
// /metrics (event-loop lag, CPU, RSS as prom-client's default metrics give them) and /proc.
// It runs what the image runs: the tree built as its Dockerfile builds it (`npm run build`, a
// bundle; a tree from before the bundle, compiled with tsconfig.build.json) and started with the
// Node flags and script of its Dockerfile's ENTRYPOINT (IPP_BENCH_ENTRY=source runs src/main.ts
// instead, with Node's type stripping, which alone costs ~25 MiB of RSS the image never pays).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { request, Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { freePort, startChild, tail, type Child } from '../testbed/process.ts';

export interface Tree {
  label: string;
  root: string;
}

const here = join(import.meta.dirname, '..', '..');

export const currentTree = (): Tree => ({ label: 'this tree', root: here });

/**
 * The code before this change, for side-by-side figures: IPP_BENCH_BASELINE (a commit, or "none"),
 * by default where this branch left main (once a change is merged, name the commit before it, e.g.
 * IPP_BENCH_BASELINE=439e4af for the scale work; HEAD, beside uncommitted changes). Extracted with git
 * archive (the repository is untouched) and run with this tree's node_modules.
 */
export function baselineTree(): Tree | undefined {
  const wanted = process.env.IPP_BENCH_BASELINE;
  if (wanted === 'none') return undefined;
  const git = (...args: string[]) => execFileSync('git', args, { cwd: here, encoding: 'utf8' }).trim();
  let commit: string;
  try {
    commit = git('rev-parse', '--short', wanted ?? git('merge-base', 'HEAD', 'main'));
  } catch (e) {
    process.stderr.write(`[bench] no baseline (${(e as Error).message.split('\n')[0]}); set IPP_BENCH_BASELINE\n`);
    return undefined;
  }
  // HEAD itself is a baseline only beside uncommitted changes to it.
  if (commit === git('rev-parse', '--short', 'HEAD') && !git('status', '--porcelain', '--untracked-files=no'))
    return undefined;
  const root = join(tmpdir(), `ipp-baseline-${commit}`);
  if (!existsSync(join(root, 'src', 'main.ts'))) {
    mkdirSync(root, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${commit} | tar -x -C ${root}`], { cwd: here });
    symlinkSync(join(here, 'node_modules'), join(root, 'node_modules'));
  }
  return { label: `baseline ${commit}`, root };
}

/** The MutatingWebhookConfiguration whose caBundle the bench's controller of `cluster` keeps. */
export const webhookConfigName = (cluster: string) => `ipp-bench-${cluster}`;

/** How a tree's controller is started: the script and the Node flags before it. */
export interface Entry {
  script: string;
  nodeFlags: string[];
  /** The script as the image names it, and how it was built (undefined: the source, type-stripped). */
  shown?: string;
}

/** The Node flags between the node binary and the script in a Dockerfile's exec-form ENTRYPOINT. */
export function entrypointFlags(dockerfile: string): string[] {
  return entrypoint(dockerfile)
    .slice(1)
    .filter((a) => a.startsWith('--'));
}

/** The exec-form ENTRYPOINT of a Dockerfile, or [] without one. */
function entrypoint(dockerfile: string): string[] {
  const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  return m ? (JSON.parse(m[1]!) as string[]) : [];
}

const entries = new Map<string, Entry>();

/** Builds the tree as its Dockerfile does (once per bench run) and reads its ENTRYPOINT. */
export function entryOf(tree: Tree): Entry {
  if (process.env.IPP_BENCH_ENTRY === 'source') return { script: join(tree.root, 'src', 'main.ts'), nodeFlags: [] };
  const known = entries.get(tree.root);
  if (known) return known;
  const out = mkdtempSync(join(tmpdir(), 'ipp-bench-dist-'));
  process.stderr.write(`[bench] building ${tree.label} into ${out}\n`);
  const dockerfilePath = join(tree.root, 'Dockerfile');
  const dockerfile = existsSync(dockerfilePath) ? readFileSync(dockerfilePath, 'utf8') : '';
  if (/^RUN npm run build\b/m.test(dockerfile)) {
    execFileSync('npm', ['run', '--silent', 'build'], {
      cwd: tree.root,
      env: { ...process.env, IPP_BUILD_OUT: out },
      stdio: 'inherit',
    });
  } else {
    execFileSync(join(here, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json', '--outDir', out], {
      cwd: tree.root,
      stdio: 'inherit',
    });
  }
  // As in the image: package.json (ESM) beside the output, node_modules next to it.
  copyFileSync(join(tree.root, 'package.json'), join(out, 'package.json'));
  symlinkSync(join(here, 'node_modules'), join(out, 'node_modules'));
  const script = entrypoint(dockerfile).at(-1) ?? 'dist/src/main.js';
  const entry = {
    script: join(out, relative('dist', script)),
    nodeFlags: entrypointFlags(dockerfile),
    shown: `${script} as built by ${/^RUN npm run build\b/m.test(dockerfile) ? 'npm run build' : 'tsc'}`,
  };
  entries.set(tree.root, entry);
  return entry;
}

/** How the bench starts a tree's controller, for the printed figures. */
export const describeEntry = (tree: Tree): string => {
  const e = entryOf(tree);
  return `${tree.label} runs ${e.shown ?? 'src/main.ts (type stripping)'}${e.nodeFlags.length ? ` with ${e.nodeFlags.join(' ')}` : ' with no Node flags'}`;
};

export interface ControllerOptions {
  kubeconfig: string;
  cluster: string;
  /** The controller's namespace (lease, webhook Secret). */
  namespace: string;
  cloudNamespace: string;
  identity: string;
  leaderElectionId?: string;
  webhook: boolean;
  logDir: string;
  readyTimeoutMs?: number;
  /** Open the V8 inspector on loopback, so heapAfterGc() can force a GC and read the live heap. */
  inspect?: boolean;
  /** More flags for the controller. */
  extraArgs?: string[];
  /** Flags for node itself, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /**
   * Where the simulated machines' kubelets run: in the controller (the demo's way; what a tree that
   * does not know --no-simulated-kubelets does), or apart, in a process of their own
   * (test/bench/kubelets.ts), as a real cluster's kubelets are never the controller's CPU.
   */
  kubelets?: 'controller' | 'apart';
  /** Runs once the webhook's URL is known, before the process starts (e.g. to register its webhooks). */
  beforeStart?: (webhookUrl: string) => Promise<void>;
}

export interface Controller {
  identity: string;
  pid: number;
  metricsUrl: string;
  webhookUrl: string;
  logFile: string;
  /** Milliseconds from start to /readyz 200. */
  readyAfterMs: number;
  /** The simulated kubelets' own process, when they run apart. */
  kubeletsPid?: number;
  metrics(): Promise<Map<string, number>>;
  /** Resident set now, and its peak since start, in bytes (/proc). */
  memory(): { rss: number; peak: number };
  /** Live heap after a full GC, in bytes (needs `inspect`): what the caches really retain. */
  heapAfterGc(): Promise<number>;
  /** Samples what the process allocates from now on; the function returned stops and gives the profile. */
  sampleAllocations(): Promise<() => Promise<unknown>>;
  /** Profiles the process's main thread from now on; the function returned stops and gives the profile. */
  sampleCpu(): Promise<() => Promise<unknown>>;
  /** Has the process exited (it does when it loses its lease, as a Deployment's pod would, to be restarted)? */
  exited(): boolean;
  stop(): Promise<void>;
}

export async function startController(tree: Tree, o: ControllerOptions): Promise<Controller> {
  mkdirSync(o.logDir, { recursive: true });
  // Three ports asked for one after another can come back equal (each is released at once).
  const taken = new Set<number>();
  const port = async () => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) return (taken.add(p), p);
    }
  };
  const metricsPort = await port();
  const webhookPort = o.webhook ? await port() : 0;
  const inspectPort = o.inspect ? await port() : 0;
  const logFile = join(o.logDir, `ipp-${tree.label.replace(/\W+/g, '-')}-${o.identity}-${Date.now()}.log`);
  const entry = entryOf(tree);
  const args = [
    ...entry.nodeFlags,
    ...(o.inspect ? [`--inspect=127.0.0.1:${inspectPort}`] : []),
    ...(o.nodeArgs ?? []),
    entry.script,
    `--cluster-name=${o.cluster}`,
    `--kubeconfig=${o.kubeconfig}`,
    '--providers=simulated',
    `--namespace=${o.namespace}`,
    `--simulated-namespace=${o.cloudNamespace}`,
    `--metrics-port=${metricsPort}`,
    '--metrics-host=127.0.0.1',
    `--identity=${o.identity}`,
    '--log-level=info',
    ...(o.leaderElectionId ? [`--leader-election-id=${o.leaderElectionId}`] : ['--no-leader-elect']),
    ...(o.webhook
      ? [
          `--webhook-port=${webhookPort}`,
          '--webhook-host=127.0.0.1',
          `--webhook-url=https://127.0.0.1:${webhookPort}`,
          `--webhook-config-name=${webhookConfigName(o.cluster)}`,
          `--webhook-secret=ipp-bench-${o.cluster}-tls`,
        ]
      : ['--no-webhook']),
    ...(o.kubelets === 'apart' ? ['--no-simulated-kubelets'] : []),
    ...(o.extraArgs ?? []),
  ];
  const webhookUrl = o.webhook ? `https://127.0.0.1:${webhookPort}` : '';
  await o.beforeStart?.(webhookUrl);
  const started = Date.now();
  const child: Child = startChild(`ipp ${o.identity}`, process.execPath, args, logFile, process.env);
  const kubelets =
    o.kubelets === 'apart'
      ? startChild(
          `simulated kubelets ${o.identity}`,
          process.execPath,
          [join(import.meta.dirname, 'kubelets.ts'), o.kubeconfig, o.cluster, o.cloudNamespace],
          logFile.replace(/\.log$/, '-kubelets.log'),
          process.env,
        )
      : undefined;
  const pid = child.process.pid!;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const deadline = started + (o.readyTimeoutMs ?? 600_000);
  for (;;) {
    if (child.process.exitCode !== null || kubelets?.process.exitCode != null) {
      await Promise.all([child.stop(), kubelets?.stop()]);
      const which =
        child.process.exitCode !== null ? `controller ${o.identity}` : `simulated kubelets of ${o.identity}`;
      throw new Error(
        `${which} exited:\n${tail(kubelets && child.process.exitCode === null ? kubelets.logFile : logFile, 30)}`,
      );
    }
    const ok = await fetch(`${metricsUrl}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await Promise.all([child.stop(), kubelets?.stop()]);
      throw new Error(`controller ${o.identity} not ready after ${Date.now() - started} ms:\n${tail(logFile, 30)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    identity: o.identity,
    pid,
    metricsUrl,
    webhookUrl,
    logFile,
    readyAfterMs: Date.now() - started,
    ...(kubelets ? { kubeletsPid: kubelets.process.pid! } : {}),
    async metrics() {
      const text = await (await fetch(`${metricsUrl}/metrics`)).text();
      const out = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const sp = line.lastIndexOf(' ');
        out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
      }
      return out;
    },
    memory() {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
      return { rss: kb('VmRSS'), peak: kb('VmHWM') };
    },
    heapAfterGc: () => heapAfterGc(inspectPort),
    sampleAllocations: () => sampleAllocations(inspectPort),
    sampleCpu: () => sampleCpu(inspectPort),
    exited: () => child.process.exitCode !== null || child.process.signalCode !== null,
    stop: async () => {
      await Promise.all([child.stop(), kubelets?.stop()]);
    },
  };
}

/** A Chrome DevTools protocol session with the controller's inspector; `call` resolves with a method's result. */
async function inspector(port: number) {
  if (!port) throw new Error('start the controller with inspect: true to read its heap');
  const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const ws = new WebSocket(target!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let id = 0;
  const call = <R>(method: string, params: Record<string, unknown> = {}) =>
    new Promise<R>((resolve, reject) => {
      const mine = ++id;
      ws.addEventListener('message', function answer(ev: MessageEvent) {
        const msg = JSON.parse(String(ev.data)) as { id?: number; result: R; error?: { message: string } };
        if (msg.id !== mine) return;
        ws.removeEventListener('message', answer);
        if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
        else resolve(msg.result);
      });
      ws.send(JSON.stringify({ id: mine, method, params }));
    });
  return { call, close: () => ws.close() };
}

/** Over the Chrome DevTools protocol: HeapProfiler.collectGarbage, then Runtime.getHeapUsage. */
async function heapAfterGc(port: number): Promise<number> {
  const session = await inspector(port);
  try {
    await session.call('HeapProfiler.collectGarbage');
    return (await session.call<{ usedSize?: number }>('Runtime.getHeapUsage')).usedSize ?? NaN;
  } finally {
    session.close();
  }
}

/**
 * Sends `start` (methods with their parameters) to the inspector; the returned stop() sends `stop` and
 * gives the profile it answers with.
 */
async function profileFrom(
  port: number,
  start: [string, Record<string, unknown>?][],
  stop: string,
): Promise<() => Promise<unknown>> {
  const session = await inspector(port);
  for (const [method, params] of start) await session.call(method, params);
  return async () => {
    try {
      return (await session.call<{ profile: unknown }>(stop)).profile;
    } finally {
      session.close();
    }
  };
}

/** V8's CPU profiler, 1 ms samples: a .cpuprofile, for profile.ts. */
const sampleCpu = (port: number) =>
  profileFrom(
    port,
    [['Profiler.enable'], ['Profiler.setSamplingInterval', { interval: 1_000 }], ['Profiler.start']],
    'Profiler.stop',
  );

/**
 * V8's sampling heap profiler keeping the objects garbage collected since (every allocation, not only
 * what survives): a .heapprofile, for profile.ts. What a burst allocates is what its collector pays for.
 */
const sampleAllocations = (port: number) =>
  profileFrom(
    port,
    [
      [
        'HeapProfiler.startSampling',
        { samplingInterval: 32_768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true },
      ],
    ],
    'HeapProfiler.stopSampling',
  );

const insecure = new Agent({ keepAlive: true, rejectUnauthorized: false });

/** One AdmissionReview for an opted-in pod, as the API server sends it; resolves with the latency in ms. */
export function admissionRoundTrip(webhookUrl: string, cls: string, namespace: string, i: number): Promise<number> {
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `bench-${i}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace,
      userInfo: { username: 'bench' },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `probe-${i}`, namespace, labels: { 'ipp-class': cls } },
        spec: { containers: [{ name: 'c', image: 'postfix' }] },
      },
    },
  });
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      `${webhookUrl}/mutate-pods`,
      { method: 'POST', agent: insecure, headers: { 'content-type': 'application/json' }, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const review = JSON.parse(Buffer.concat(chunks).toString()) as { response?: { allowed?: boolean } };
          if (res.statusCode !== 200 || !review.response?.allowed)
            reject(
              new Error(`admission answered ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 200)}`),
            );
          else resolve(performance.now() - t0);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('admission timed out after 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

export const logDir = () => mkdtempSync(join(tmpdir(), 'ipp-bench-logs-'));
