// The world a chaos run acts on: its own control plane (so kube-apiserver can be restarted without
// touching anyone else's), the CRDs and webhook configuration the chart would install, the classes
// of the workload, and the controller replicas as child processes (leader election when there are
// several) that can be SIGKILLed and started again on the same ports. The webhook configuration
// points at a front that forwards each connection to a running replica, as a Service would.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
} from '@kubernetes/client-node';
import { API_VERSION, GROUP, VERSION } from '../../src/api/names.ts';
import type { InstanceClassSpec } from '../../src/api/types.ts';
import { webhookConfiguration } from '../../src/webhook/configuration.ts';
import { ensureAssets } from '../testbed/assets.ts';
import { startControlPlane, type ControlPlane } from '../testbed/controlplane.ts';
import { installCrds } from '../testbed/crds.ts';
import { freePort, startChild, tail, waitFor, type Child } from '../testbed/process.ts';
import type { FaultFile } from '../../providers/simulated/faults.ts';

const root = join(import.meta.dirname, '..', '..');
export const CLUSTER = 'chaos';
export const SYSTEM_NAMESPACE = 'ipp-system';
export const CLOUD_NAMESPACE = 'ipp-simulated-cloud';
export const WORKLOAD_NAMESPACE = 'chaos';

/** The workload's classes: one instance type, a fallback between two, and a large one. */
export const CLASSES: Record<string, InstanceClassSpec> = {
  'chaos-small': { namespaces: ['*'], instanceTypes: ['sim.small'] },
  'chaos-medium': { namespaces: ['*'], instanceTypes: ['sim.medium', 'sim.small'] },
  'chaos-large': { namespaces: ['*'], instanceTypes: ['sim.large'] },
};
const COMMON: Partial<InstanceClassSpec> = { idleTimeout: '3s', simulated: { bootDelay: '1s' } };

export interface Clients {
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
}

export interface World {
  plane: ControlPlane;
  c: Clients;
  /** The file the simulated provider reads its cloud faults from. */
  faultFile: string;
  /** The controller's replicas; with more than one they elect a leader. */
  controllers: ControllerProcess[];
  /** Stops everything; keeps the data and logs when asked to (or when IPP_KEEP_TESTBED is set). */
  stop(keep: boolean): Promise<void>;
}

export interface ControllerProcess {
  identity: string;
  logFile: string;
  metricsUrl: string;
  webhookUrl: string;
  /** Times it exited on its own (e.g. on losing its lease) and was started again, as a Deployment would. */
  exits: number;
  running(): boolean;
  start(): Promise<void>;
  kill(): Promise<void>;
  ready(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

function controllerProcess(
  plane: ControlPlane,
  faultFile: string,
  identity: string,
  leaderElect: boolean,
  ports: { metrics: number; webhook: number },
) {
  const logFile = join(plane.dir, 'logs', `${identity}.log`);
  const metricsUrl = `http://127.0.0.1:${ports.metrics}`;
  let child: Child | undefined;
  /** Set while the harness itself stops or kills it; any other exit is restarted after a second. */
  let meant = false;
  const running = () => !!child && child.process.exitCode === null && child.process.signalCode === null;
  const args = [
    join(root, 'src', 'main.ts'),
    `--cluster-name=${CLUSTER}`,
    `--kubeconfig=${plane.kubeconfig}`,
    '--providers=simulated',
    ...(leaderElect ? [] : ['--no-leader-elect']),
    `--identity=${identity}`,
    `--namespace=${SYSTEM_NAMESPACE}`,
    `--simulated-namespace=${CLOUD_NAMESPACE}`,
    `--simulated-faults=${faultFile}`,
    `--metrics-port=${ports.metrics}`,
    '--metrics-host=127.0.0.1',
    `--webhook-port=${ports.webhook}`,
    '--webhook-host=127.0.0.1',
    `--webhook-url=https://127.0.0.1:${ports.webhook}`,
    '--webhook-config-name=ipp',
    '--resync=2s',
    '--gc-interval=3s',
    '--gc-grace-period=10s',
    '--log-level=info',
  ];
  const proc: ControllerProcess = {
    identity,
    logFile,
    metricsUrl,
    webhookUrl: `https://127.0.0.1:${ports.webhook}`,
    exits: 0,
    running,
    async start() {
      if (running()) return;
      meant = false;
      const started = startChild('ipp', process.execPath, args, logFile);
      child = started;
      started.process.once('exit', () => {
        if (meant || child !== started) return;
        proc.exits++;
        setTimeout(() => void (meant || child !== started ? undefined : proc.start()), 1_000);
      });
    },
    async kill() {
      meant = true;
      if (running()) await child!.stop('SIGKILL');
    },
    async stop() {
      meant = true;
      await child?.stop('SIGTERM');
    },
    async ready(timeoutMs = 120_000) {
      await waitFor(
        'ipp /readyz',
        async () => {
          if (!running()) throw new Error(`the controller exited:\n${tail(logFile, 30)}`);
          return (await fetch(`${metricsUrl}/readyz`)).ok;
        },
        timeoutMs,
        () => tail(logFile, 30),
      );
    },
  };
  return proc;
}

/**
 * The webhook's Service: each connection goes to the first running replica (TLS passes through;
 * every replica serves the same certificate, from the Secret the first one wrote).
 */
async function webhookFront(replicas: ControllerProcess[]): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const target = replicas.find((r) => r.running());
    if (!target) return client.destroy();
    const upstream = connect(Number(new URL(target.webhookUrl).port), '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
    // kube-apiserver keeps its webhook connections open: close() alone would wait for them forever.
    close: async () => {
      const closed = new Promise((r) => server.close(r));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

export async function startWorld(log: (line: string) => void, replicas = 1): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'ipp-chaos-'));
  const plane = await startControlPlane({ assets: ensureAssets(), dir, log });
  const kc = new KubeConfig();
  kc.loadFromFile(plane.kubeconfig);
  const c: Clients = {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
  const faultFile = join(dir, 'cloud-faults.json');
  writeFileSync(faultFile, JSON.stringify({ windows: [] } satisfies FaultFile));
  const controllers: ControllerProcess[] = [];
  for (let i = 0; i < replicas; i++)
    controllers.push(
      controllerProcess(plane, faultFile, `ipp-${String.fromCharCode(97 + i)}`, replicas > 1, {
        metrics: await freePort(),
        webhook: await freePort(),
      }),
    );
  const front = await webhookFront(controllers);
  const stop = async (keep: boolean) => {
    for (const c of controllers) await c.stop();
    await front.close();
    await plane.stop();
    if (!keep && !process.env.IPP_KEEP_TESTBED) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await installCrds(kc);
    for (const name of [SYSTEM_NAMESPACE, CLOUD_NAMESPACE, WORKLOAD_NAMESPACE])
      await c.core.createNamespace({ body: { metadata: { name } } });
    await waitFor(
      'the default ServiceAccount of the workload namespace',
      async () => !!(await c.core.readNamespacedServiceAccount({ name: 'default', namespace: WORKLOAD_NAMESPACE })),
      60_000,
    );
    for (const [name, spec] of Object.entries(CLASSES))
      await c.custom.createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'instanceclasses',
        body: { apiVersion: API_VERSION, kind: 'InstanceClass', metadata: { name }, spec: { ...COMMON, ...spec } },
      });
    await kc.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: webhookConfiguration({
        name: 'ipp',
        client: { url: front.url },
        controllerNamespace: SYSTEM_NAMESPACE,
      }),
    });
    // One after the other: the first writes the webhook's serving certificate the others reuse.
    for (const c of controllers) {
      await c.start();
      await c.ready();
    }
  } catch (e) {
    await stop(true);
    throw new Error(`could not set up the chaos world (data and logs kept in ${dir}): ${(e as Error).message}`, {
      cause: e,
    });
  }
  return { plane, c, faultFile, controllers, stop };
}
