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

  constructor(opts: MetricsOptions = {}) {
    const registers = [(this.registry = new Registry())];
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
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
  }
}
