// The seeded schedule of faults of a chaos run: when each fault fires and its parameters. A pure
// function of (seed, duration, mean gap), so `--seed` replays the same faults in the same order.
// Every kind appears once early (shuffled), so even a short run exercises all of them; the rest
// are drawn by weight, with exponential gaps (a Poisson process) so faults sometimes pile up.
import { ZONES } from '../../providers/simulated/catalog.ts';
import { Random } from './random.ts';

export const FAULT_KINDS = [
  'controller-kill',
  'apiserver-restart',
  'node-delete',
  'cloud-capacity',
  'cloud-throttle',
  'cloud-5xx',
  'cloud-slow',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type Fault = { at: number; ensure: boolean } & (
  | { kind: 'controller-kill'; downMs: number }
  | { kind: 'apiserver-restart'; signal: 'SIGTERM' | 'SIGKILL' }
  | { kind: 'node-delete'; nodes: number }
  | { kind: 'cloud-capacity'; windowMs: number; zones: string[] }
  | { kind: 'cloud-throttle'; windowMs: number; probability: number }
  | { kind: 'cloud-5xx'; windowMs: number; probability: number; afterEffect: boolean }
  | { kind: 'cloud-slow'; windowMs: number; probability: number; delayMs: number }
);

/** Relative frequency of each kind after the first round. */
const WEIGHTS: Record<FaultKind, number> = {
  'controller-kill': 2,
  'apiserver-restart': 1,
  'node-delete': 2,
  'cloud-capacity': 1,
  'cloud-throttle': 1,
  'cloud-5xx': 1,
  'cloud-slow': 1,
};

function weighted(r: Random): FaultKind {
  const total = FAULT_KINDS.reduce((s, k) => s + WEIGHTS[k], 0);
  let x = r.next() * total;
  for (const k of FAULT_KINDS) {
    x -= WEIGHTS[k];
    if (x < 0) return k;
  }
  return FAULT_KINDS[FAULT_KINDS.length - 1]!;
}

function fault(r: Random, kind: FaultKind, at: number, ensure: boolean): Fault {
  const windowMs = Math.round(r.between(2_000, 8_000));
  switch (kind) {
    case 'controller-kill':
      return { at, ensure, kind, downMs: Math.round(r.between(200, 5_000)) };
    case 'apiserver-restart':
      return { at, ensure, kind, signal: r.chance(0.5) ? 'SIGKILL' : 'SIGTERM' };
    case 'node-delete':
      return { at, ensure, kind, nodes: r.int(1, 3) };
    case 'cloud-capacity':
      // The first zone is where every launch tries first; a second zone sometimes goes too.
      return { at, ensure, kind, windowMs, zones: r.chance(0.5) ? [ZONES[0]!, r.pick(ZONES.slice(1))] : [ZONES[0]!] };
    case 'cloud-throttle':
      return { at, ensure, kind, windowMs, probability: r.between(0.3, 1) };
    case 'cloud-5xx':
      return { at, ensure, kind, windowMs, probability: r.between(0.3, 1), afterEffect: r.chance(0.5) };
    case 'cloud-slow':
      return { at, ensure, kind, windowMs, probability: r.between(0.3, 1), delayMs: Math.round(r.between(500, 4_000)) };
  }
}

/** Faults at offsets (ms) in [0, durationMs), in time order. */
export function faultSchedule(seed: number, durationMs: number, meanGapMs: number): Fault[] {
  const r = Random.fork(seed, 'faults');
  const out: Fault[] = [];
  let at = 0;
  const gap = () => Math.round(-Math.log(1 - r.next()) * meanGapMs);
  for (const kind of r.shuffle(FAULT_KINDS)) {
    at += gap();
    out.push(fault(r, kind, Math.min(at, durationMs - 1), true));
  }
  for (;;) {
    at += gap();
    if (at >= durationMs) break;
    out.push(fault(r, weighted(r), at, false));
  }
  return out.sort((a, b) => a.at - b.at);
}
