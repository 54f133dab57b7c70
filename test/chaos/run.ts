// `npm run chaos`: drives provisions through the real controller while faults fire at random
// (seeded) moments, then prints what it counted; exit code 1 on any violation. Replay a run with
// its seed: `npm run chaos -- --seed 1234 --provisions 300`. See docs/operations.md, "Chaos run".
import { randomInt } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseDuration } from '../../src/api/duration.ts';
import { formatReport, runChaos } from './chaos.ts';

const int = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${flag} takes a whole number, got "${v}"`);
  return n;
};
const duration = (flag: string) => (v: string) => {
  try {
    return parseDuration(v, flag);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};

const cmd = new Command('chaos')
  .description('a seeded chaos run of ipp on a local control plane')
  .addOption(
    new Option('--seed <n>', 'seed of the fault schedule and the workload (default: random)').argParser(int('--seed')),
  )
  .addOption(new Option('--provisions <n>', 'pods to ask for in all').argParser(int('--provisions')).default(300))
  .addOption(
    new Option('--duration <duration>', 'how long faults fire')
      .argParser(duration('--duration'))
      .default(600_000, '10m'),
  )
  .addOption(new Option('--provider <name>', 'cloud provider').choices(['simulated']).default('simulated'))
  .addOption(
    new Option('--fault-gap <duration>', 'mean time between faults')
      .argParser(duration('--fault-gap'))
      .default(6_000, '6s'),
  )
  .addOption(new Option('--max-live <n>', 'most pods alive at once').argParser(int('--max-live')).default(30))
  .addOption(
    new Option('--replicas <n>', 'controller replicas (leader election when more than one)')
      .argParser(int('--replicas'))
      .default(2),
  )
  .addOption(
    new Option('--settle <duration>', 'longest wait for convergence after the faults')
      .argParser(duration('--settle'))
      .default(180_000, '3m'),
  )
  .addOption(new Option('--keep', 'keep the control plane data and logs even after a clean run'))
  .parse();
const o = cmd.opts<{
  seed?: number;
  provisions: number;
  duration: number;
  faultGap: number;
  maxLive: number;
  replicas: number;
  settle: number;
  keep?: boolean;
}>();
const seed = o.seed ?? randomInt(2 ** 31);
// First, so that a run that dies half-way can still be replayed.
console.log(`chaos seed ${seed} (replay: npm run chaos -- --seed ${seed} --provisions ${o.provisions})`);
const started = Date.now();
const report = await runChaos({
  seed,
  provisions: o.provisions,
  durationMs: o.duration,
  faultGapMs: o.faultGap,
  maxLive: o.maxLive,
  replicas: Math.max(1, o.replicas),
  settleMs: o.settle,
  keep: o.keep === true,
  log: (l) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${l}`),
});
console.log(formatReport(report));
console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exitCode = Object.values(report.counts).every((n) => n === 0) ? 0 : 1;
