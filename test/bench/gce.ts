// Benchmark (not a test): provision 100 VMs of one class (a node pool of two zonal groups) against
// the fake Compute Engine with the real client, once with grouped launches (one createInstances per
// group for the Instances that arrive while the previous call is in flight) and once with one
// createInstances per pod. Reports API calls per instance, by method, and the time until every
// create() returned.
import { pino } from 'pino';
import type { InstanceClass } from '../../src/api/types.ts';
import { GceProvider } from '../../providers/gce/provider.ts';
import { startGceFake } from '../testbed/gce/index.ts';

const N = Number(process.env.IPP_BENCH_INSTANCES ?? 100);

interface Result {
  mode: string;
  ms: number;
  calls: Record<string, number>;
  vms: number;
}

export async function benchGce(): Promise<void> {
  const gce = await startGceFake();
  const saved = process.env.GCE_METADATA_HOST;
  process.env.GCE_METADATA_HOST = gce.metadata.host;
  try {
    const results: Result[] = [];
    for (const [mode, maxGroupSize] of [
      ['grouped', 100],
      ['one createInstances per pod', 1],
    ] as const) {
      const cluster = `bench-${maxGroupSize}-${Date.now()}`;
      const groups = gce.nodePool({
        cluster,
        cls: 'bench',
        machineType: 'n2-standard-8',
        zones: ['us-central1-a', 'us-central1-b'],
      });
      const p = new GceProvider({
        clusterName: cluster,
        project: gce.project,
        endpoint: gce.endpoint,
        logger: pino({ level: 'warn' }),
        maxGroupSize,
        pollMs: 200,
      });
      const cls: InstanceClass = {
        metadata: { name: 'bench' },
        spec: { instanceTypes: ['n2-standard-8'], gce: { instanceGroups: groups } },
      };
      const from = gce.server.calls.length;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: N }, (_, k) => {
          const name = `bench-${String(k).padStart(3, '0')}`;
          return p.create({
            instance: { name, uid: `${cluster}-${k}` },
            class: cls,
            tags: { 'ipp.dev/cluster': cluster, 'ipp.dev/class': 'bench', 'ipp.dev/instance': name },
            node: {
              labels: { 'ipp.dev/class': 'bench', 'ipp.dev/instance': name },
              taints: [{ key: 'ipp.dev/class', value: 'bench', effect: 'NoSchedule' }],
            },
          });
        }),
      );
      const ms = performance.now() - started;
      const calls: Record<string, number> = {};
      for (const c of gce.server.calls.slice(from)) calls[c.method] = (calls[c.method] ?? 0) + 1;
      const vms = [...gce.state.vms.values()].filter((v) => v.labels['ipp-dev-cluster'] === cluster).length;
      results.push({ mode, ms, calls, vms });
      await p.close();
    }
    report(results);
  } finally {
    if (saved === undefined) delete process.env.GCE_METADATA_HOST;
    else process.env.GCE_METADATA_HOST = saved;
    await gce.close();
  }
}

function report(results: Result[]): void {
  const total = (r: Result) => Object.values(r.calls).reduce((a, b) => a + b, 0);
  const methods = [...new Set(results.flatMap((r) => Object.keys(r.calls)))].sort();
  const rows = results.map((r) => ({
    mode: r.mode,
    'VMs (in the fake)': r.vms,
    'time to all created (s)': (r.ms / 1000).toFixed(2),
    'API calls / instance': (total(r) / N).toFixed(2),
    ...Object.fromEntries(methods.map((m) => [`${m} / instance`, ((r.calls[m] ?? 0) / N).toFixed(2)])),
  }));
  console.log(`\nGCE provider: ${N} VMs of one class (two zonal groups), fake Compute Engine, real client over REST`);
  console.table(rows);
  const [g, s] = results;
  const creates = (r: Result) => r.calls['instanceGroupManagers.createInstances'] ?? 0;
  if (g && s)
    console.log(
      `grouped vs one-per-pod: time ${(g.ms / s.ms).toFixed(3)}x, API calls ${(total(g) / total(s)).toFixed(3)}x, ` +
        `createInstances ${creates(g)} vs ${creates(s)}`,
    );
  for (const r of results)
    if (r.vms !== N) throw new Error(`${r.mode}: ${r.vms} VMs for ${N} Instances; idempotency broken`);
}
