// Summarises a V8 CPU profile (node --cpu-prof, e.g. from `npm run bench -- burst --cpu-profile=<dir>`):
// self time by function and by file (dependencies folded into their package), so a benchmark's
// "where does the time go" is read from a measurement; and, with --stalls[=ms], each stretch the
// thread was busy without a break (no idle sample) for longer than that (default 50 ms): when in the
// run it came, how long it lasted, and what it ran, by self and by inclusive time. The stretches are
// the event-loop stalls a lag metric reports. A sampled allocation profile (.heapprofile, from `--alloc-profile`)
// is summarised by the bytes each function allocated itself, and by the code of this repository that asked
// for them (the nearest frame of src/ or providers/ above the allocation: run the sources, IPP_BENCH_ENTRY=source,
// as the bench's bundle is one file with its dependencies inside).
// Usage: node test/bench/profile.ts <file> [top] [--stalls[=ms]].
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where a frame's code lives: a package for dependencies, a path below the repository otherwise. */
export function place(url: string): string {
  if (!url) return '(native / V8)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm:${pkg[1]}`;
  if (url.startsWith('node:')) return url;
  const src = /\/(src\/.*|test\/.*)$/.exec(url);
  return src ? src[1]! : url;
}

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

/** The `top` largest entries of `m`, each with its share of `total` and its amount as `show` writes it. */
function table(title: string, m: Map<string, number>, total: number, top: number, show: (v: number) => string) {
  return [
    title,
    ...[...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => `  ${((100 * v) / total).toFixed(1).padStart(5)} %  ${show(v)}  ${k}`),
  ];
}

export function summarise(p: Profile, top = 25): string[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // Each sample is charged the time until the next one (timeDeltas[i + 1]), in microseconds.
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const where = place(f.url);
    add(fns, `${f.functionName || '(anonymous)'} ${where}${f.url ? `:${f.lineNumber + 1}` : ''}`, us);
    add(files, where, us);
  }
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  return [
    `profile: ${(total / 1e6).toFixed(1)} s sampled over ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s`,
    ...table('self time by file or package:', files, total, top, ms),
    ...table('self time by function:', fns, total, top, ms),
  ];
}

interface AllocationNode {
  callFrame: ProfileNode['callFrame'];
  selfSize: number;
  children: AllocationNode[];
}

export function summariseAllocations(p: { head: AllocationNode }, top = 25): string[] {
  const self = new Map<string, number>();
  const asked = new Map<string, number>();
  let total = 0;
  const walk = (n: AllocationNode, nearest: string | undefined) => {
    const name = frameName(n.callFrame);
    const ours = /\/(src|providers)\//.test(n.callFrame.url) && !n.callFrame.url.includes('/node_modules/');
    const owner = ours ? name : nearest;
    total += n.selfSize;
    add(self, name, n.selfSize);
    add(asked, owner ?? '(no frame of this repository)', n.selfSize);
    for (const c of n.children) walk(c, owner);
  };
  walk(p.head, undefined);
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1).padStart(7)} MiB`;
  return [
    `allocations sampled: ${(total / 2 ** 20).toFixed(1)} MiB`,
    ...table('allocated by function (self):', self, total, top, mib),
    ...(asked.size > 1
      ? table('allocated for the nearest function of this repository above it:', asked, total, top, mib)
      : []),
  ];
}

const frameName = (f: ProfileNode['callFrame']) =>
  `${f.functionName || '(anonymous)'} ${place(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;

/** A stretch of samples with no idle one between them: the thread did not return to the event loop. */
export interface Stretch {
  /** Milliseconds from the start of the profile. */
  atMs: number;
  ms: number;
  /**
   * The part of `ms` the thread ran: a gap between two samples longer than GAP_US is the OS running
   * something else (a loaded machine), and counts as one sampling interval.
   */
  ranMs: number;
  /** Self time by function, largest first. */
  self: [string, number][];
  /** Inclusive time by function of this repository (src/, providers/), largest first. */
  inclusive: [string, number][];
}

const GAP_US = 4_000;

/**
 * Busy stretches longer than `minMs`. A sample is idle when V8 saw the thread waiting in the event loop
 * ("(idle)"); everything else (JavaScript, GC, native code it called) holds the loop. A loop that
 * yields with setImmediate never idles either, so its slices show as one stretch: compare with the
 * lag the process reports before calling a stretch a stall.
 */
export function stretches(p: Profile, minMs = 50, top = 8): Stretch[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out: Stretch[] = [];
  let t = 0;
  let start = -1;
  let busy: { id: number; us: number }[] = [];
  const close = (endUs: number) => {
    if (start >= 0 && (endUs - start) / 1000 >= minMs) {
      const self = new Map<string, number>();
      const incl = new Map<string, number>();
      for (const { id, us } of busy) {
        const f = byId.get(id)!.callFrame;
        self.set(frameName(f), (self.get(frameName(f)) ?? 0) + us);
        const seen = new Set<string>();
        for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
          const cf = byId.get(n)!.callFrame;
          if (!/\/(src|providers)\//.test(cf.url) || /node_modules/.test(cf.url)) continue;
          const k = frameName(cf);
          if (seen.has(k)) continue;
          seen.add(k);
          incl.set(k, (incl.get(k) ?? 0) + us);
        }
      }
      const sorted = (m: Map<string, number>) =>
        [...m.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, top)
          .map(([k, us]) => [k, us / 1000] as [string, number]);
      const ranUs = busy.reduce((a, b) => a + Math.min(b.us, GAP_US), 0);
      out.push({
        atMs: start / 1000,
        ms: (endUs - start) / 1000,
        ranMs: ranUs / 1000,
        self: sorted(self),
        inclusive: sorted(incl),
      });
    }
    start = -1;
    busy = [];
  };
  p.samples.forEach((id, i) => {
    const us = p.timeDeltas[i + 1] ?? 0;
    if (byId.get(id)!.callFrame.functionName === '(idle)') close(t);
    else {
      if (start < 0) start = t;
      busy.push({ id, us });
    }
    t += us;
  });
  close(t);
  return out;
}

export function describeStretches(list: Stretch[], minMs: number): string[] {
  const lines = [`${list.length} busy stretches of ${minMs} ms or more:`];
  for (const s of list) {
    lines.push(`at ${(s.atMs / 1000).toFixed(1)} s: ${s.ms.toFixed(0)} ms (${s.ranMs.toFixed(0)} ms running)`);
    lines.push('  self:', ...s.self.map(([k, ms]) => `    ${ms.toFixed(0).padStart(6)} ms  ${k}`));
    lines.push(
      '  inclusive (this repository):',
      ...s.inclusive.map(([k, ms]) => `    ${ms.toFixed(0).padStart(6)} ms  ${k}`),
    );
  }
  return lines;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const stalls = args.find((a) => a.startsWith('--stalls'));
  const [file, top] = args.filter((a) => !a.startsWith('--'));
  if (!file) throw new Error('usage: node test/bench/profile.ts <file.cpuprofile> [top] [--stalls[=ms]]');
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Profile | { head: AllocationNode };
  if ('head' in parsed) {
    console.log(summariseAllocations(parsed, Number(top ?? 25)).join('\n'));
    process.exit(0);
  }
  const profile = parsed;
  if (stalls) {
    const minMs = Number(stalls.split('=')[1] ?? 50);
    console.log(describeStretches(stretches(profile, minMs, Number(top ?? 8)), minMs).join('\n'));
  } else console.log(summarise(profile, Number(top ?? 25)).join('\n'));
}
