// Wires the process: caches (every replica), ops server, leader election, and, while leading, the
// controllers with their queues and timers. Nothing here decides anything; the controllers do.
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import { NODE_CLASS_LABEL, NODE_INSTANCE_LABEL } from './api/names.ts';
import { claimOf, classOf } from './api/pods.ts';
import type { Options } from './config/options.ts';
import { Auditor } from './controllers/audit/controller.ts';
import { daemonSetReader } from './controllers/audit/trust.ts';
import type { ControllerContext } from './controllers/context.ts';
import { GarbageCollector } from './controllers/garbagecollection/controller.ts';
import { InstanceController } from './controllers/instance/controller.ts';
import { InstanceClassController } from './controllers/instanceclass/controller.ts';
import { ProvisioningController } from './controllers/provisioning/controller.ts';
import { startOpsServer } from './health/server.ts';
import { EventRecorder } from './kube/events.ts';
import { InstanceWriter } from './kube/instances.ts';
import { LeaderElector } from './kube/leader-election.ts';
import { WorkQueue } from './kube/workqueue.ts';
import type { Logger } from './log.ts';
import { Metrics } from './metrics/metrics.ts';
import { observeWorld } from './metrics/observe.ts';
import { ClusterState } from './state/cluster.ts';
import { startAdmission } from './webhook/run.ts';
import { createAwsProvider } from '../providers/aws/provider.ts';
import { instrumentProvider } from '../providers/instrumented.ts';
import { SimulatedProvider } from '../providers/simulated/provider.ts';
import type { CloudProvider } from '../providers/types.ts';

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  return kc;
}

function buildProviders(opts: Options, kc: KubeConfig, logger: Logger, metrics: Metrics): Map<string, CloudProvider> {
  const providers = new Map<string, CloudProvider>();
  for (const name of opts.providers) {
    const log = logger.child({ provider: name });
    let p: CloudProvider;
    if (name === 'simulated') {
      p = new SimulatedProvider({
        kubeconfig: kc,
        clusterName: opts.clusterName,
        namespace: opts.simulatedNamespace,
        logger: log,
      });
    } else if (name === 'aws') {
      if (!opts.awsRegion) throw new Error('the aws provider needs a region: set --aws-region or AWS_REGION');
      if (!opts.eksEndpoint || !opts.eksCertificateAuthority || !opts.eksServiceCidr) {
        throw new Error(
          'the aws provider generates node bootstrap data and needs --eks-endpoint, --eks-certificate-authority and --eks-service-cidr (aws eks describe-cluster shows them)',
        );
      }
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
    } else {
      throw new Error(`provider ${name} is not available in this build; use simulated or aws`);
    }
    providers.set(name, instrumentProvider(p, metrics));
  }
  return providers;
}

/** Runs until `signal` aborts (SIGTERM) or leadership is lost; resolves after a clean shutdown. */
export async function runOperator(opts: Options, signal: AbortSignal, logger: Logger): Promise<void> {
  const kc = loadKubeConfig(opts.kubeconfig);
  const metrics = new Metrics();
  const events = new EventRecorder({
    kubeconfig: kc,
    reportingController: 'ipp.dev/controller',
    reportingInstance: opts.identity,
    logger,
  });
  const providers = buildProviders(opts, kc, logger, metrics);
  const writer = new InstanceWriter(kc);

  const queue = (name: string) =>
    new WorkQueue({
      name,
      concurrency: name === 'provisioning' ? Math.min(opts.concurrency, 2) : opts.concurrency,
      logger,
      onDepth: (d) => metrics.workqueueDepth.set({ queue: name }, d),
      onResult: (result, _key) => {
        metrics.reconciles.inc({ controller: name, result });
        if (result === 'error') metrics.reconcileErrors.inc({ controller: name });
      },
    });
  const provisioning = queue('provisioning');
  const instances = queue('instance');
  const classes = queue('instanceclass');

  const state: ClusterState = new ClusterState(
    kc,
    logger,
    {
      pod: (p) => {
        const cls = classOf(p);
        if (cls) {
          provisioning.add(cls);
          classes.add(cls);
        }
        const claim = claimOf(p);
        if (claim) instances.add(claim);
        const node = p.spec?.nodeName ? state.node(p.spec.nodeName) : undefined;
        const onInstance = node?.metadata?.labels?.[NODE_INSTANCE_LABEL];
        if (onInstance) instances.add(onInstance);
      },
      node: (n) => {
        const inst = n.metadata?.labels?.[NODE_INSTANCE_LABEL];
        if (inst) instances.add(inst);
        const cls = n.metadata?.labels?.[NODE_CLASS_LABEL];
        if (cls) provisioning.add(cls);
      },
      instance: (i) => {
        instances.add(i.metadata!.name!);
        provisioning.add(i.spec.class);
        classes.add(i.spec.class);
      },
      instanceClass: (c) => {
        provisioning.add(c.metadata!.name!);
        classes.add(c.metadata!.name!);
      },
    },
    (resource, at) => metrics.informerLastEvent.set({ resource }, at / 1000),
  );

  let admission: Awaited<ReturnType<typeof startAdmission>> | undefined;
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
    ready: () =>
      !state.synced()
        ? { ok: false, reason: 'caches not synced yet' }
        : opts.webhook && !admission
          ? { ok: false, reason: 'admission webhook not serving yet' }
          : { ok: true },
  });
  logger.info({ port: ops.port }, 'metrics and health endpoints up');

  await state.start();
  logger.info('caches synced');
  if (opts.webhook) admission = await startAdmission(opts, kc, state, logger);

  const ctx: ControllerContext = {
    kubeconfig: kc,
    clusterName: opts.clusterName,
    state,
    writer,
    providers,
    events,
    metrics,
    logger,
  };
  const provisioner = new ProvisioningController(ctx);
  const lifecycle = new InstanceController(ctx);
  const classStatus = new InstanceClassController(ctx);
  const collector = new GarbageCollector({ ...ctx, gracePeriodMs: opts.gcGracePeriodMs });
  const auditor = new Auditor(state, events, metrics, logger, {
    trustedDaemonSetNamespaces: opts.trustedDaemonSetNamespaces,
    readDaemonSet: daemonSetReader(kc.makeApiClient(AppsV1Api)),
  });

  const lead = async (stop: AbortSignal) => {
    logger.info({ identity: opts.identity }, 'leading: reconciling');
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
    const resync = () => {
      for (const c of state.classes.list()) {
        provisioning.add(c.metadata!.name!);
        classes.add(c.metadata!.name!);
      }
      for (const i of state.instances.list()) instances.add(i.metadata!.name!);
    };
    every(opts.resyncMs, 'resync', resync);
    every(opts.gcIntervalMs, 'garbage collection', () => collector.collect());
    every(2_000, 'audit', () => auditor.audit());
    every(5_000, 'metrics', () => observeWorld(state, metrics, Date.now()));
    await Promise.all([
      provisioning.run((k) => provisioner.reconcile(k), stop),
      instances.run((k) => lifecycle.reconcile(k), stop),
      classes.run((k) => classStatus.reconcile(k), stop),
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
    await state.stop();
    await ops.close();
  }
}
