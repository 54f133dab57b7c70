// Runs the real ipp controller (node src/main.ts) as a separate process against the testbed, the
// way a Deployment would, so tests can SIGKILL and restart it. Also installs the CRDs and the
// webhook configuration the Helm chart would install.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { installCrds as installCrdsInto } from '../../testbed/crds.ts';
import { afterAll, beforeAll, inject } from 'vitest';
import { freePort, startChild, tail } from '../../testbed/process.ts';
import { webhookConfiguration } from '../../../src/webhook/configuration.ts';
import { API_VERSION, GROUP, VERSION } from '../../../src/api/names.ts';
import type { Instance, InstanceClass, InstanceClassSpec } from '../../../src/api/types.ts';
import { clients, eventually, namespace, suffix, type Clients } from './cluster.ts';

const root = join(import.meta.dirname, '..', '..', '..');

/** Applies charts/ipp/crds (see test/testbed/crds.ts). */
export const installCrds = (c: Clients) => installCrdsInto(c.kc);

export interface IppOptions {
  clients: Clients;
  clusterName: string;
  /** The controller's namespace (lease, webhook Secret); must exist. */
  namespace: string;
  placement?: 'pin' | 'bind';
  webhook?: boolean;
  /**
   * Install (replace) the cluster's webhook configuration pointing at this replica. Default true;
   * false for a second replica of the same cluster, which serves the webhook too but must not take
   * the configuration from the first (see pointWebhookAt).
   */
  installWebhookConfiguration?: boolean;
  leaderElect?: boolean;
  identity?: string;
  /** Providers the controller runs (--providers); default simulated. */
  providers?: string[];
  extraArgs?: string[];
  /** Added to the test process's environment (e.g. AWS_* for the SDK's default credential chain). */
  env?: NodeJS.ProcessEnv;
  /** Kubeconfig the controller runs with (default: the testbed's admin), e.g. a ServiceAccount token's. */
  kubeconfig?: string;
  /** Wait for /readyz before returning (default true); false to watch a replica that must stay unready. */
  waitReady?: boolean;
  /**
   * The controller's user name as the API server knows it (a ServiceAccount's): the webhook
   * configuration then has the chart's enforce.evictions.ipp.dev, which sees that user's evictions.
   */
  controllerUsername?: string;
}

export interface Ipp {
  metricsUrl: string;
  /** Base URL of this replica's admission webhook; '' without one. */
  webhookUrl: string;
  logFile: string;
  process: ChildProcess;
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<void>;
  /** SIGKILL: no cleanup at all. */
  kill(): Promise<void>;
  logs(): string;
}

export async function startIpp(o: IppOptions): Promise<Ipp> {
  const metricsPort = await freePort();
  const webhookPort = o.webhook === false ? 0 : await freePort();
  if (o.webhook !== false && o.installWebhookConfiguration !== false)
    await upsertWebhookConfiguration(o.clients, o.clusterName, o.namespace, webhookPort, o.controllerUsername);
  const logFile = join(inject('testbedDir'), 'logs', `ipp-${o.clusterName}-${o.identity ?? 'a'}-${Date.now()}.log`);
  const args = [
    join(root, 'src', 'main.ts'),
    `--cluster-name=${o.clusterName}`,
    `--kubeconfig=${o.kubeconfig ?? inject('kubeconfig')}`,
    `--providers=${(o.providers ?? ['simulated']).join(',')}`,
    `--placement=${o.placement ?? 'pin'}`,
    `--namespace=${o.namespace}`,
    `--simulated-namespace=${o.namespace}`,
    `--metrics-port=${metricsPort}`,
    '--metrics-host=127.0.0.1',
    `--identity=${o.identity ?? 'ipp-a'}`,
    '--resync=2s',
    '--gc-interval=3s',
    '--gc-grace-period=10s',
    '--log-level=debug',
    ...(o.leaderElect ? [] : ['--no-leader-elect']),
    ...(o.webhook === false
      ? ['--no-webhook']
      : [
          `--webhook-port=${webhookPort}`,
          '--webhook-host=127.0.0.1',
          `--webhook-url=https://127.0.0.1:${webhookPort}`,
          `--webhook-config-name=ipp-${o.clusterName}`,
        ]),
    ...(o.extraArgs ?? []),
  ];
  // Under setpriv --pdeathsig like every testbed process: a test runner that dies takes it along.
  const proc = startChild('ipp', process.execPath, args, logFile, { ...process.env, ...o.env }).process;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;
  const ipp: Ipp = {
    metricsUrl,
    webhookUrl: o.webhook === false ? '' : `https://127.0.0.1:${webhookPort}`,
    logFile,
    process: proc,
    logs: () => tail(logFile, 60),
    async stop() {
      if (exited()) return;
      const done = once(proc, 'exit');
      proc.kill('SIGTERM');
      await done;
    },
    async kill() {
      if (exited()) return;
      const done = once(proc, 'exit');
      proc.kill('SIGKILL');
      await done;
    },
  };
  if (o.waitReady === false) return ipp;
  await eventually(
    'ipp /readyz',
    async () => {
      if (exited()) throw new Error(`ipp exited with ${proc.exitCode}:\n${ipp.logs()}`);
      const r = await fetch(`${metricsUrl}/readyz`);
      if (!r.ok) throw new Error(`readyz ${r.status}`);
    },
    60_000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${ipp.logs()}`);
  });
  return ipp;
}

/** The MutatingWebhookConfiguration the chart would install, pointing at a controller outside the cluster. */
async function upsertWebhookConfiguration(
  c: Clients,
  clusterName: string,
  namespace: string,
  port: number,
  controllerUsername?: string,
): Promise<void> {
  const api = c.kc.makeApiClient(AdmissionregistrationV1Api);
  const name = `ipp-${clusterName}`;
  const body = webhookConfiguration({
    name,
    client: { url: `https://127.0.0.1:${port}` },
    controllerNamespace: namespace,
    ...(controllerUsername ? { controllerUsername } : {}),
  });
  await api.deleteMutatingWebhookConfiguration({ name }).catch(() => {});
  await api.createMutatingWebhookConfiguration({ body });
}

/**
 * Points the cluster's webhook configuration at another replica (same namespace, so same serving
 * certificate), keeping the caBundle the controllers patched in; e.g. before stopping the one it
 * pointed at.
 */
export async function pointWebhookAt(c: Clients, clusterName: string, ipp: Ipp): Promise<void> {
  if (!ipp.webhookUrl) throw new Error('this replica serves no webhook');
  const api = c.kc.makeApiClient(AdmissionregistrationV1Api);
  const name = `ipp-${clusterName}`;
  const cfg = await api.readMutatingWebhookConfiguration({ name });
  const body = (cfg.webhooks ?? []).flatMap((w, i) => [
    { op: 'test', path: `/webhooks/${i}/name`, value: w.name },
    {
      op: 'replace',
      path: `/webhooks/${i}/clientConfig/url`,
      value: `${ipp.webhookUrl}${new URL(w.clientConfig.url!).pathname}`,
    },
  ]);
  await api.patchMutatingWebhookConfiguration({ name, body });
}

/** Removes what startIpp installed cluster-wide, so later test files are unaffected. */
export async function removeWebhookConfiguration(c: Clients, clusterName: string): Promise<void> {
  await c.kc
    .makeApiClient(AdmissionregistrationV1Api)
    .deleteMutatingWebhookConfiguration({ name: `ipp-${clusterName}` })
    .catch(() => {});
}

export async function createClass(c: Clients, name: string, spec: InstanceClassSpec): Promise<void> {
  await c.custom.createClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: 'instanceclasses',
    // The CRD requires spec.namespaces; tests that are not about it open the class to every namespace.
    body: { apiVersion: API_VERSION, kind: 'InstanceClass', metadata: { name }, spec: { namespaces: ['*'], ...spec } },
  });
}

export async function listInstances(c: Clients, cls?: string): Promise<Instance[]> {
  const list = (await c.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instances' })) as {
    items: Instance[];
  };
  return list.items.filter((i) => !cls || i.spec.class === cls);
}

export async function getClass(c: Clients, name: string): Promise<InstanceClass> {
  return (await c.custom.getClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: 'instanceclasses',
    name,
  })) as InstanceClass;
}

export async function deleteClasses(c: Clients, names: string[]): Promise<void> {
  for (const name of names) {
    await c.custom
      .deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instanceclasses', name })
      .catch(() => {});
  }
}

/** Reads one sample of a metric from the controller's /metrics, or undefined. */
export async function metric(ipp: Ipp, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const text = await (await fetch(`${ipp.metricsUrl}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

/**
 * One test file's world: CRDs installed, a workload namespace, the controller's own namespace
 * (admission never touches it) and, once `start()` ran, the controller. Everything it made is
 * removed after the file, classes registered in `classes` included.
 */
export interface IppEnvironment {
  c: Clients;
  ns: string;
  system: string;
  cluster: string;
  classes: string[];
  ipp: Ipp | undefined;
  /** (Re)starts the controller with these options (clusterName and namespace are filled in). */
  start(o?: Partial<IppOptions>): Promise<Ipp>;
}

export function useIppEnvironment(prefix: string): IppEnvironment {
  const env = {
    cluster: `${prefix}-${suffix()}`,
    classes: [] as string[],
    ipp: undefined,
  } as unknown as IppEnvironment;
  env.start = async (o = {}) => {
    env.ipp = await startIpp({ clients: env.c, clusterName: env.cluster, namespace: env.system, ...o });
    return env.ipp;
  };
  beforeAll(async () => {
    env.c = clients();
    await installCrds(env.c);
    env.ns = await namespace(env.c, prefix);
    env.system = await namespace(env.c, 'ipp-system');
  });
  afterAll(async () => {
    await env.ipp?.stop();
    await removeWebhookConfiguration(env.c, env.cluster);
    await env.c.core.deleteNamespace({ name: env.ns }).catch(() => {});
    await env.c.core.deleteNamespace({ name: env.system }).catch(() => {});
    await deleteClasses(env.c, env.classes);
  });
  return env;
}
