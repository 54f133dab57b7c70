// Every Prometheus metric ipp exposes, in one registry per process (tests make their own). The
// prom-client objects are public properties so callers set and observe them directly; docs/metrics.md
// lists each one with its labels and example queries. Names follow Prometheus naming: ipp_ prefix,
// base units (seconds), _total on counters, no per-pod labels (pods are unbounded; nodes are bounded by
// the class sizes, and their series are removed with the node).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { METRICS_PREFIX as P } from '../api/names.ts';

/** 1 s .. 1 h: a pin waits at least for a boot (seconds on kwok, minutes on VMs, 20+ min on bare metal). */
export const PIN_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600];
/** 5 s .. 1 h: launch → Node registered; bare-metal instance types can take more than 20 minutes. */
export const REGISTRATION_BUCKETS = [5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600];
/** 10 ms .. 2 min: one cloud API call, retries by the SDK included (cf. cluster-autoscaler's AWS request buckets). */
export const PROVIDER_CALL_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** 1 ms .. 10 s: one admission review; the apiserver gives up after the webhook's timeoutSeconds (default 5 s). */
export const WEBHOOK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * 1 ms .. 10 s: how late the event-loop probe's timer fired. The controller's one thread also renews
 * the lease (every 2 s, 10 s to spare) and answers admission: a delay past 50 ms is a stall worth
 * finding, one past a few seconds risks the lease.
 */
export const EVENT_LOOP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];
/**
 * The event-loop probe's period. A stall shorter than this is caught by chance (as often as it is
 * long against the period), a longer one always. Both every 10 ms, the probe and prom-client's
 * monitor cost an otherwise idle process ~16 ms of CPU a second (`node test/bench/probe-micro.ts`),
 * and an idle controller spent 9–13 ms a second against 4–6 at these periods.
 */
export const EVENT_LOOP_PROBE_MS = 50;
/** The resolution of prom-client's native event-loop monitor behind nodejs_eventloop_lag_p50/p99/max. */
export const EVENT_LOOP_MONITOR_MS = 100;

/** Values of ipp_webhook_requests_total's `result` label: the answer given, or `error` for a 4xx/5xx. */
export type AdmissionResult = 'allowed' | 'denied' | 'error';

/** What ipp_informer_synced reads from each informer at scrape time. */
export interface SyncSource {
  readonly resource: string;
  hasSynced(): boolean;
  /** Watch requests opened since start (informers count them). */
  watches?(): number;
}

export interface MetricsOptions {
  /**
   * Also collect prom-client's process_* and nodejs_* metrics (default true). They are left
   * unprefixed, as every other Node exporter does, so stock Node.js dashboards work unchanged.
   */
  defaultMetrics?: boolean;
}

export class Metrics {
  readonly registry: Registry;

  /** Instances by class and phase (Pending, Launched, Registered, Ready, Draining, Terminated). */
  readonly instances: Gauge<'class' | 'phase'>;
  /** Registered ipp nodes of a class with no workload pod on them, i.e. candidates for reuse or teardown. */
  readonly idleNodes: Gauge<'class'>;
  /** Seconds each idle node has been idle; remove({class, node}) when the node stops being idle or goes. */
  readonly nodeIdleSeconds: Gauge<'class' | 'node'>;
  /** Opted-in pods still gated (or unbound in bind mode), by class. */
  readonly pendingPods: Gauge<'class'>;
  /** Pod creation → pinned (gate removed) or bound; `mode` is pin or bind. */
  readonly podPinDuration: Histogram<'class' | 'mode'>;
  /** Cloud launch → Node registered with the apiserver. */
  readonly instanceRegistrationDuration: Histogram<'class' | 'provider'>;
  /** Provider calls; `error` is errorKind() of the failure, "" on success. */
  readonly providerCalls: Counter<'provider' | 'operation' | 'error'>;
  readonly providerCallDuration: Histogram<'provider' | 'operation'>;
  /** Cloud instances tagged for this cluster without an Instance object, terminated by the GC. */
  readonly leakedInstancesCollected: Counter<'provider'>;
  /** Instances replaced because their machine died or vanished; `reason` is NodeRepair, NodeLost, InstanceTerminated or NodeLabelsTampered. */
  readonly nodeRepairs: Counter<'class' | 'reason'>;
  /** 1 while repair of a class is suspended (too much of it looks dead at once to blame the machines), else 0. */
  readonly repairSuspended: Gauge<'class'>;
  /** Every isolation violation the auditor found (a foreign pod on an ipp node), cumulative. */
  readonly isolationViolationsTotal: Counter<'class' | 'node'>;
  /** Violations present right now, per node; set to 0 or remove({node}) once resolved. */
  readonly isolationViolations: Gauge<'node'>;
  readonly workqueueDepth: Gauge<'queue'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly reconciles: Counter<'controller' | 'result'>;
  /** 1 while this process holds the leader Lease, else 0. */
  readonly leader: Gauge<'identity'>;
  /** Unix time of the last watch event (or relist) per informer; a stalled watch shows as a growing age. */
  readonly informerLastEvent: Gauge<'resource'>;
  /** 1 once an informer's cache has really listed, else 0; read from observeInformers() at each scrape. */
  readonly informerSynced: Gauge<'resource'>;
  /** Watch requests each informer opened; read from observeInformers() at each scrape. */
  readonly informerWatches: Counter<'resource'>;
  /**
   * The leader Lease's spec.leaseTransitions as this replica last read it. Every replica reports the
   * same number, and a restarted replica carries on from it, so increase() over it is the number of
   * leader changes in the cluster, not in one process.
   */
  readonly leaderTransitions: Counter<'lease'>;
  /** Age of the oldest opted-in pod still waiting for its instance, per class; 0 when none waits. */
  readonly oldestPendingPodAge: Gauge<'class'>;
  /** Each class's launch, registration and idle timeouts, so alerts compare ages with them. */
  readonly classTimeout: Gauge<'class' | 'timeout'>;
  /** Admission reviews answered, by webhook (mutate, enforce) and result. */
  readonly webhookRequests: Counter<'webhook' | 'result'>;
  readonly webhookRequestDuration: Histogram<'webhook'>;
  /** Warm instances of each class by state: ready (waiting for a pod) or launching. */
  readonly warmInstances: Gauge<'class' | 'state'>;
  /** Pods that took a Ready warm instance (no boot wait). */
  readonly warmHits: Counter<'class'>;
  /** Pods of a class with a warm pool that got any other instance (new, reused, or warm still booting). */
  readonly warmMisses: Counter<'class'>;
  /** How late each tick of the event-loop probe (every EVENT_LOOP_PROBE_MS) ran: see observeEventLoop(). */
  readonly eventLoopDelay: Histogram;

  private syncSources: SyncSource[] = [];
  private readonly leaseTransitionsSeen = new Map<string, number>();

  constructor(opts: MetricsOptions = {}) {
    const registers = [(this.registry = new Registry())];
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITOR_MS });
      // Gauges named *_total break Prometheus naming (promtool check metrics rejects them); the
      // per-type gauges nodejs_active_{handles,requests,resources} carry the same numbers.
      for (const name of [
        'nodejs_active_handles_total',
        'nodejs_active_requests_total',
        'nodejs_active_resources_total',
      ]) {
        this.registry.removeSingleMetric(name);
      }
    }

    this.instances = new Gauge({
      name: `${P}instances`,
      help: 'Instances by class and phase.',
      labelNames: ['class', 'phase'],
      registers,
    });
    this.idleNodes = new Gauge({
      name: `${P}idle_nodes`,
      help: 'Registered ipp nodes with no workload pod, by class.',
      labelNames: ['class'],
      registers,
    });
    this.nodeIdleSeconds = new Gauge({
      name: `${P}node_idle_seconds`,
      help: 'How long each idle ipp node has been idle, in seconds.',
      labelNames: ['class', 'node'],
      registers,
    });
    this.pendingPods = new Gauge({
      name: `${P}pending_pods`,
      help: 'Opted-in pods waiting for their instance, by class.',
      labelNames: ['class'],
      registers,
    });
    this.podPinDuration = new Histogram({
      name: `${P}pod_pin_duration_seconds`,
      help: 'Time from pod creation to the pod being pinned (gate removed) or bound to its node, in seconds.',
      labelNames: ['class', 'mode'],
      buckets: PIN_BUCKETS,
      registers,
    });
    this.instanceRegistrationDuration = new Histogram({
      name: `${P}instance_registration_duration_seconds`,
      help: 'Time from the cloud launch of an instance to its Node registering, in seconds.',
      labelNames: ['class', 'provider'],
      buckets: REGISTRATION_BUCKETS,
      registers,
    });
    this.providerCalls = new Counter({
      name: `${P}provider_calls_total`,
      help: 'Cloud provider calls by provider, operation and error kind ("" on success).',
      labelNames: ['provider', 'operation', 'error'],
      registers,
    });
    this.providerCallDuration = new Histogram({
      name: `${P}provider_call_duration_seconds`,
      help: 'Duration of cloud provider calls, in seconds.',
      labelNames: ['provider', 'operation'],
      buckets: PROVIDER_CALL_BUCKETS,
      registers,
    });
    this.leakedInstancesCollected = new Counter({
      name: `${P}leaked_instances_collected_total`,
      help: 'Cloud instances tagged for this cluster but without an Instance object, terminated by garbage collection.',
      labelNames: ['provider'],
      registers,
    });
    this.nodeRepairs = new Counter({
      name: `${P}node_repairs_total`,
      help: 'Instances replaced because their node stayed NotReady, vanished, or their cloud instance was terminated outside ipp.',
      labelNames: ['class', 'reason'],
      registers,
    });
    this.repairSuspended = new Gauge({
      name: `${P}repair_suspended`,
      help: 'Whether repair of a class is suspended because more than a fifth of it looks dead at once (1) or not (0).',
      labelNames: ['class'],
      registers,
    });
    this.isolationViolationsTotal = new Counter({
      name: `${P}isolation_violations_total`,
      help: 'Isolation violations found by the auditor (a pod that must not be there on an ipp node).',
      labelNames: ['class', 'node'],
      registers,
    });
    this.isolationViolations = new Gauge({
      name: `${P}isolation_violations`,
      help: 'Pods currently violating isolation, per ipp node.',
      labelNames: ['node'],
      registers,
    });
    this.workqueueDepth = new Gauge({
      name: `${P}workqueue_depth`,
      help: 'Keys waiting in each work queue.',
      labelNames: ['queue'],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: `${P}reconcile_errors_total`,
      help: 'Reconciles that returned an error, by controller.',
      labelNames: ['controller'],
      registers,
    });
    this.reconciles = new Counter({
      name: `${P}reconcile_total`,
      help: 'Reconciles by controller and result (success, error, requeue, requeue_after).',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.leader = new Gauge({
      name: `${P}leader`,
      help: '1 while this replica holds the leader Lease, else 0.',
      labelNames: ['identity'],
      registers,
    });
    this.informerLastEvent = new Gauge({
      name: `${P}informer_last_event_timestamp_seconds`,
      help: 'Unix time of the last event (or relist) each informer received.',
      labelNames: ['resource'],
      registers,
    });
    const sources = () => this.syncSources;
    this.informerSynced = new Gauge({
      name: `${P}informer_synced`,
      help: '1 once the informer of each resource has completed a list, else 0.',
      labelNames: ['resource'],
      registers,
      // Read when scraped: a cache that never lists must show 0 even while nothing else runs.
      collect() {
        for (const s of sources()) this.set({ resource: s.resource }, s.hasSynced() ? 1 : 0);
      },
    });
    const watchesCounted = new Map<string, number>();
    this.informerWatches = new Counter({
      name: `${P}informer_watches_total`,
      help: 'Watch requests each informer opened: a watch the API server ends early (a watcher too slow to keep up) is opened again.',
      labelNames: ['resource'],
      registers,
      collect() {
        for (const s of sources()) {
          const now = s.watches?.();
          if (now === undefined) continue;
          const before = watchesCounted.get(s.resource) ?? 0;
          if (now > before) this.inc({ resource: s.resource }, now - before);
          watchesCounted.set(s.resource, Math.max(now, before));
        }
      },
    });
    this.leaderTransitions = new Counter({
      name: `${P}leader_transitions_total`,
      help: 'Leader changes recorded in the leader Lease (spec.leaseTransitions), as this replica last read it.',
      labelNames: ['lease'],
      registers,
    });
    this.oldestPendingPodAge = new Gauge({
      name: `${P}oldest_pending_pod_age_seconds`,
      help: 'Age of the oldest opted-in pod still waiting for its instance, by class, in seconds (0 when none waits).',
      labelNames: ['class'],
      registers,
    });
    this.classTimeout = new Gauge({
      name: `${P}class_timeout_seconds`,
      help: 'Launch, registration and idle timeouts of each InstanceClass, in seconds.',
      labelNames: ['class', 'timeout'],
      registers,
    });
    this.webhookRequests = new Counter({
      name: `${P}webhook_requests_total`,
      help: 'Admission reviews answered by webhook and result (allowed, denied, error).',
      labelNames: ['webhook', 'result'],
      registers,
    });
    this.webhookRequestDuration = new Histogram({
      name: `${P}webhook_request_duration_seconds`,
      help: 'Time to answer an admission review, from request to response, in seconds.',
      labelNames: ['webhook'],
      buckets: WEBHOOK_BUCKETS,
      registers,
    });
    this.warmInstances = new Gauge({
      name: `${P}warm_instances`,
      help: 'Warm (launched, never used) instances by class and state (ready, launching).',
      labelNames: ['class', 'state'],
      registers,
    });
    this.warmHits = new Counter({
      name: `${P}warm_hits_total`,
      help: 'Pods that took a Ready warm instance, by class.',
      labelNames: ['class'],
      registers,
    });
    this.warmMisses = new Counter({
      name: `${P}warm_misses_total`,
      help: 'Pods of a class with a warm pool that found no Ready warm instance, by class.',
      labelNames: ['class'],
      registers,
    });
    this.eventLoopDelay = new Histogram({
      name: `${P}event_loop_delay_seconds`,
      help: `How late a timer due every ${EVENT_LOOP_PROBE_MS} ms ran, in seconds: the time the thread was held by other work.`,
      buckets: EVENT_LOOP_BUCKETS,
      registers,
    });
  }

  /**
   * Observes ipp_event_loop_delay_seconds until the returned function is called: a timer due every
   * `periodMs` records how late it ran. prom-client's nodejs_eventloop_lag_* gauges give percentiles
   * of the window since the last scrape only, which cannot be combined over a longer time; buckets can
   * (histogram_quantile over rate()). A stall of a second is one late tick, as in those gauges.
   */
  observeEventLoop(periodMs = EVENT_LOOP_PROBE_MS): () => void {
    let due = performance.now() + periodMs;
    let timer: NodeJS.Timeout;
    const tick = () => {
      const now = performance.now();
      this.eventLoopDelay.observe(Math.max(0, now - due) / 1000);
      due = now + periodMs;
      timer = setTimeout(tick, periodMs).unref();
    };
    timer = setTimeout(tick, periodMs).unref();
    return () => clearTimeout(timer);
  }

  /** Reports each informer's sync state as ipp_informer_synced{resource} at every scrape. */
  observeInformers(informers: Iterable<SyncSource>): void {
    this.syncSources = [...informers];
  }

  /**
   * Records the Lease's transition count; the counter only moves forward (a Lease deleted and
   * recreated starts again at 0, and is then counted again only past the old number).
   */
  observeLeaseTransitions(lease: string, transitions: number): void {
    const seen = this.leaseTransitionsSeen.get(lease);
    if (seen !== undefined && transitions <= seen) return;
    // The first reading creates the series at the Lease's count: increase() ignores a first sample.
    this.leaderTransitions.inc({ lease }, transitions - (seen ?? 0));
    this.leaseTransitionsSeen.set(lease, transitions);
  }

  /** One admission review answered by `webhook` (mutate, enforce) after `seconds`. */
  observeAdmission(webhook: string, result: AdmissionResult, seconds: number): void {
    this.webhookRequests.inc({ webhook, result });
    this.webhookRequestDuration.observe({ webhook }, seconds);
  }
}
