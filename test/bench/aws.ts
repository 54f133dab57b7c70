// Benchmark (not a test): provision 100 instances of one class against moto, through the fault
// proxy enforcing EC2's token buckets (RunInstances: 5 burst, 2/s), once with grouped launches
// (one RunInstances for the Instances waiting for the same token) and once with one RunInstances per
// pod. Reports API calls per instance and the time until every create() returned, as ratios.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeInstancesCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { pino } from 'pino';
import type { InstanceClass } from '../../src/api/types.ts';
import { AwsProvider } from '../../providers/aws/provider.ts';
import { ensureAssets } from '../testbed/assets.ts';
import { startEc2FaultProxy } from '../testbed/ec2-fault-proxy.ts';
import { startMoto } from '../testbed/moto.ts';

const N = Number(process.env.IPP_BENCH_INSTANCES ?? 100);
const region = 'us-east-1';
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

interface Result {
  mode: string;
  ms: number;
  calls: Record<string, number>;
  throttled: number;
  instances: number;
}

export async function benchAws(): Promise<void> {
  const assets = ensureAssets();
  const moto = await startMoto(assets, mkdtempSync(join(tmpdir(), 'ipp-bench-')));
  try {
    const direct = new EC2Client({ region, endpoint: moto.endpoint, credentials });
    const subnet = (
      await direct.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }))
    ).Subnets!.sort((a, b) => a.AvailabilityZone!.localeCompare(b.AvailabilityZone!))[0]!;
    const results: Result[] = [];
    for (const [mode, maxGroupSize] of [
      ['grouped', 20],
      ['one RunInstances per pod', 1],
    ] as const) {
      // A fresh proxy per mode: full token buckets at the start of each run.
      const proxy = await startEc2FaultProxy({ target: moto.endpoint, buckets: true });
      const cluster = `bench-${maxGroupSize}-${Date.now()}`;
      const p = new AwsProvider({
        clusterName: cluster,
        region,
        endpoint: proxy.endpoint,
        credentials,
        logger: pino({ level: 'warn' }),
        maxGroupSize,
        eks: {
          clusterName: cluster,
          apiServerEndpoint: 'https://eks.example.test',
          certificateAuthority: 'Q0E=',
          serviceCidr: '10.100.0.0/16',
        },
      });
      const cls: InstanceClass = {
        metadata: { name: 'bench' },
        spec: {
          instanceTypes: ['m5.large'],
          aws: { ami: { id: 'ami-12c6146b' }, subnets: { ids: [subnet.SubnetId!] } },
        },
      };
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
      for (const r of proxy.requests) calls[r.action] = (calls[r.action] ?? 0) + 1;
      const live = await direct.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'tag:ipp.dev/cluster', Values: [cluster] },
            { Name: 'instance-state-name', Values: ['running', 'pending'] },
          ],
        }),
      );
      const instances = (live.Reservations ?? []).flatMap((r) => r.Instances ?? []).length;
      results.push({ mode, ms, calls, throttled: proxy.count('RunInstances', 'throttled'), instances });
      await proxy.close();
    }
    report(results);
  } finally {
    await moto.stop();
  }
}

function report(results: Result[]): void {
  const total = (r: Result) => Object.values(r.calls).reduce((a, b) => a + b, 0);
  const actions = [...new Set(results.flatMap((r) => Object.keys(r.calls)))].sort();
  const rows = results.map((r) => ({
    mode: r.mode,
    'instances (live in moto)': r.instances,
    'time to all launched (s)': (r.ms / 1000).toFixed(2),
    'API calls / instance': (total(r) / N).toFixed(2),
    ...Object.fromEntries(actions.map((a) => [`${a} / instance`, ((r.calls[a] ?? 0) / N).toFixed(2)])),
    'RequestLimitExceeded seen': r.throttled,
  }));
  console.log(`\nAWS provider: ${N} instances of one class, moto behind EC2 token buckets (RunInstances 5 burst, 2/s)`);
  console.table(rows);
  const [g, s] = results;
  if (g && s) {
    console.log(
      `grouped vs one-per-pod: time ${(g.ms / s.ms).toFixed(3)}x (${(s.ms / g.ms).toFixed(1)}x faster), ` +
        `API calls ${(total(g) / total(s)).toFixed(3)}x, RunInstances ${((g.calls.RunInstances ?? 0) / (s.calls.RunInstances ?? 1)).toFixed(3)}x`,
    );
  }
  for (const r of results)
    if (r.instances !== N)
      throw new Error(`${r.mode}: ${r.instances} live instances for ${N} Instances; idempotency broken`);
}
