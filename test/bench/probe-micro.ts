// What the event-loop probes cost an idle controller: ipp's own timer (ipp_event_loop_delay_seconds,
// re-armed every EVENT_LOOP_PROBE_MS) and prom-client's native monitor (nodejs_eventloop_lag_*, at
// EVENT_LOOP_MONITOR_MS), each pair in an otherwise idle process for `seconds`, side by side.
//
//   node test/bench/probe-micro.ts [seconds]
import { spawnSync } from 'node:child_process';
import { EVENT_LOOP_MONITOR_MS, EVENT_LOOP_PROBE_MS } from '../../src/metrics/metrics.ts';

const seconds = Number(process.argv[2] ?? 10);

/** CPU (ms per second, user + system) of an idle process running only the two probes. */
function idleCost(timerMs: number, monitorMs: number): number {
  const script = `
    import { monitorEventLoopDelay } from 'node:perf_hooks';
    const tick = () => setTimeout(tick, ${timerMs});
    tick();
    monitorEventLoopDelay({ resolution: ${monitorMs} }).enable();
    const c0 = process.cpuUsage();
    setTimeout(() => {
      const c = process.cpuUsage(c0);
      console.log((c.user + c.system) / 1000 / ${seconds});
      process.exit(0);
    }, ${seconds * 1000});`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`probe process failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

const before = { timer: 10, monitor: 10 };
const now = { timer: EVENT_LOOP_PROBE_MS, monitor: EVENT_LOOP_MONITOR_MS };
// Alternated, so neither always meets the machine as the other left it.
const runs = [before, now, before, now].map((c) => ({ c, ms: idleCost(c.timer, c.monitor) }));
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const of = (c: typeof before) => median(runs.filter((r) => r.c === c).map((r) => r.ms));
const [b, n] = [of(before), of(now)];
console.log(`idle CPU of the event-loop probes, ${seconds} s each, two runs each:`);
console.log(`  timer every ${before.timer} ms, monitor every ${before.monitor} ms: ${b.toFixed(2)} ms/s`);
console.log(`  timer every ${now.timer} ms, monitor every ${now.monitor} ms: ${n.toFixed(2)} ms/s`);
console.log(`  ratio: ${(n / b).toFixed(2)}×`);
