// Wires the process: caches (every replica), ops server, leader election, and, while leading, the
// controllers with their queues and timers. Nothing here decides anything; the controllers do.
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Options } from './config/options.ts';
import { Auditor } from './controllers/audit/controller.ts';
import { daemonSetReader } from './controllers/audit/trust.ts';
import type { Controller, ControllerContext, Wakes } from './controllers/context.ts';
import { GarbageCollector } from './controllers/garbagecollection/controller.ts';
import { InstanceController } from './controllers/instance/controller.ts';
import { InstanceClassController } from './controllers/instanceclass/controller.ts';
import { NodeIdentityController } from './controllers/nodeidentity/controller.ts';
import { PlacementController } from './controllers/placement/controller.ts';
import { ProvisioningController } from './controllers/provisioning/controller.ts';
import { classOfRuntimeClass } from './api/names.ts';
import { RuntimeClassController } from './controllers/runtimeclass/controller.ts';
import { WarmPoolController } from './controllers/warmpool/controller.ts';
import { ClaimsInFlight } from './controllers/claims.ts';
import { CreatesInFlight } from './controllers/creates.ts';
import { startOpsServer } from './health/server.ts';
import { apiClientConfig, DEFAULT_RATE_LIMIT, type RateLimit } from './kube/client.ts';
import { EventRecorder } from './kube/events.ts';
import { ClassWriter } from './kube/classes.ts';
import { LeadershipFence } from './kube/fence.ts';
import { InstanceReader, InstanceWriter } from './kube/instances.ts';
import { NodeReader, NodeWriter } from './kube/nodes.ts';
import { PodReader, PodWriter } from './kube/pods.ts';
import { apiStorageReads, VolumeReader } from './kube/volumes.ts';
import { RuntimeClassApi } from './kube/runtimeclasses.ts';
import { LeaderElector } from './kube/leader-election.ts';
import { WorkQueue } from './kube/workqueue.ts';
import type { Logger } from './log.ts';
import { Metrics } from './metrics/metrics.ts';
import { observeWorld } from './metrics/observe.ts';
import { ClusterState } from './state/cluster.ts';
import type { Admission } from './webhook/run.ts';
import { instrumentProvider } from '../providers/instrumented.ts';
import { SimulatedFaults } from '../providers/simulated/faults.ts';
import { SimulatedProvider } from '../providers/simulated/provider.ts';
import type { CloudProvider } from '../providers/types.ts';

/** Controllers keyed by InstanceClass name (one pass covers every pod and Instance of the class). */
const CLASS_KEYED = new Set(['provisioning', 'instanceclass', 'warmpool']);
/** At most ten passes a second per class (provisioning spaces its own): a burst's changes taken together. */
const CLASS_PASS_INTERVAL_MS = 100;
/**
 * A class's status is a summary (counts, conditions) read by people and dashboards: one pass a second
 * at most. At ten a second it was a tenth of the controller's CPU in a thousand-pod burst.
 */
const CLASS_STATUS_INTERVAL_MS = 1_000;
/** Pods pinned at once: each reconcile is one guarded write, and a burst's nodes turn Ready together. */
const PLACEMENTS_IN_FLIGHT = 16;

/** Every client made from it shares one connection pool per API server and the --kube-api-qps/burst limit. */
export function loadKubeConfig(
  path: string | undefined,
  limit: RateLimit = DEFAULT_RATE_LIMIT,
): KubeConfig & { close(): Promise<void>; requests: Map<string, number> } {
  return apiClientConfig(path, limit);
}

/**
 * The simulated provider's own client: it stands in for a cloud API and for the kubelets of its
 * machines, whose requests never count against the controller's --kube-api-qps in a real cluster.
 * Sharing the controller's budget made `npm run bench -- burst` measure ~4 requests per pod (the
 * cloud's record, its lookup, the node and its status) that no real deployment pays. Same limit, its
 * own bucket and connection pool.
 */
type CloudClient = ReturnType<typeof loadKubeConfig>;

async function buildProviders(
  opts: Options,
  logger: Logger,
  metrics: Metrics,
  clients: CloudClient[],
): Promise<Map<string, CloudProvider>> {
  const providers = new Map<string, CloudProvider>();
  for (const name of opts.providers) {
    const log = logger.child({ provider: name });
    let p: CloudProvider;
    if (name === 'simulated') {
      if (opts.simulatedFaults)
        log.warn({ file: opts.simulatedFaults }, 'chaos testing: injecting simulated cloud faults listed in this file');
      const cloud = loadKubeConfig(opts.kubeconfig, { qps: opts.kubeApiQps, burst: opts.kubeApiBurst });
      clients.push(cloud);
      p = new SimulatedProvider({
        kubeconfig: cloud,
        clusterName: opts.clusterName,
        namespace: opts.simulatedNamespace,
        logger: log,
        kubelets: opts.simulatedKubelets,
        ...(opts.simulatedFaults ? { faults: new SimulatedFaults(opts.simulatedFaults) } : {}),
      });
    } else if (name === 'aws') {
      if (!opts.awsRegion) throw new Error('the aws provider needs a region: set --aws-region or AWS_REGION');
      if (!opts.eksEndpoint || !opts.eksCertificateAuthority || !opts.eksServiceCidr) {
        throw new Error(
          'the aws provider generates node bootstrap data and needs --eks-endpoint, --eks-certificate-authority and --eks-service-cidr (aws eks describe-cluster shows them)',
        );
      }
      // Loaded only when used: the EC2 SDK alone is ~65 MiB of resident memory.
      const { createAwsProvider } = await import('../providers/aws/provider.ts');
      p = createAwsProvider({
        clusterName: opts.clusterName,
        region: opts.awsRegion,
        endpoint: opts.awsEndpoint,
        logger: log,
        eks: {
          clusterName: opts.eksClusterName ?? opts.clusterName,
          apiServerEndpoint: opts.eksEndpoint,
          certificateAuthority: opts.eksCertificateAuthority,
          serviceCidr: opts.eksServiceCidr,
        },
      });
    } else if (name === 'gce') {
      // Like aws: the Compute client is loaded only when the gce provider runs.
      const { createGceProvider } = await import('../providers/gce/provider.ts');
      p = createGceProvider({
        clusterName: opts.clusterName,
        project: opts.gceProject,
        endpoint: opts.gceEndpoint,
        logger: log,
      });
    } else {
      throw new Error(`provider ${name} is not available in this build; use simulated, aws or gce`);
    }
    providers.set(name, instrumentProvider(p, metrics));
  }
  return providers;
}

/** Runs until `signal` aborts (SIGTERM) or leadership is lost; resolves after a clean shutdown. */
export async function runOperator(opts: Options, signal: AbortSignal, logger: Logger): Promise<void> {
  const kc = loadKubeConfig(opts.kubeconfig, { qps: opts.kubeApiQps, burst: opts.kubeApiBurst });
  const metrics = new Metrics();
  const stopEventLoopProbe = metrics.observeEventLoop();
  const events = new EventRecorder({
    kubeconfig: kc,
    reportingController: 'ipp.dev/controller',
    reportingInstance: opts.identity,
    logger,
  });
  const cloudClients: CloudClient[] = [];
  const providers = await buildProviders(opts, logger, metrics, cloudClients);
  // Loaded only when serving: its certificate code (@peculiar/x509) is ~4 MiB of resident memory.
  // Loaded now, while nothing else runs: evaluating it takes the thread for a second or more.
  const webhookModule = opts.webhook ? import('./webhook/run.ts') : undefined;
  webhookModule?.catch(() => {}); // awaited (and its failure reported) once the caches have synced

  // Informer events reach each controller's queue through the keys its `wakes` declares.
  const routes: { controller: Controller; queue: WorkQueue }[] = [];
  const wake = (keysOf: (w: Wakes) => Iterable<string> | undefined) => {
    for (const { controller, queue } of routes) for (const key of keysOf(controller.wakes) ?? []) queue.add(key);
  };
  const state: ClusterState = new ClusterState(
    kc,
    logger,
    {
      pod: (p, old) => {
        wake((w) => w.pod?.(p, state, old));
        auditor.touch(p.spec?.nodeName);
      },
      node: (n, old) => {
        wake((w) => w.node?.(n, state, old));
        auditor.touch(n.metadata?.name);
      },
      instance: (i, old) => wake((w) => w.instance?.(i, state, old)),
      instanceClass: (c, statusOnly) =>
        wake((w) => (statusOnly ? w.instanceClassStatus?.(c, state) : w.instanceClass?.(c, state))),
    },
    (resource, at) => metrics.informerLastEvent.set({ resource }, at / 1000),
  );
  metrics.observeInformers([state.pods, state.nodes, state.instances, state.classes]);
  // Controllers write only through the fence: once the lease is lost, every write is refused here,
  // including those of reconciles and GC passes still under way.
  const fence = new LeadershipFence();
  const ctx: ControllerContext = {
    clusterName: opts.clusterName,
    state,
    api: {
      instances: fence.guard(new InstanceWriter(kc), 'instances'),
      pods: fence.guard(new PodWriter(kc), 'pods'),
      nodes: fence.guard(new NodeWriter(kc), 'nodes'),
      classes: fence.guard(new ClassWriter(kc), 'classes'),
    },
    lookup: {
      nodes: new NodeReader(kc),
      instances: new InstanceReader(kc),
      pods: new PodReader(kc),
      volumes: new VolumeReader(apiStorageReads(kc), Date.now, logger.child({ lookup: 'volumes' })),
    },
    providers: new Map(
      [...providers].map(([name, p]) => [name, fence.guard(p, `provider ${name}`, ['create', 'delete'])]),
    ),
    events,
    metrics,
    logger,
    creates: new CreatesInFlight(),
    claims: new ClaimsInFlight(() => state.pods.silentForMs()),
  };
  const runtimeClassApi = new RuntimeClassApi(kc);
  const runtimeClasses = new RuntimeClassController(
    ctx,
    fence.guard(runtimeClassApi, 'runtimeclasses', ['create', 'replace', 'delete']),
  );
  const controllers: Controller[] = [
    new ProvisioningController({ ...ctx, strandedAfterMs: opts.strandedAfterMs }),
    new PlacementController(ctx),
    new InstanceController({ ...ctx, strandedAfterMs: opts.strandedAfterMs }),
    new InstanceClassController(ctx),
    runtimeClasses,
    new WarmPoolController(ctx),
    new NodeIdentityController(ctx),
  ];
  for (const controller of controllers) {
    const name = controller.name;
    const queue = new WorkQueue({
      name,
      // Provisioning is keyed by class: more workers than busy classes would only wait.
      concurrency:
        name === 'provisioning'
          ? Math.min(opts.concurrency, 2)
          : name === 'instance'
            ? opts.launchConcurrency
            : name === 'placement'
              ? PLACEMENTS_IN_FLIGHT
              : opts.concurrency,
      // A pass over a class reads every pod and Instance of it. In a burst its pods, Instances and
      // nodes change dozens of times a second, and a pass per change made the controller's CPU grow
      // with the square of the burst; changes within this interval are taken in one pass.
      minIntervalMs: controller.minIntervalMs
        ? (key: string) => controller.minIntervalMs!(key)
        : name === 'instanceclass'
          ? CLASS_STATUS_INTERVAL_MS
          : CLASS_KEYED.has(name)
            ? CLASS_PASS_INTERVAL_MS
            : 0,
      logger,
      onDepth: (d) => metrics.workqueueDepth.set({ queue: name }, d),
      onResult: (result) => {
        metrics.reconciles.inc({ controller: name, result });
        if (result === 'error') metrics.reconcileErrors.inc({ controller: name });
      },
    });
    routes.push({ controller, queue });
  }
  // A RuntimeClass ipp-<class> changed by anyone wakes its class in the RuntimeClass controller.
  const runtimeClassWatch = runtimeClassApi.informer(logger, (rc) => {
    const cls = classOfRuntimeClass(rc.metadata?.name);
    if (cls) routes.find((r) => r.controller === runtimeClasses)?.queue.add(cls);
  });
  const collector = new GarbageCollector({ ...ctx, gracePeriodMs: opts.gcGracePeriodMs });
  const auditor = new Auditor(state, events, metrics, logger, {
    trustedDaemonSetNamespaces: opts.trustedDaemonSetNamespaces,
    readDaemonSet: daemonSetReader(kc.makeApiClient(AppsV1Api)),
  });

  let admission: Admission | undefined;
  const ops = await startOpsServer({
    port: opts.metricsPort,
    host: opts.metricsHost,
    metrics,
    logger,
    healthy: () => {
      const s = state.stalest();
      return s.silentForMs < 15 * 60_000
        ? { ok: true }
        : { ok: false, reason: `the ${s.resource} watch has been silent for ${Math.round(s.silentForMs / 1000)}s` };
    },
    // Ready means able to answer admission too: with failurePolicy Fail, a replica that reports
    // ready before its webhook listens would make the API server refuse opted-in pods.
    ready: () => {
      const notSynced = state.notSyncedReason(runtimeClassWatch);
      return notSynced
        ? { ok: false, reason: notSynced }
        : opts.webhook && !admission
          ? { ok: false, reason: 'admission webhook not serving yet' }
          : { ok: true };
    },
  });
  logger.info({ port: ops.port }, 'metrics and health endpoints up');

  // Resolves only once every cache has really listed (or on SIGTERM): never lead on an empty cache.
  await state.start(signal);
  if (state.synced())
    await Promise.race([
      runtimeClassWatch.start(),
      new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true })),
    ]);
  if (!state.synced() || !runtimeClassWatch.hasSynced()) {
    await runtimeClassWatch.stop();
    await state.stop();
    await ops.close();
    stopEventLoopProbe();
    return;
  }
  logger.info('caches synced');
  if (opts.webhook) {
    const { startAdmission } = await webhookModule!;
    admission = await startAdmission(opts, kc, state, logger, metrics);
  }

  const lead = async (stop: AbortSignal, validUntil?: () => number) => {
    logger.info({ identity: opts.identity }, 'leading: reconciling');
    fence.begin(stop, validUntil);
    const every = (ms: number, what: string, fn: () => Promise<void> | void) => {
      const run = async () => {
        try {
          await fn();
        } catch (e) {
          logger.warn({ err: e, loop: what }, `${what} failed; will run again`);
        }
      };
      void run();
      const t = setInterval(run, ms);
      stop.addEventListener('abort', () => clearInterval(t), { once: true });
    };
    every(opts.resyncMs, 'resync', () => wake((w) => w.resync?.(state)));
    every(opts.gcIntervalMs, 'garbage collection', () => collector.collect());
    every(5_000, 'metrics', () => observeWorld(state, metrics, Date.now()));
    await Promise.all([
      auditor.run(stop),
      ...routes.map(({ controller, queue }) => queue.run((k) => controller.reconcile(k), stop)),
      ...[...providers.values()].map((p) => p.run?.(stop)),
    ]);
    logger.info('stopped reconciling');
  };

  try {
    if (opts.leaderElect) {
      const elector = new LeaderElector({
        kubeconfig: kc,
        namespace: opts.namespace,
        name: opts.leaderElectionId,
        identity: opts.identity,
        logger,
        metrics,
      });
      await elector.run(signal, lead);
    } else {
      metrics.leader.set({ identity: opts.identity }, 1);
      await lead(signal);
    }
  } finally {
    await admission?.close();
    await events.flush().catch(() => {});
    await runtimeClassWatch.stop();
    await state.stop();
    await ops.close();
    // What this process sent the API server, by verb and resource (npm run bench -- burst reads it).
    const sorted = (m: Map<string, number>) => Object.fromEntries([...m].sort());
    const cloud = new Map<string, number>();
    for (const c of cloudClients) for (const [k, n] of c.requests) cloud.set(k, (cloud.get(k) ?? 0) + n);
    logger.info(
      { requests: sorted(kc.requests), ...(cloudClients.length ? { simulatedCloudRequests: sorted(cloud) } : {}) },
      'kube API requests since start',
    );
    await kc.close();
    await Promise.all(cloudClients.map((c) => c.close()));
    stopEventLoopProbe();
  }
}
