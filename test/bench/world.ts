// Builds a cluster at scale directly through the API, without booting anything through a provider:
// ipp nodes (kwok keeps them Ready) with Ready Instances, their simulated cloud records and one ipp
// pod each, and any number of other pods bound to a few plain nodes (tolerating everything, so the
// node lifecycle controller never evicts them). Every object is what the controller would find in a
// real cluster of that size; only the way it came to exist is short-cut.
import { createHash } from 'node:crypto';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { mergePatch } from '../../src/kube/patch.ts';
import { API_VERSION, FINALIZER, GROUP, NODE_CLASS_LABEL, NODE_INSTANCE_LABEL, VERSION } from '../../src/api/names.ts';

export interface WorldOptions {
  cluster: string;
  cls: string;
  /** Namespace of the ipp and other pods. */
  namespace: string;
  /** Namespace of the simulated cloud's records (the controller's --simulated-namespace). */
  cloudNamespace: string;
  ippNodes: number;
  /** Requests in flight while building. */
  parallel?: number;
}

const isConflict = (e: unknown) => (e as { code?: number }).code === 409;
const ignoreExisting = (e: unknown) => {
  if (!isConflict(e)) throw e;
};

/** Runs fn(0..n-1) with at most `parallel` in flight. */
export async function inParallel(n: number, parallel: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/** A typical Deployment pod as the API stores it: a couple of containers, env, mounts, probes. */
export function otherPod(name: string, nodeName: string): V1Pod {
  const container = (n: string) => ({
    name: n,
    image: `registry.example.com/team/${n}:1.4.2`,
    args: ['--port=8080', '--log-format=json'],
    env: ['LOG_LEVEL', 'REGION', 'SERVICE_NAME', 'OTEL_EXPORTER', 'FEATURE_FLAGS'].map((e) => ({
      name: e,
      value: `${e.toLowerCase()}-value`,
    })),
    ports: [{ name: 'http', containerPort: 8080 }],
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
    volumeMounts: [{ name: 'config', mountPath: '/etc/app' }],
  });
  return {
    metadata: {
      name,
      labels: { app: 'web', 'pod-template-hash': '5d8f7c9b6' },
      annotations: { 'prometheus.io/scrape': 'true' },
    },
    spec: {
      nodeName,
      containers: [container('app'), container('proxy')],
      volumes: [{ name: 'config', configMap: { name: 'app-config' } }],
      tolerations: [{ operator: 'Exists' }],
    },
  };
}

export const otherNodeName = (cluster: string, i: number) => `${cluster}-plain-${i}`;

/** Ensures `count` other pods exist in the namespace (creates the missing ones), spread over 10 plain nodes. */
export async function ensureOtherPods(kc: KubeConfig, o: WorldOptions, count: number): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (let i = 0; i < 10; i++)
    await core.createNode({ body: { metadata: { name: otherNodeName(o.cluster, i) } } }).catch(ignoreExisting);
  const have = new Set<string>();
  let cont: string | undefined;
  do {
    const page = await core.listNamespacedPod({
      namespace: o.namespace,
      labelSelector: 'app=web',
      limit: 500,
      _continue: cont,
    });
    for (const p of page.items) have.add(p.metadata!.name!);
    cont = page.metadata?._continue || undefined;
  } while (cont);
  const missing = Array.from({ length: count }, (_, i) => `web-${i}`).filter((n) => !have.has(n));
  await inParallel(missing.length, o.parallel ?? 32, async (i) => {
    await core
      .createNamespacedPod({ namespace: o.namespace, body: otherPod(missing[i]!, otherNodeName(o.cluster, i % 10)) })
      .catch(ignoreExisting);
  });
}

/** N ipp nodes, each with its Ready Instance, its simulated cloud record and one pod pinned to it. */
export async function ensureIppWorld(kc: KubeConfig, o: WorldOptions): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  await custom
    .createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'instanceclasses',
      body: {
        apiVersion: API_VERSION,
        kind: 'InstanceClass',
        metadata: { name: o.cls },
        spec: {
          instanceTypes: ['sim.small'],
          namespaces: [o.namespace],
          idleTimeout: '1h',
          simulated: { bootDelay: '0s' },
        },
      },
    })
    .catch(ignoreExisting);
  const now = new Date().toISOString();
  await inParallel(o.ippNodes, o.parallel ?? 16, async (i) => {
    const instance = `${o.cls}-${String(i).padStart(5, '0')}`;
    const id = `i-${createHash('sha256').update(instance).digest('hex').slice(0, 17)}`;
    const zone = 'sim-zone-a';
    const providerID = `sim:///${zone}/${id}`;
    const node = `sim-${id}`;
    const labels = { [NODE_CLASS_LABEL]: o.cls, [NODE_INSTANCE_LABEL]: instance };
    // As the controller launches them: NoSchedule for the scheduler, NoExecute for the kubelet.
    const taints = ['NoSchedule', 'NoExecute'].map((effect) => ({ key: NODE_CLASS_LABEL, value: o.cls, effect }));
    const tags = { 'ipp.dev/cluster': o.cluster, 'ipp.dev/class': o.cls, 'ipp.dev/instance': instance };
    // The simulated cloud's record, as SimulatedProvider.create writes it.
    await core
      .createNamespacedConfigMap({
        namespace: o.cloudNamespace,
        body: {
          metadata: {
            name: id,
            labels: { 'ipp.dev/cluster': o.cluster, 'ipp.dev/class': o.cls, 'sim.ipp.dev/state': 'running' },
          },
          data: {
            instance: JSON.stringify({
              id,
              zone,
              instanceType: 'sim.small',
              launchedAt: now,
              bootDelayMs: 0,
              register: true,
              node: { labels, taints },
              tags,
            }),
          },
        },
      })
      .catch(ignoreExisting);
    await core
      .createNode({
        body: {
          metadata: {
            name: node,
            labels: {
              ...labels,
              'kubernetes.io/hostname': node,
              'node.kubernetes.io/instance-type': 'sim.small',
              'topology.kubernetes.io/zone': zone,
              type: 'kwok',
              'sim.ipp.dev/cluster': o.cluster,
            },
            annotations: { 'kwok.x-k8s.io/node': 'fake' },
          },
          spec: { providerID, taints },
        },
      })
      .catch(ignoreExisting);
    const resources = { cpu: '2000m', memory: '4Gi', pods: '110' };
    await core.patchNodeStatus(
      { name: node, body: { status: { capacity: resources, allocatable: resources } } },
      mergePatch,
    );
    const pod = `${o.cls}-pod-${i}`;
    const created = await core
      .createNamespacedPod({
        namespace: o.namespace,
        body: {
          metadata: { name: pod, labels: { 'ipp-class': o.cls }, annotations: { 'ipp.dev/instance': instance } },
          spec: {
            nodeName: node,
            containers: [{ name: 'postfix', image: 'postfix' }],
            tolerations: ['NoSchedule', 'NoExecute'].map((effect) => ({
              key: NODE_CLASS_LABEL,
              operator: 'Equal',
              value: o.cls,
              effect,
            })),
          },
        },
      })
      .catch((e: unknown) => (ignoreExisting(e), undefined));
    await custom
      .createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'instances',
        body: {
          apiVersion: API_VERSION,
          kind: 'Instance',
          metadata: { name: instance, finalizers: [FINALIZER] },
          spec: { class: o.cls },
        },
      })
      .catch(ignoreExisting);
    await custom.patchClusterCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        plural: 'instances',
        name: instance,
        body: {
          status: {
            phase: 'Ready',
            provider: 'simulated',
            providerID,
            instanceType: 'sim.small',
            zone,
            nodeName: node,
            launchedAt: now,
            registeredAt: now,
            readyAt: now,
            pods: created ? [{ namespace: o.namespace, name: pod, uid: created.metadata!.uid! }] : [],
          },
        },
      },
      mergePatch,
    );
  });
}

/** The node agents every cluster runs: trusted (kube-system) DaemonSets tolerating every taint, so on ipp nodes too. */
export const WORLD_DAEMONSETS = ['node-exporter', 'log-shipper', 'cni-agent'];

/**
 * Creates the world's DaemonSets and waits until kube-controller-manager has created their pods on
 * every node and kwok reports them available. Returns how many pods they run.
 */
export async function ensureDaemonSets(
  kc: KubeConfig,
  o: { prefix?: string; nodeSelector?: Record<string, string>; timeoutMs?: number } = {},
): Promise<number> {
  const apps = kc.makeApiClient(AppsV1Api);
  const names = WORLD_DAEMONSETS.map((n) => `${o.prefix ?? ''}${n}`);
  const timeoutMs = o.timeoutMs ?? 30 * 60_000;
  for (const name of names) {
    const labels = { app: name };
    await apps
      .createNamespacedDaemonSet({
        namespace: 'kube-system',
        body: {
          metadata: { name, labels },
          spec: {
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                containers: [
                  {
                    name,
                    image: `registry.example.com/agents/${name}:2.1.0`,
                    resources: { requests: { cpu: '10m', memory: '32Mi' } },
                  },
                ],
                tolerations: [{ operator: 'Exists' }],
                // The plain nodes holding the other pods have no kubelet (kwok does not run them, so as
                // not to report 30,000 pods): agents go to the nodes kwok runs, ipp's among them.
                nodeSelector: o.nodeSelector ?? { type: 'kwok' },
              },
            },
          },
        },
      })
      .catch(ignoreExisting);
  }
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const sets = await Promise.all(
      names.map((name) => apps.readNamespacedDaemonSet({ name, namespace: 'kube-system' })),
    );
    const desired = sets.reduce((n, d) => n + (d.status?.desiredNumberScheduled ?? 0), 0);
    const available = sets.reduce((n, d) => n + (d.status?.numberAvailable ?? 0), 0);
    if (desired > 0 && available >= desired) return available;
    const line = `[bench] DaemonSet pods available: ${available} of ${desired}`;
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (Date.now() > deadline)
      throw new Error(`${line} after ${timeoutMs / 1000} s: the world's DaemonSets never settled`);
    await new Promise((r) => setTimeout(r, 10_000));
  }
}
