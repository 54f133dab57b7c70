// The metric set is a public contract (dashboards, alerts, docs/metrics.md): names, types and labels
// are checked here one by one, and the provider decorator is checked to count what it should.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InsufficientCapacityError, NotFoundError, ThrottledError } from '../../../providers/errors.ts';
import { instrumentProvider } from '../../../providers/instrumented.ts';
import type { CloudInstance, CloudProvider, LaunchRequest } from '../../../providers/types.ts';
import type { V1Pod } from '@kubernetes/client-node';
import { classOf } from '../../../src/api/pods.ts';
import type { Instance, InstanceClass } from '../../../src/api/types.ts';
import { Metrics } from '../../../src/metrics/metrics.ts';
import { observeWorld } from '../../../src/metrics/observe.ts';

/** The samples of one metric, keyed by their label values joined with '/'. */
async function samples(m: Metrics, name: string): Promise<Record<string, number>> {
  const metric = m.registry.getSingleMetric(name)!;
  const { values } = await metric.get();
  return Object.fromEntries(
    values
      .filter((v) => !(v as { metricName?: string }).metricName || (v as { metricName?: string }).metricName === name)
      .map((v) => [Object.values(v.labels).join('/'), v.value]),
  );
}

const EXPECTED: [name: string, type: string, labels: string[]][] = [
  ['ipp_instances', 'gauge', ['class', 'phase']],
  ['ipp_idle_nodes', 'gauge', ['class']],
  ['ipp_node_idle_seconds', 'gauge', ['class', 'node']],
  ['ipp_pending_pods', 'gauge', ['class']],
  ['ipp_pod_pin_duration_seconds', 'histogram', ['class', 'mode']],
  ['ipp_instance_registration_duration_seconds', 'histogram', ['class', 'provider']],
  ['ipp_provider_calls_total', 'counter', ['provider', 'operation', 'error']],
  ['ipp_provider_call_duration_seconds', 'histogram', ['provider', 'operation']],
  ['ipp_leaked_instances_collected_total', 'counter', ['provider']],
  ['ipp_node_repairs_total', 'counter', ['class', 'reason']],
  ['ipp_repair_suspended', 'gauge', ['class']],
  ['ipp_isolation_violations_total', 'counter', ['class', 'node']],
  ['ipp_isolation_violations', 'gauge', ['node']],
  ['ipp_workqueue_depth', 'gauge', ['queue']],
  ['ipp_reconcile_errors_total', 'counter', ['controller']],
  ['ipp_reconcile_total', 'counter', ['controller', 'result']],
  ['ipp_leader', 'gauge', ['identity']],
  ['ipp_informer_last_event_timestamp_seconds', 'gauge', ['resource']],
  ['ipp_informer_synced', 'gauge', ['resource']],
  ['ipp_informer_watches_total', 'counter', ['resource']],
  ['ipp_leader_transitions_total', 'counter', ['lease']],
  ['ipp_oldest_pending_pod_age_seconds', 'gauge', ['class']],
  ['ipp_class_timeout_seconds', 'gauge', ['class', 'timeout']],
  ['ipp_webhook_requests_total', 'counter', ['webhook', 'result']],
  ['ipp_webhook_request_duration_seconds', 'histogram', ['webhook']],
  ['ipp_warm_instances', 'gauge', ['class', 'state']],
  ['ipp_warm_hits_total', 'counter', ['class']],
  ['ipp_warm_misses_total', 'counter', ['class']],
  ['ipp_event_loop_delay_seconds', 'histogram', []],
];

describe('Metrics', () => {
  it('registers exactly the documented ipp_ metrics, with their types and labels', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const json = await m.registry.getMetricsAsJSON();
    const ours = json.filter((x) => x.name.startsWith('ipp_'));
    expect(ours.map((x) => x.name).sort()).toEqual(EXPECTED.map(([n]) => n).sort());
    for (const [name, type, labels] of EXPECTED) {
      const metric = m.registry.getSingleMetric(name) as unknown as { labelNames: string[]; help: string } | undefined;
      expect(metric, name).toBeDefined();
      expect(json.find((x) => x.name === name)!.type, name).toBe(type);
      expect([...metric!.labelNames].sort(), name).toEqual([...labels].sort());
      expect(metric!.help.length, name).toBeGreaterThan(10);
    }
  });

  it('documents every metric and its labels in docs/metrics.md', () => {
    const doc = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
    for (const [name, , labels] of EXPECTED) {
      expect(doc, name).toContain(labels.length ? `\`${name}{${labels.join(', ')}}\`` : `\`${name}\``);
    }
  });

  it('observes the event loop: a tick held up by a synchronous stretch lands in a bucket past it', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const stop = m.observeEventLoop(5);
    try {
      await new Promise((r) => setTimeout(r, 30));
      const until = performance.now() + 120;
      while (performance.now() < until); // holds the thread, as a long pass would
      await new Promise((r) => setTimeout(r, 30));
    } finally {
      stop();
    }
    const { values } = await m.eventLoopDelay.get();
    const bucket = (le: number) => values.find((v) => v.metricName?.endsWith('_bucket') && v.labels.le === le)!.value;
    const count = values.find((v) => v.metricName?.endsWith('_count'))!.value;
    expect(count).toBeGreaterThan(2);
    // Exactly the one tick that waited for the stretch is later than 100 ms.
    expect(count - bucket(0.1)).toBe(1);
  });

  it('collects Node process metrics unprefixed (process_*, nodejs_*) unless disabled', async () => {
    const names = (await new Metrics().registry.getMetricsAsJSON()).map((x) => x.name);
    expect(names).toContain('process_cpu_seconds_total');
    expect(names).toContain('nodejs_eventloop_lag_seconds');
    expect(names.some((n) => n.startsWith('ipp_process') || n.startsWith('ipp_nodejs'))).toBe(false);
    // Gauges named *_total break Prometheus naming (promtool flags them); their per-type gauges stay.
    expect(
      names.filter(
        (n) =>
          n.endsWith('_total') &&
          !['process_cpu_seconds_total', 'process_cpu_user_seconds_total', 'process_cpu_system_seconds_total'].includes(
            n,
          ) &&
          !n.startsWith('ipp_'),
      ),
    ).toEqual([]);
    expect(names).toContain('nodejs_active_handles');
    const bare = (await new Metrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((x) => x.name);
    expect(bare.every((n) => n.startsWith('ipp_'))).toBe(true);
  });

  it('keeps registries apart, so several Metrics in one process (tests) never clash', () => {
    expect(() => {
      new Metrics();
      new Metrics();
    }).not.toThrow();
  });

  it('pin latency buckets span 1 s to 1 h', () => {
    const m = new Metrics({ defaultMetrics: false });
    const buckets = (m.podPinDuration as unknown as { upperBounds: number[] }).upperBounds;
    expect(buckets[0]).toBe(1);
    expect(buckets.at(-1)).toBe(3600);
  });
});

describe('metrics read from the process at scrape time', () => {
  it('ipp_informer_synced follows each informer as scraped: 0 until its list completed, then 1', async () => {
    const m = new Metrics({ defaultMetrics: false });
    expect(await samples(m, 'ipp_informer_synced')).toEqual({});
    const pods = { resource: 'pods', synced: false, hasSynced: () => pods.synced };
    const nodes = { resource: 'nodes', hasSynced: () => true };
    m.observeInformers([pods, nodes]);
    expect(await m.registry.metrics()).toContain('ipp_informer_synced{resource="pods"} 0');
    expect(await samples(m, 'ipp_informer_synced')).toEqual({ pods: 0, nodes: 1 });
    pods.synced = true;
    expect(await samples(m, 'ipp_informer_synced')).toEqual({ pods: 1, nodes: 1 });
  });

  it('ipp_informer_watches_total counts the watches each informer opened, as scraped', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const pods = { resource: 'pods', opened: 1, hasSynced: () => true, watches: () => pods.opened };
    m.observeInformers([pods, { resource: 'nodes', hasSynced: () => true }]);
    expect(await samples(m, 'ipp_informer_watches_total')).toEqual({ pods: 1 });
    pods.opened = 4; // the server ended the watch three times
    expect(await samples(m, 'ipp_informer_watches_total')).toEqual({ pods: 4 });
    expect(await samples(m, 'ipp_informer_watches_total')).toEqual({ pods: 4 });
  });

  it('ipp_leader_transitions_total mirrors the Lease count and never goes back', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const seen = () => samples(m, 'ipp_leader_transitions_total');
    expect(await seen()).toEqual({});
    m.observeLeaseTransitions('ipp', 7); // a replica starting on an old Lease begins at its count
    expect(await seen()).toEqual({ ipp: 7 });
    m.observeLeaseTransitions('ipp', 7);
    m.observeLeaseTransitions('ipp', 9);
    expect(await seen()).toEqual({ ipp: 9 });
    m.observeLeaseTransitions('ipp', 0); // Lease deleted and recreated: a counter cannot go down
    m.observeLeaseTransitions('ipp', 2);
    expect(await seen()).toEqual({ ipp: 9 });
    m.observeLeaseTransitions('ipp', 10);
    expect(await seen()).toEqual({ ipp: 10 });
  });

  it('observeAdmission counts the review by webhook and result and times it', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.observeAdmission('mutate', 'allowed', 0.004);
    m.observeAdmission('mutate', 'denied', 0.002);
    m.observeAdmission('enforce', 'error', 0.3);
    expect(await samples(m, 'ipp_webhook_requests_total')).toEqual({
      'mutate/allowed': 1,
      'mutate/denied': 1,
      'enforce/error': 1,
    });
    const text = await m.registry.getSingleMetricAsString('ipp_webhook_request_duration_seconds');
    expect(text).toContain('ipp_webhook_request_duration_seconds_bucket{le="0.005",webhook="mutate"} 2');
    expect(text).toContain('ipp_webhook_request_duration_seconds_bucket{le="0.25",webhook="enforce"} 0');
    expect(text).toContain('ipp_webhook_request_duration_seconds_count{webhook="enforce"} 1');
  });
});

describe('observeWorld', () => {
  const NOW = Date.parse('2026-11-29T12:00:00Z');
  const cls = (name: string, spec: Partial<InstanceClass['spec']> = {}): InstanceClass => ({
    metadata: { name },
    spec: { instanceTypes: ['sim.small'], ...spec },
  });
  const pod = (name: string, c: string, createdSecondsAgo: number, extra: Partial<V1Pod['spec']> = {}): V1Pod => ({
    metadata: {
      name,
      namespace: 'ns',
      labels: { 'ipp-class': c },
      creationTimestamp: new Date(NOW - createdSecondsAgo * 1000),
    },
    spec: { containers: [], schedulingGates: [{ name: 'ipp.dev/provision' }], ...extra },
  });
  const world = (
    classes: InstanceClass[],
    pods: V1Pod[],
    instances: Instance[] = [],
    released = new Map<string, number>(),
  ) => ({
    classes: { list: () => classes },
    classesWithInstances: () => new Set(instances.map((i) => i.spec.class)),
    instancesOfClass: (c: string) => instances.filter((i) => i.spec.class === c),
    podsOfClass: (c: string) => pods.filter((p) => classOf(p) === c),
    waitingSince: (p: V1Pod) => released.get(p.metadata!.name!) ?? new Date(p.metadata!.creationTimestamp!).getTime(),
  });

  it('reports the oldest waiting pod of each class (0 when none waits) and each class timeout in seconds', async () => {
    const m = new Metrics({ defaultMetrics: false });
    observeWorld(
      world(
        [
          cls('metal', { launchTimeout: '5m', registrationTimeout: '30m', idleTimeout: '1h' }),
          cls('web'),
          cls('broken', { idleTimeout: 'soon' }),
        ],
        [
          pod('a', 'metal', 90),
          pod('b', 'metal', 1500),
          // Placed: no longer waiting, however old.
          pod('c', 'metal', 9000, { nodeName: 'n1', schedulingGates: [] }),
          pod('d', 'web', 9000, { nodeName: 'n2', schedulingGates: [] }),
        ],
      ),
      m,
      NOW,
    );
    expect(await samples(m, 'ipp_oldest_pending_pod_age_seconds')).toEqual({ metal: 1500, web: 0, broken: 0 });
    expect(await samples(m, 'ipp_pending_pods')).toEqual({ metal: 2, web: 0, broken: 0 });
    // Defaults apply to what the class leaves out; a class whose durations do not parse gets no threshold.
    expect(await samples(m, 'ipp_class_timeout_seconds')).toEqual({
      'metal/launch': 300,
      'metal/registration': 1800,
      'metal/idle': 3600,
      'web/launch': 600,
      'web/registration': 900,
      'web/idle': 300,
    });

    // A class that goes away takes its series with it.
    observeWorld(world([cls('web')], []), m, NOW);
    expect(await samples(m, 'ipp_oldest_pending_pod_age_seconds')).toEqual({ web: 0 });
    expect(Object.keys(await samples(m, 'ipp_class_timeout_seconds'))).toEqual([
      'web/launch',
      'web/registration',
      'web/idle',
    ]);
  });
});

describe('observeWorld and a queue', () => {
  const NOW = Date.parse('2026-11-29T12:00:00Z');
  const pod = (name: string, gates: string[]): V1Pod => ({
    metadata: { name, namespace: 'ns', labels: { 'ipp-class': 'metal' }, creationTimestamp: new Date(NOW - 3_600_000) },
    spec: { containers: [], schedulingGates: gates.map((g) => ({ name: g })) },
  });
  const world = (pods: V1Pod[], released: Map<string, number>) => ({
    classes: { list: (): InstanceClass[] => [{ metadata: { name: 'metal' }, spec: { instanceTypes: ['sim.small'] } }] },
    classesWithInstances: () => new Set<string>(),
    instancesOfClass: (): Instance[] => [],
    podsOfClass: () => pods,
    waitingSince: (p: V1Pod) => released.get(p.metadata!.name!) ?? new Date(p.metadata!.creationTimestamp!).getTime(),
  });

  it('counts neither a pod a queue still holds nor its time in the queue', async () => {
    const m = new Metrics({ defaultMetrics: false });
    // Both created an hour ago; the queue admitted "admitted" 20 s ago and still holds "queued".
    const admitted = pod('admitted', ['ipp.dev/provision']);
    const queued = pod('queued', ['kueue.x-k8s.io/admission', 'ipp.dev/provision']);
    observeWorld(world([admitted, queued], new Map([['admitted', NOW - 20_000]])), m, NOW);
    expect(await samples(m, 'ipp_pending_pods')).toEqual({ metal: 1 });
    expect(await samples(m, 'ipp_oldest_pending_pod_age_seconds')).toEqual({ metal: 20 });
  });
});

describe('instrumentProvider', () => {
  const instance: CloudInstance = {
    providerID: 'sim:///zone-a/i-1',
    instanceType: 'sim.metal',
    zone: 'zone-a',
    state: 'running',
    tags: {},
    launchedAt: new Date(0),
  };

  /** A class-based provider: the decorator must keep `this` working. */
  class Fake implements CloudProvider {
    readonly name = 'simulated';
    next: unknown;
    ran = false;
    private answer() {
      const n = this.next;
      this.next = undefined;
      if (n) throw n;
      return instance;
    }
    async create(_req: LaunchRequest) {
      return this.answer();
    }
    async delete(_id: string) {
      this.answer();
    }
    async get(_id: string) {
      return this.answer();
    }
    async list() {
      return [this.answer()];
    }
    capacity() {
      return { cpu: 1000, memory: 1 << 30, pods: 110 };
    }
    validate() {
      return ['spec.simulated.bootSeconds: must be positive'];
    }
    async run(_signal: AbortSignal) {
      this.ran = true;
    }
  }

  it('counts successes with error="" and failures by their kind, times every call, and rethrows the same error', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const fake = new Fake();
    const p = instrumentProvider(fake, m);
    expect(p.name).toBe('simulated');

    await expect(p.create({} as LaunchRequest)).resolves.toBe(instance);
    const capacity = new InsufficientCapacityError('none', [{ instanceType: 'sim.metal' }]);
    fake.next = capacity;
    await expect(p.create({} as LaunchRequest)).rejects.toBe(capacity);
    fake.next = new NotFoundError('gone');
    await expect(p.delete('sim:///zone-a/i-1')).rejects.toBeInstanceOf(NotFoundError);
    fake.next = new ThrottledError('slow down', 1000);
    await expect(p.get('x')).rejects.toBeInstanceOf(ThrottledError);
    fake.next = new Error('boom');
    await expect(p.list()).rejects.toThrow('boom');
    await expect(p.list()).resolves.toEqual([instance]);

    const json = await m.registry.getMetricsAsJSON();
    const calls = json.find((x) => x.name === 'ipp_provider_calls_total')!.values;
    expect(
      Object.fromEntries(calls.map((v) => [`${v.labels.provider}/${v.labels.operation}/${v.labels.error}`, v.value])),
    ).toEqual({
      'simulated/create/': 1,
      'simulated/create/insufficient_capacity': 1,
      'simulated/delete/not_found': 1,
      'simulated/get/throttled': 1,
      'simulated/list/other': 1,
      'simulated/list/': 1,
    });
    const durations = json.find((x) => x.name === 'ipp_provider_call_duration_seconds')!.values;
    const counts = durations.filter(
      (v) => (v as { metricName?: string }).metricName === 'ipp_provider_call_duration_seconds_count',
    );
    expect(Object.fromEntries(counts.map((v) => [v.labels.operation, v.value]))).toEqual({
      create: 2,
      delete: 1,
      get: 1,
      list: 2,
    });
  });

  it('passes capacity, validate and run through untouched', async () => {
    const fake = new Fake();
    const p = instrumentProvider(fake, new Metrics({ defaultMetrics: false }));
    expect(p.capacity('sim.metal', {} as never)).toEqual({ cpu: 1000, memory: 1 << 30, pods: 110 });
    expect(p.validate({} as never)).toEqual(['spec.simulated.bootSeconds: must be positive']);
    await p.run!(new AbortController().signal);
    expect(fake.ran).toBe(true);

    const withoutRun: CloudProvider = {
      name: 'plain',
      create: (r) => fake.create(r),
      delete: (id) => fake.delete(id),
      get: (id) => fake.get(id),
      list: () => fake.list(),
      capacity: () => undefined,
      validate: () => [],
    };
    expect(instrumentProvider(withoutRun, new Metrics({ defaultMetrics: false })).run).toBeUndefined();
  });
});
