// One chaos run: the workload is driven while the seeded faults fire; then the faults stop, the
// system gets a bounded time to converge, and what the run promises is counted (checks.ts). Used
// by `npm run chaos` (run.ts) and by the short seeded run of test/e2e/chaos.test.ts.
import { check, type Counts } from './checks.ts';
import { FaultInjector, type Tally } from './injector.ts';
import { faultSchedule, type FaultKind } from './schedule.ts';
import { Workload } from './workload.ts';
import { startWorld } from './world.ts';

export interface ChaosOptions {
  seed: number;
  provisions: number;
  durationMs: number;
  /** Mean time between two faults. */
  faultGapMs: number;
  maxLive: number;
  /** Controller replicas (leader election when more than one). */
  replicas: number;
  /** Longest wait for convergence after the faults stop. */
  settleMs: number;
  /** Keep the control plane's data and logs even when the run is clean. */
  keep: boolean;
  log: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  /** Pods asked for, pods seen, pods that got onto a node. */
  provisions: { planned: number; pods: number; placed: number };
  faults: Record<FaultKind, Tally>;
  /** Replicas that exited on their own (losing the lease during an apiserver restart) and were restarted. */
  selfExits: number;
  counts: Counts;
  details: string[];
  chaosMs: number;
  settleMs: number;
  /** Where data and logs were kept, if they were. */
  kept?: string;
}

/** Convergence never takes less than this: a pod killed late must have the time to show it. */
const MIN_SETTLE_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const world = await startWorld((l) => o.log(`[testbed] ${l}`), o.replicas);
  let ok = false;
  try {
    const workload = new Workload(world.c, { ...o, log: o.log });
    const injector = new FaultInjector(world, o.seed, o.log);
    const schedule = faultSchedule(o.seed, o.durationMs, o.faultGapMs);
    o.log(`${schedule.length} faults scheduled over ${o.durationMs} ms; ${o.provisions} provisions to drive`);
    const observer = workload.observeUntilStopped();
    const started = Date.now();
    await Promise.all([workload.drive(), injector.run(schedule, started, () => false)]);
    const chaosMs = Date.now() - started;
    o.log(`chaos over after ${chaosMs} ms; converging (at most ${o.settleMs} ms)`);

    await injector.calm();
    const settling = Date.now();
    for (const c of world.controllers) await c.ready(o.settleMs);
    let findings = await check(world.c, workload);
    for (;;) {
      await sleep(2_000);
      if (!(await workload.observe())) continue;
      findings = await check(world.c, workload).catch(() => findings);
      const waited = Date.now() - settling;
      const { leaked, duplicates, unplaced } = findings.counts;
      if (waited >= MIN_SETTLE_MS && leaked + duplicates + unplaced === 0) break;
      if (waited >= o.settleMs) break;
    }
    const settleMs = Date.now() - settling;
    await observer.stop();
    await workload.observe();
    findings = await check(world.c, workload);
    const seen = [...workload.seen.values()];
    ok = Object.values(findings.counts).every((n) => n === 0);
    return {
      seed: o.seed,
      provisions: { planned: workload.planned, pods: seen.length, placed: seen.filter((p) => p.node).length },
      faults: injector.tally,
      selfExits: world.controllers.reduce((n, c) => n + c.exits, 0),
      counts: findings.counts,
      details: findings.details,
      chaosMs,
      settleMs,
      ...(!ok || o.keep ? { kept: world.plane.dir } : {}),
    };
  } finally {
    await world.stop(!ok || o.keep);
  }
}

/** The report as printed: counts first, then the fault tally, then every violation. */
export function formatReport(r: ChaosReport): string {
  const lines = [
    `seed ${r.seed}: ${r.provisions.planned} provisions asked, ${r.provisions.pods} pods seen, ${r.provisions.placed} placed; chaos ${(r.chaosMs / 1000).toFixed(1)} s, converged in ${(r.settleMs / 1000).toFixed(1)} s`,
    '',
    'check        count',
    ...Object.entries(r.counts).map(([k, v]) => `${k.padEnd(12)} ${v}`),
    '',
    'fault               fired  effects',
    ...Object.entries(r.faults).map(([k, t]) => `${k.padEnd(19)} ${String(t.fired).padStart(5)}  ${t.effects}`),
    '(effects: nodes deleted; cloud calls faulted)',
    `controller exits not injected (restarted as a Deployment would): ${r.selfExits}`,
  ];
  if (r.details.length) lines.push('', ...r.details.slice(0, 50), ...(r.details.length > 50 ? ['…'] : []));
  if (r.kept) lines.push('', `data and logs kept in ${r.kept} (controllers: logs/ipp-*.log)`);
  return lines.join('\n');
}
