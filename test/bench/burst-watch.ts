// The burst bench's watches, in a thread of their own: each event is stamped as it is read, by a
// thread that does nothing else and runs at a higher priority where the OS allows (this thread only:
// the controller and testbed keep theirs), whatever the main thread is doing (a thousand creations
// and AdmissionReviews in flight), and handed to the main thread as a small record. It did not shorten
// the tail of node Ready → pinned as the bench sees it: in the run that tried it, pins of both trees
// were still seen 2.3–2.4 s after Ready at p99, though written within 0.43–0.52 s (docs/benchmarks.md).
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { CoreV1Api, CustomObjectsApi, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { GATE, GROUP, NODE_CLASS_LABEL, POD_INSTANCE_ANNOTATION, VERSION } from '../../src/api/names.ts';
import type { Instance } from '../../src/api/types.ts';
import { ApiClientConfig } from '../../src/kube/client.ts';
import { follow, instancePage, type Followed } from './observe.ts';

export interface WatchTarget {
  kubeconfig: string;
  namespace: string;
  /** The class whose nodes are watched. */
  cls: string;
  /** The run's pods carry this label selector. */
  podSelector: string;
}

/** What the main thread learns, one message per event (and one when every watch has begun). */
export type Seen =
  | { kind: 'pod'; at: number; name: string; claim?: string; gated: boolean; nodeName?: string; running: boolean }
  | { kind: 'instance'; at: number; name: string; launched: boolean; cls: string }
  | { kind: 'node'; at: number; name: string; ready: boolean }
  | { kind: 'listed'; existingInstances: string[]; existingNodes: string[] }
  | { kind: 'reopened'; pods: number };

/** What a burst times of a pod event. */
export const podSeen = (p: V1Pod, at: number): Seen => ({
  kind: 'pod',
  at,
  name: p.metadata!.name!,
  claim: p.metadata?.annotations?.[POD_INSTANCE_ANNOTATION],
  gated: (p.spec?.schedulingGates ?? []).some((g) => g.name === GATE),
  nodeName: p.spec?.nodeName,
  running: p.status?.phase === 'Running',
});

/** The Ready condition alone (isNodeReady in src/api/pods.ts also asks for a node not cordoned). */
const isReady = (n: V1Node) => (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

async function main(target: WatchTarget, post: (s: Seen) => void): Promise<Followed[]> {
  const kc = new ApiClientConfig({ qps: 0, burst: 1 });
  kc.loadFromFile(target.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const { namespace, podSelector, cls } = target;
  const nodeSelector = `${NODE_CLASS_LABEL}=${cls}`;
  const pods = await follow<V1Pod>(
    kc,
    `/api/v1/namespaces/${namespace}/pods`,
    podSelector,
    (c) => core.listNamespacedPod({ namespace, labelSelector: podSelector, limit: 500, _continue: c }),
    (_type, p, at) => post(podSeen(p, at)),
  );
  const instances = await follow<Instance>(
    kc,
    `/apis/${GROUP}/${VERSION}/instances`,
    '',
    (c) => instancePage(custom, c),
    (type, i, at) => {
      if (type !== 'DELETED')
        post({ kind: 'instance', at, name: i.metadata.name!, launched: !!i.status?.providerID, cls: i.spec.class });
    },
  );
  const nodes = await follow<V1Node>(
    kc,
    '/api/v1/nodes',
    nodeSelector,
    (c) => core.listNode({ labelSelector: nodeSelector, limit: 500, _continue: c }),
    (type, n, at) => {
      if (type !== 'DELETED') post({ kind: 'node', at, name: n.metadata!.name!, ready: isReady(n) });
    },
  );
  post({ kind: 'listed', existingInstances: [...instances.existing], existingNodes: [...nodes.existing] });
  return [pods, instances, nodes];
}

if (parentPort && workerData) {
  const port = parentPort;
  try {
    setPriority(0, -5);
  } catch {
    // Not allowed here (no CAP_SYS_NICE): the thread of its own still keeps the reads apart.
  }
  const watches = await main(workerData as WatchTarget, (s) => port.postMessage(s));
  port.on('message', (m: string) => {
    if (m === 'reopened') port.postMessage({ kind: 'reopened', pods: watches[0]!.reopened } satisfies Seen);
    if (m === 'stop') {
      for (const w of watches) w.stop();
      port.close();
    }
  });
}
