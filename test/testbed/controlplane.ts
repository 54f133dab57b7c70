// A real, local Kubernetes control plane: etcd → kube-apiserver → kube-controller-manager →
// kube-scheduler → kwok, on free loopback ports, with real authentication (static tokens, and client
// certificates signed by a CA of our own) and Node+RBAC authorization with the NodeRestriction
// admission plugin, as EKS and GKE run them. Data lives in a temp dir removed on stop.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { Fatal, freePort, startChild, tail, waitFor, type Child } from './process.ts';

export interface Identity {
  user: string;
  groups: string[];
  token: string;
}

export interface ControlPlane {
  dir: string;
  server: string;
  caFile: string;
  /** Kubeconfig of the admin identity (group system:masters). */
  kubeconfig: string;
  /** Identities beyond the admin, by name, for RBAC tests. */
  identities: Record<string, Identity>;
  /** Writes a kubeconfig for one of `identities` and returns its path. */
  kubeconfigFor(name: string): string;
  components: Child[];
  /**
   * Stops kube-apiserver (SIGTERM: graceful; SIGKILL: a crash) and starts it again on the same port
   * with the same flags, over the same etcd, so its data survives; resolves once /readyz is 200.
   * Every client sees its connections and watches drop, as in a control-plane upgrade or crash.
   */
  restartApiServer(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Directory holding bin/ from build.sh. */
  assets: string;
  /** Root for data; a fresh temp dir by default. */
  dir?: string;
  log?: (line: string) => void;
  /**
   * Client QPS/burst of kube-controller-manager and kube-scheduler (default: their own defaults,
   * KCM 20/30 and scheduler 50/100, which cap how fast new nodes lose their not-ready taint and pods
   * bind). Also from IPP_TESTBED_KCM_QPS/_BURST and IPP_TESTBED_SCHEDULER_QPS/_BURST.
   */
  clients?: ComponentClients;
  /**
   * How long kwok's node leases last (it renews each at a fraction of that) and how long
   * kube-controller-manager waits for a renewal before a node turns Unknown. Default 40 s / 40s: fast
   * feedback for tests. One 2-core machine cannot renew thousands of leases every 10 s besides
   * everything else, so a bench at that scale lengthens both (a real cluster spreads this work over
   * its kubelets) and says so.
   */
  nodeHeartbeat?: NodeHeartbeat;
}

export interface NodeHeartbeat {
  leaseSeconds: number;
  monitorGraceSeconds: number;
}

export interface ClientLimit {
  qps: number;
  burst: number;
}
export interface ComponentClients {
  controllerManager?: ClientLimit;
  scheduler?: ClientLimit;
}

/** The QPS/burst settings asked for, by options or environment; what is absent keeps the component's default. */
export function componentClients(opts: ComponentClients = {}, env = process.env): ComponentClients {
  const fromEnv = (prefix: string): ClientLimit | undefined => {
    const qps = Number(env[`${prefix}_QPS`] ?? NaN);
    if (!(qps > 0)) return undefined;
    return { qps, burst: Number(env[`${prefix}_BURST`] ?? NaN) > 0 ? Number(env[`${prefix}_BURST`]) : qps * 2 };
  };
  return {
    controllerManager: opts.controllerManager ?? fromEnv('IPP_TESTBED_KCM'),
    scheduler: opts.scheduler ?? fromEnv('IPP_TESTBED_SCHEDULER'),
  };
}

// kube-scheduler still takes these flags when it runs without --config (deprecated in favour of clientConnection).
const clientFlags = (l: ClientLimit | undefined) =>
  l ? [`--kube-api-qps=${l.qps}`, `--kube-api-burst=${l.burst}`] : [];

const token = () => randomBytes(24).toString('hex');

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** CA, apiserver serving certificate (SAN 127.0.0.1, localhost) and service-account signing key. */
function writePki(pki: string): void {
  mkdirSync(pki, { recursive: true });
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '7',
      '-subj',
      '/CN=ipp-testbed-ca',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    ],
    pki,
  );
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=kube-apiserver',
      '-keyout',
      'apiserver.key',
      '-out',
      'apiserver.csr',
    ],
    pki,
  );
  writeFileSync(
    join(pki, 'san.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'apiserver.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '7',
      '-extfile',
      'san.ext',
      '-out',
      'apiserver.crt',
    ],
    pki,
  );
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], pki);
}

export function kubeconfigYaml(server: string, caFile: string, user: string, bearer: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'ipp-testbed', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: user, user: { token: bearer } }],
    contexts: [{ name: 'ipp-testbed', context: { cluster: 'ipp-testbed', user } }],
    'current-context': 'ipp-testbed',
  });
}

/**
 * A kubeconfig that authenticates as `user` in `groups` with a client certificate signed by the
 * testbed's CA (CN = user, O = groups, as the apiserver reads them), e.g. a kubelet's identity
 * `system:node:<name>` in `system:nodes`, which the Node authorizer and NodeRestriction judge.
 * Works from any process that knows the testbed directory (tests get it as inject('testbedDir')).
 */
export function clientCertKubeconfig(testbedDir: string, user: string, groups: string[] = []): string {
  const pki = join(testbedDir, 'pki');
  const admin = parse(readFileSync(join(testbedDir, 'admin.kubeconfig'), 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority': string } }[];
  };
  const cluster = admin.clusters[0]!.cluster;
  const dir = mkdtempSync(join(testbedDir, 'client-'));
  const subject = `/CN=${user}${groups.map((g) => `/O=${g}`).join('')}`;
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', subject].concat([
      '-keyout',
      'client.key',
      '-out',
      'client.csr',
    ]),
    dir,
  );
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  openssl(
    ['x509', '-req', '-in', 'client.csr', '-CA', join(pki, 'ca.crt'), '-CAkey', join(pki, 'ca.key')].concat([
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      'client.ext',
      '-out',
      'client.crt',
    ]),
    dir,
  );
  const file = join(dir, 'kubeconfig');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'ipp-testbed', cluster }],
      users: [
        { name: user, user: { 'client-certificate': join(dir, 'client.crt'), 'client-key': join(dir, 'client.key') } },
      ],
      contexts: [{ name: 'ipp-testbed', context: { cluster: 'ipp-testbed', user } }],
      'current-context': 'ipp-testbed',
    }),
    { mode: 0o600 },
  );
  return file;
}

async function readyz(server: string, caFile: string, bearer: string, path = '/readyz'): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      `${server}${path}`,
      { ca: readFileSync(caFile), headers: { authorization: `Bearer ${bearer}` }, timeout: 2_000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/**
 * kwok's stages as built (test/testbed/build.sh), but a deleted pod ends as a kubelet ends it (1.27
 * on, kubernetes#115331): its phase turns terminal (its containers stopped) and only then is it
 * removed. kwok's own pod-delete removes it at once, as only a force deletion does on a real node,
 * where the containers may still be running: ipp tells the two apart (a dedicated node is reused
 * only after its pod was seen to end).
 */
export function kwokStages(built: string): string {
  const stages = parseAllDocuments(built)
    .map((d) => d.toJS() as { metadata?: { name?: string }; spec?: Record<string, unknown> } | null)
    .filter((d): d is NonNullable<typeof d> => !!d);
  const remove = stages.find((d) => d.metadata?.name === 'pod-delete');
  if (!remove?.spec) throw new Error('kwok stages: no pod-delete stage to adapt');
  const deleting = { key: '.metadata.deletionTimestamp', operator: 'Exists' };
  const phase = (values: string[]) => ({ key: '.status.phase', operator: 'In', values });
  remove.spec.selector = { matchExpressions: [deleting, phase(['Succeeded', 'Failed'])] };
  const terminate = {
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'Stage',
    metadata: { name: 'pod-terminate' },
    spec: {
      resourceRef: { apiGroup: 'v1', kind: 'Pod' },
      selector: { matchExpressions: [deleting, phase(['Pending', 'Running'])] },
      next: {
        statusTemplate: [
          '{{ $now := Now }}',
          'containerStatuses:',
          '{{ range $index, $item := .spec.containers }}',
          '- image: {{ $item.image | Quote }}',
          '  name: {{ $item.name | Quote }}',
          '  ready: false',
          '  restartCount: 0',
          '  started: false',
          '  state:',
          '    terminated:',
          '      exitCode: 0',
          '      finishedAt: {{ $now | Quote }}',
          '      reason: Completed',
          '      startedAt: {{ $now | Quote }}',
          '{{ end }}',
          'phase: Succeeded',
          '',
        ].join('\n'),
      },
    },
  };
  return [...stages, terminate].map((d) => stringify(d)).join('---\n');
}

const kwokStagesFile = (assets: string, dir: string) => {
  const file = join(dir, 'kwok-stages.yaml');
  writeFileSync(file, kwokStages(readFileSync(join(assets, 'kwok-stages.yaml'), 'utf8')));
  return file;
};

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const limits = componentClients(opts.clients);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'ipp-testbed-'));
  const bin = (name: string) => join(opts.assets, 'bin', name);
  const pki = join(dir, 'pki');
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  writePki(pki);
  const caFile = join(pki, 'ca.crt');

  const admin: Identity = { user: 'ipp-testbed-admin', groups: ['system:masters'], token: token() };
  const identities: Record<string, Identity> = {
    scheduler: { user: 'system:kube-scheduler', groups: [], token: token() },
    controllerManager: { user: 'system:kube-controller-manager', groups: [], token: token() },
    // A user with no bindings at all: RBAC tests bind exactly what they grant.
    unprivileged: { user: 'ipp-testbed-user', groups: [], token: token() },
  };
  const tokens = [admin, ...Object.values(identities)]
    .map((i) => `${i.token},${i.user},${i.user},"${i.groups.join(',')}"`)
    .join('\n');
  writeFileSync(join(pki, 'tokens.csv'), `${tokens}\n`, { mode: 0o600 });

  const components: Child[] = [];
  const stop = async () => {
    for (const c of [...components].reverse()) await c.stop();
    components.length = 0;
    // IPP_KEEP_TESTBED=1 keeps data and logs (including the controller's) for a post-mortem.
    if (!opts.dir && !process.env.IPP_KEEP_TESTBED) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    log(`etcd on 127.0.0.1:${etcdPort}`);
    const etcd = startChild(
      'etcd',
      bin('etcd'),
      [
        '--name=testbed',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=testbed=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      join(logs, 'etcd.log'),
    );
    components.push(etcd);

    const server = `https://127.0.0.1:${apiPort}`;
    log(`kube-apiserver on ${server}`);
    const apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
      `--client-ca-file=${caFile}`,
      `--token-auth-file=${join(pki, 'tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      // Kubelets may only change their own Node and the pods bound to it (what EKS and GKE enable).
      '--enable-admission-plugins=NodeRestriction',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(pki, 'sa.key')}`,
      `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--allow-privileged=true',
      '--endpoint-reconciler-type=none',
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
    ];
    const startApiServer = () =>
      startChild('kube-apiserver', bin('kube-apiserver'), apiserverArgs, join(logs, 'kube-apiserver.log'));
    components.push(startApiServer());

    const failed = () => components.find((c) => c.process.exitCode !== null);
    const explain = () => components.map((c) => `--- ${c.name} (${c.logFile}) ---\n${tail(c.logFile)}`).join('\n');
    const apiserverReady = () =>
      waitFor(
        'kube-apiserver /readyz',
        async () => {
          const dead = failed();
          if (dead) throw new Fatal(`${dead.name} exited with code ${dead.process.exitCode}`);
          return readyz(server, caFile, admin.token);
        },
        120_000,
        explain,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${explain()}`);
      });
    await apiserverReady();
    const restartApiServer = async (signal: NodeJS.Signals = 'SIGTERM') => {
      const i = components.findIndex((c) => c.name === 'kube-apiserver');
      if (i < 0) throw new Error('kube-apiserver is not running: the control plane was stopped');
      await components[i]!.stop(signal);
      // The same port, right away: the kernel frees a listening socket as its process exits.
      components[i] = startApiServer();
      await apiserverReady();
    };

    const kubeconfig = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml(server, caFile, admin.user, admin.token), { mode: 0o600 });
    const kubeconfigFor = (name: string) => {
      const id = identities[name];
      if (!id) throw new Error(`no identity ${name}; known: ${Object.keys(identities).join(', ')}`);
      const file = join(dir, `${name}.kubeconfig`);
      writeFileSync(file, kubeconfigYaml(server, caFile, id.user, id.token), { mode: 0o600 });
      return file;
    };

    log(
      `kube-controller-manager${limits.controllerManager ? ` (client QPS ${limits.controllerManager.qps}/${limits.controllerManager.burst})` : ''}`,
    );
    components.push(
      startChild(
        'kube-controller-manager',
        bin('kube-controller-manager'),
        [
          `--kubeconfig=${kubeconfigFor('controllerManager')}`,
          '--leader-elect=false',
          '--bind-address=127.0.0.1',
          '--secure-port=0',
          '--use-service-account-credentials=true',
          `--service-account-private-key-file=${join(pki, 'sa.key')}`,
          `--root-ca-file=${caFile}`,
          '--cluster-cidr=10.244.0.0/16',
          '--service-cluster-ip-range=10.96.0.0/16',
          // Fast feedback for tests; the defaults are minutes.
          `--node-monitor-grace-period=${opts.nodeHeartbeat?.monitorGraceSeconds ?? 40}s`,
          '--concurrent-gc-syncs=5',
          ...clientFlags(limits.controllerManager),
        ],
        join(logs, 'kube-controller-manager.log'),
      ),
    );

    log(`kube-scheduler${limits.scheduler ? ` (client QPS ${limits.scheduler.qps}/${limits.scheduler.burst})` : ''}`);
    components.push(
      startChild(
        'kube-scheduler',
        bin('kube-scheduler'),
        [
          `--kubeconfig=${kubeconfigFor('scheduler')}`,
          '--leader-elect=false',
          '--bind-address=127.0.0.1',
          '--secure-port=0',
          ...clientFlags(limits.scheduler),
        ],
        join(logs, 'kube-scheduler.log'),
      ),
    );

    log('kwok');
    components.push(
      startChild(
        'kwok',
        bin('kwok'),
        [
          `--kubeconfig=${kubeconfig}`,
          `--config=${kwokStagesFile(opts.assets, dir)}`,
          '--manage-all-nodes=false',
          '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
          '--manage-nodes-with-label-selector=',
          '--manage-single-node=',
          '--cidr=10.0.0.1/16',
          '--node-ip=10.0.0.1',
          `--node-lease-duration-seconds=${opts.nodeHeartbeat?.leaseSeconds ?? 40}`,
        ],
        join(logs, 'kwok.log'),
      ),
    );

    // The default ServiceAccount is created by controller-manager; pods are refused until it exists.
    await waitFor(
      'the default ServiceAccount (kube-controller-manager is up)',
      async () => {
        const dead = failed();
        if (dead) throw new Fatal(`${dead.name} exited with code ${dead.process.exitCode}`);
        return readyz(server, caFile, admin.token, '/api/v1/namespaces/default/serviceaccounts/default');
      },
      120_000,
      explain,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${explain()}`);
    });

    return { dir, server, caFile, kubeconfig, identities, kubeconfigFor, components, restartApiServer, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
