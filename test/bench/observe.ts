// What a benchmark sees of the cluster, and when: a paged LIST for the resourceVersion, then a watch
// from it (restarted from the last version seen if the server closes it), calling back with the
// wall-clock time each event arrived. Objects that existed before the LIST are only counted, not
// timed: a benchmark times what changes while it runs. Also the CPU time and resident set of a
// process from /proc, for components the benchmark started itself.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Watch, type CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../src/api/names.ts';
import type { Instance } from '../../src/api/types.ts';

export interface Followed {
  /** Objects listed before the watch began, by name. */
  existing: Set<string>;
  /** How often the watch was opened again after the server (or the network) ended it. */
  readonly reopened: number;
  stop(): void;
}

/** One page of a LIST, as client-node's list calls return it. */
export interface Page<T> {
  metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
  items: T[];
}

/** One page of every Instance (500 at most), from `cont` on. */
export const instancePage = (custom: CustomObjectsApi, cont: string | undefined) =>
  custom.listClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: 'instances',
    limit: 500,
    _continue: cont,
  }) as Promise<Page<Instance>>;

/**
 * Lists with `list` (one page per call, given the continue token), then watches `path` (the same
 * collection's URL, e.g. /api/v1/namespaces/x/pods) with `labelSelector` from the LIST's version;
 * `onEvent(type, object, atMs)` runs for every event after the LIST.
 */
export async function follow<T extends { metadata?: { name?: string; resourceVersion?: string } }>(
  kc: KubeConfig,
  path: string,
  labelSelector: string,
  list: (cont: string | undefined) => Promise<Page<T>>,
  onEvent: (type: string, obj: T, atMs: number) => void,
): Promise<Followed> {
  const existing = new Set<string>();
  let rv = '';
  let cont: string | undefined;
  do {
    const page = await list(cont);
    for (const o of page.items) existing.add(o.metadata!.name!);
    rv = page.metadata?.resourceVersion ?? rv;
    // Typed lists name it _continue; custom objects come back as the server's JSON.
    cont = page.metadata?._continue || page.metadata?.continue || undefined;
  } while (cont);

  const watch = new Watch(kc);
  let stopped = false;
  let current: AbortController | undefined;
  let opened = 0;
  const start = async (): Promise<void> => {
    if (stopped) return;
    opened++;
    current = await watch.watch(
      path,
      { resourceVersion: rv, allowWatchBookmarks: true, ...(labelSelector ? { labelSelector } : {}) },
      (type: string, obj: T) => {
        const at = Date.now();
        if (obj.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
        if (type !== 'BOOKMARK') onEvent(type, obj, at);
      },
      () => {
        // Closed by the server (timeout) or by a network error: carry on from the last version seen.
        if (!stopped) setTimeout(() => void start().catch(() => setTimeout(() => void start(), 1_000)), 200);
      },
    );
  };
  await start();
  return {
    existing,
    get reopened() {
      return opened - 1;
    },
    stop() {
      stopped = true;
      current?.abort();
    },
  };
}

/** A /proc/<pid>[/task/<tid>]/stat line: its command (which may hold spaces), parent, and CPU seconds (user + system). */
function parseStat(stat: string): { comm: string; ppid: number; cpuS: number } {
  // Fields after the command start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
    ppid: Number(fields[1]),
    cpuS: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS, // utime, stime (fields 14 and 15)
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).cpuS;
}

/**
 * CPU seconds a process's threads have used so far, summed by thread name (/proc/<pid>/task/*): the
 * main thread runs the JavaScript a V8 profile samples; V8's platform workers (background compiles,
 * concurrent marking, parallel scavenges) and libuv's pool do not appear in that profile.
 */
export function cpuByThread(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    const { comm, cpuS } = parseStat(stat);
    // Numbered thread names (a pool's "V8 DefaultWorke", "libuv-worker") are one group each.
    const name = tid === String(pid) ? 'main' : comm.trim();
    out.set(name, (out.get(name) ?? 0) + cpuS);
  }
  return out;
}

/** USER_HZ: 100 on every Linux the testbed runs on (sysconf(_SC_CLK_TCK)). */
const CLOCK_TICKS = 100;

/**
 * CPU seconds spent so far by this process and every live process it started (the testbed's etcd,
 * kube-apiserver, kwok…, the controllers under test), summed by command name: diffed around a burst,
 * it says where the cores went, and whether a rate is the controller's or the testbed's. `labels`
 * names known processes by pid (the controller under test). Other work on
 * a shared machine is left out; a process that exits in between is missed.
 */
export function cpuByCommand(root = process.pid, labels: ReadonlyMap<number, string> = new Map()): Map<string, number> {
  const procs = new Map<number, { ppid: number; comm: string; s: number }>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const { comm, ppid, cpuS } = parseStat(stat);
    procs.set(Number(pid), { comm, ppid, s: cpuS });
  }
  const ours = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = procs.get(p)?.ppid ?? 0, hops++) if (p === root) return true;
    return false;
  };
  const out = new Map<string, number>();
  for (const [pid, { comm, s }] of procs) {
    if (!ours(pid)) continue;
    // By pid where known: Node names a process after its main thread ("MainThread"), not its script.
    const name = labels.get(pid) ?? (pid === root ? 'bench (this process)' : comm);
    out.set(name, (out.get(name) ?? 0) + s);
  }
  return out;
}

/**
 * The sockets a process holds now, by inode (/proc/<pid>/fd): sampled through a burst, the inodes not
 * held before it are the connections it opened or accepted meanwhile (a kept-alive one is held for
 * its 30 s; one opened and closed between two samples is missed).
 */
export function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith('socket:')) out.add(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Resident set now, in bytes, from /proc/<pid>/status. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
}

export const quantile = (xs: number[], q: number): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

export const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
