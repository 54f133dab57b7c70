// The controller's settings: command-line flags, each with an IPP_* environment variable, parsed
// and checked by commander. docs/configuration.md lists them; the chart sets them from values.
import { PROVIDER_NAMES } from '../api/classes.ts';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseDuration } from '../api/duration.ts';

export interface Options {
  clusterName: string;
  kubeconfig?: string;
  providers: string[];
  placement: 'pin' | 'bind';
  namespace: string;
  leaderElect: boolean;
  leaderElectionId: string;
  identity: string;
  metricsPort: number;
  metricsHost: string;
  logLevel: string;
  concurrency: number;
  /** Instance reconciles (launches, teardowns) in flight at once: bounded by the cloud's request budget, not by --concurrency. */
  launchConcurrency: number;
  /** Client-side rate limit on the Kubernetes API (like client-go's --kube-api-qps/--kube-api-burst). */
  kubeApiQps: number;
  kubeApiBurst: number;
  gcIntervalMs: number;
  gcGracePeriodMs: number;
  /** How long a pinned pod may stay unschedulable before it counts as stranded. */
  strandedAfterMs: number;
  resyncMs: number;
  simulatedNamespace: string;
  /** Chaos runs only: a file of cloud faults the simulated provider injects (providers/simulated/faults.ts). */
  simulatedFaults?: string;
  /** Run the simulated machines' kubelets in this process (false: another process runs them). */
  simulatedKubelets: boolean;
  webhook: boolean;
  webhookPort: number;
  webhookHost: string;
  webhookCertMode: 'self' | 'files';
  webhookCertDir: string;
  webhookSecret: string;
  webhookService: string;
  webhookConfigName: string;
  webhookUrl?: string;
  /** Namespaces whose DaemonSet pods may run on ipp nodes (webhook and auditor). */
  trustedDaemonSetNamespaces: string[];
  awsRegion?: string;
  awsEndpoint?: string;
  eksClusterName?: string;
  eksEndpoint?: string;
  eksCertificateAuthority?: string;
  eksServiceCidr?: string;
  gceProject?: string;
  gceEndpoint?: string;
}

const duration = (field: string) => (v: string) => {
  try {
    return parseDuration(v, field);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};
const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`"${v}" is not a non-negative integer`);
  return n;
};
const PROVIDERS: readonly string[] = PROVIDER_NAMES;
const list = (v: string) => {
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = items.filter((p) => !PROVIDERS.includes(p));
  if (unknown.length)
    throw new InvalidArgumentError(`unknown provider(s) ${unknown.join(', ')}; known: ${PROVIDERS.join(', ')}`);
  if (!items.length) throw new InvalidArgumentError(`name at least one provider: ${PROVIDERS.join(', ')}`);
  return items;
};

const namespaces = (v: string) => {
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.filter((n) => !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n));
  if (bad.length) throw new InvalidArgumentError(`not namespace names: ${bad.join(', ')}`);
  return items;
};

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
  const o = (flags: string, description: string, envName: string) => new Option(flags, description).env(envName);
  const cmd = new Command('ipp-controller')
    .description('ipp: a dedicated cloud instance for every pod labelled ipp-class')
    .addOption(
      o(
        '--cluster-name <name>',
        'name of this cluster; tags every cloud instance (ipp.dev/cluster)',
        'IPP_CLUSTER_NAME',
      ).makeOptionMandatory(),
    )
    .addOption(o('--kubeconfig <path>', 'kubeconfig; in-cluster configuration when absent', 'KUBECONFIG'))
    .addOption(
      o('--providers <list>', `comma-separated providers to run: ${PROVIDER_NAMES.join(', ')}`, 'IPP_PROVIDERS')
        .argParser(list)
        .default(['aws']),
    )
    .addOption(
      o(
        '--placement <mode>',
        'pin (scheduling gate + nodeSelector; kube-scheduler binds) or bind (schedulerName ipp; ipp binds)',
        'IPP_PLACEMENT',
      )
        .choices(['pin', 'bind'])
        .default('pin'),
    )
    .addOption(
      o('--namespace <ns>', "the controller's own namespace (leases, webhook secret)", 'POD_NAMESPACE').default(
        'ipp-system',
      ),
    )
    .addOption(o('--no-leader-elect', 'run without leader election (one replica only)', 'IPP_NO_LEADER_ELECT'))
    .addOption(
      o('--leader-election-id <name>', 'name of the Lease', 'IPP_LEADER_ELECTION_ID').default('ipp-controller'),
    )
    .addOption(
      o('--identity <id>', 'this replica in the Lease (pod name)', 'POD_NAME').default(
        `${process.env.HOSTNAME ?? 'ipp'}-${process.pid}`,
      ),
    )
    .addOption(
      o('--metrics-port <port>', 'port of /metrics, /healthz and /readyz (0: any free port)', 'IPP_METRICS_PORT')
        .argParser(int)
        .default(8080),
    )
    .addOption(
      o('--metrics-host <host>', 'address of the metrics/health server', 'IPP_METRICS_HOST').default('0.0.0.0'),
    )
    .addOption(
      o('--log-level <level>', 'pino level: trace, debug, info, warn, error', 'IPP_LOG_LEVEL')
        .choices(['trace', 'debug', 'info', 'warn', 'error'])
        .default('info'),
    )
    .addOption(
      o('--concurrency <n>', 'parallel reconciles per controller', 'IPP_CONCURRENCY').argParser(int).default(4),
    )
    .addOption(
      o(
        '--launch-concurrency <n>',
        'Instance reconciles (launches, teardowns) in flight at once; the provider groups and rate-limits the cloud calls',
        'IPP_LAUNCH_CONCURRENCY',
      )
        .argParser(int)
        .default(32),
    )
    .addOption(
      o('--kube-api-qps <n>', 'sustained Kubernetes API requests per second (0: no limit)', 'IPP_KUBE_API_QPS')
        .argParser(int)
        .default(200), // DEFAULT_RATE_LIMIT in kube/client.ts (Karpenter's)
    )
    .addOption(
      o('--kube-api-burst <n>', 'Kubernetes API requests allowed at once after a quiet period', 'IPP_KUBE_API_BURST')
        .argParser(int)
        .default(300),
    )
    .addOption(
      o('--gc-interval <duration>', 'how often garbage collection compares cloud and cluster', 'IPP_GC_INTERVAL')
        .argParser(duration('--gc-interval'))
        .default(60_000, '1m'),
    )
    .addOption(
      o(
        '--gc-grace-period <duration>',
        'age before an untracked cloud instance counts as leaked',
        'IPP_GC_GRACE_PERIOD',
      )
        .argParser(duration('--gc-grace-period'))
        .default(300_000, '5m'),
    )
    .addOption(
      o(
        '--stranded-after <duration>',
        'how long a pinned pod may stay unschedulable on its node before ipp gives up on that node',
        'IPP_STRANDED_AFTER',
      )
        .argParser(duration('--stranded-after'))
        .default(120_000, '2m'),
    )
    .addOption(
      o('--resync <duration>', 'how often every Instance and class is reconciled even without events', 'IPP_RESYNC')
        .argParser(duration('--resync'))
        .default(30_000, '30s'),
    )
    .addOption(
      o(
        '--simulated-namespace <ns>',
        'namespace holding the simulated cloud (simulated provider)',
        'IPP_SIMULATED_NAMESPACE',
      ).default('ipp-simulated-cloud'),
    )
    .addOption(
      o(
        '--simulated-faults <file>',
        'chaos testing only: JSON file of cloud faults for the simulated provider to inject (see docs/operations.md)',
        'IPP_SIMULATED_FAULTS',
      ).hideHelp(),
    )
    .addOption(
      o(
        '--no-simulated-kubelets',
        'benchmarks only: the simulated machines register their nodes from another process, as real kubelets do',
        'IPP_NO_SIMULATED_KUBELETS',
      ).hideHelp(),
    )
    .addOption(o('--no-webhook', 'do not serve the admission webhook', 'IPP_NO_WEBHOOK'))
    .addOption(
      o('--webhook-port <port>', 'HTTPS port of the admission webhook (0: any free port)', 'IPP_WEBHOOK_PORT')
        .argParser(int)
        .default(9443),
    )
    .addOption(o('--webhook-host <host>', 'address of the admission webhook', 'IPP_WEBHOOK_HOST').default('0.0.0.0'))
    .addOption(
      o(
        '--webhook-cert-mode <mode>',
        'self: make and rotate our own CA and certificate; files: read tls.crt/tls.key (cert-manager)',
        'IPP_WEBHOOK_CERT_MODE',
      )
        .choices(['self', 'files'])
        .default('self'),
    )
    .addOption(
      o('--webhook-cert-dir <dir>', 'directory with tls.crt and tls.key (files mode)', 'IPP_WEBHOOK_CERT_DIR').default(
        '/tmp/k8s-webhook-server/serving-certs',
      ),
    )
    .addOption(
      o('--webhook-secret <name>', 'Secret holding the CA and certificate (self mode)', 'IPP_WEBHOOK_SECRET').default(
        'ipp-webhook-tls',
      ),
    )
    .addOption(
      o(
        '--webhook-service <name>',
        'Service in front of the webhook (certificate names)',
        'IPP_WEBHOOK_SERVICE',
      ).default('ipp-webhook'),
    )
    .addOption(
      o(
        '--webhook-config-name <name>',
        'MutatingWebhookConfiguration whose caBundle ipp keeps current',
        'IPP_WEBHOOK_CONFIG_NAME',
      ).default('ipp'),
    )
    .addOption(
      o(
        '--webhook-url <url>',
        'out-of-cluster only: URL the API server calls instead of the Service',
        'IPP_WEBHOOK_URL',
      ),
    )
    .addOption(
      o(
        '--trusted-daemonset-namespaces <list>',
        'comma-separated namespaces whose DaemonSets may run on ipp nodes (node agents)',
        'IPP_TRUSTED_DAEMONSET_NAMESPACES',
      )
        .argParser(namespaces)
        .default(['kube-system'], 'kube-system'),
    )
    .addOption(
      o(
        '--aws-region <region>',
        'EC2 region (required with the aws provider; IRSA and Pod Identity set AWS_REGION)',
        'AWS_REGION',
      ),
    )
    .addOption(o('--aws-endpoint <url>', 'EC2 endpoint override (tests)', 'IPP_AWS_ENDPOINT'))
    .addOption(
      o('--eks-cluster-name <name>', 'EKS cluster the nodes join (defaults to --cluster-name)', 'IPP_EKS_CLUSTER_NAME'),
    )
    .addOption(o('--eks-endpoint <url>', 'EKS API server endpoint for node bootstrap', 'IPP_EKS_ENDPOINT'))
    .addOption(
      o(
        '--eks-certificate-authority <base64>',
        'EKS cluster CA (base64) for node bootstrap',
        'IPP_EKS_CERTIFICATE_AUTHORITY',
      ),
    )
    .addOption(o('--eks-service-cidr <cidr>', 'service CIDR of the cluster, for nodeadm', 'IPP_EKS_SERVICE_CIDR'))
    .addOption(
      o(
        '--gce-project <project>',
        "default GCE project of classes without spec.gce.project (default: the metadata server's)",
        'IPP_GCE_PROJECT',
      ),
    )
    .addOption(o('--gce-endpoint <url>', 'Compute Engine endpoint override (tests)', 'IPP_GCE_ENDPOINT'))
    .exitOverride();
  // commander reads process.env; let callers (tests) pass their own environment.
  const saved = process.env;
  process.env = env;
  try {
    cmd.parse(argv, { from: 'user' });
  } finally {
    process.env = saved;
  }
  const v = cmd.opts();
  return {
    clusterName: v.clusterName,
    kubeconfig: v.kubeconfig,
    providers: v.providers,
    placement: v.placement,
    namespace: v.namespace,
    leaderElect: v.leaderElect !== false,
    leaderElectionId: v.leaderElectionId,
    identity: v.identity,
    metricsPort: v.metricsPort,
    metricsHost: v.metricsHost,
    logLevel: v.logLevel,
    concurrency: Math.max(1, v.concurrency),
    launchConcurrency: Math.max(1, v.launchConcurrency),
    kubeApiQps: v.kubeApiQps,
    kubeApiBurst: Math.max(1, v.kubeApiBurst),
    gcIntervalMs: v.gcInterval,
    gcGracePeriodMs: v.gcGracePeriod,
    strandedAfterMs: v.strandedAfter,
    resyncMs: v.resync,
    simulatedNamespace: v.simulatedNamespace,
    simulatedFaults: v.simulatedFaults,
    simulatedKubelets: v.simulatedKubelets !== false,
    webhook: v.webhook !== false,
    webhookPort: v.webhookPort,
    webhookHost: v.webhookHost,
    webhookCertMode: v.webhookCertMode,
    webhookCertDir: v.webhookCertDir,
    webhookSecret: v.webhookSecret,
    webhookService: v.webhookService,
    webhookConfigName: v.webhookConfigName,
    webhookUrl: v.webhookUrl,
    trustedDaemonSetNamespaces: v.trustedDaemonsetNamespaces,
    awsRegion: v.awsRegion,
    awsEndpoint: v.awsEndpoint,
    eksClusterName: v.eksClusterName ?? v.clusterName,
    eksEndpoint: v.eksEndpoint,
    eksCertificateAuthority: v.eksCertificateAuthority,
    eksServiceCidr: v.eksServiceCidr,
    gceProject: v.gceProject,
    gceEndpoint: v.gceEndpoint,
  };
}
