// The short seeded chaos run (the long one is `npm run chaos`, see docs/operations.md): on a control
// plane of its own (its kube-apiserver is restarted), the real controller provisions ~30 pods while
// it is SIGKILLed, kube-apiserver restarts, ipp Nodes are deleted and the simulated cloud answers
// with no capacity, throttling, 5xx and slow calls. Nothing may leak, be duplicated, be misplaced
// or be killed without having been asked to go, and every kind of fault must really have fired.
import { describe, expect, it } from 'vitest';
import { formatReport, runChaos } from '../chaos/chaos.ts';
import { FAULT_KINDS } from '../chaos/schedule.ts';

const SEED = 1;

describe('chaos (short, seeded)', () => {
  it(`seed ${SEED}: 30 provisions under every kind of fault: 0 leaked, 0 duplicates, 0 misplaced, 0 killed`, async () => {
    const report = await runChaos({
      seed: SEED,
      provisions: 30,
      durationMs: 45_000,
      faultGapMs: 4_000,
      maxLive: 20,
      replicas: 2,
      settleMs: 90_000,
      keep: false,
      log: (l) => process.stderr.write(`[chaos] ${l}\n`),
    });
    const printed = formatReport(report);
    console.log(printed);
    expect(report.counts, printed).toEqual({
      leaked: 0,
      duplicates: 0,
      misplaced: 0,
      killed: 0,
      unplaced: 0,
      alarms: 0,
    });
    for (const kind of FAULT_KINDS) expect(report.faults[kind].fired, `${kind}\n${printed}`).toBeGreaterThan(0);
    // Windows alone prove nothing: the provider faulted real calls, and Nodes really went.
    for (const kind of ['node-delete', 'cloud-capacity', 'cloud-throttle', 'cloud-5xx', 'cloud-slow'] as const)
      expect(report.faults[kind].effects, `${kind}\n${printed}`).toBeGreaterThan(0);
    // Every pod not asked to go is placed (unplaced above). How many of the 30 were placed before the
    // driver deleted them on purpose depends on the machine's load (24 on a busy CI run), so this only
    // proves the run did real work: at least half of the pods asked for got onto a node.
    expect(report.provisions.placed, printed).toBeGreaterThanOrEqual(report.provisions.planned / 2);
  }, 400_000);
});
