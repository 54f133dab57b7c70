// Live heap per cached non-ipp pod, on its own (no cluster): LIST pages of a typical Deployment pod as
// the API server serves it, decoded and cached as the pod informer does (parseLean, leanPod, the pod
// indexes). `node --expose-gc test/bench/occupant-micro.ts [pods]`.
import { parseLean } from '../../src/kube/decode.ts';
import { IndexedStore } from '../../src/kube/store.ts';
import { leanPod } from '../../src/state/lean.ts';
import { POD_INDEXERS } from '../../src/state/cluster.ts';
import type { V1Pod } from '@kubernetes/client-node';
import { otherPod } from './world.ts';

const n = Number(process.argv[2] ?? 50_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

/** The pod as a LIST returns it: server-set metadata, managedFields, a running status. */
function served(i: number): V1Pod {
  const p = otherPod(`web-5d8f7c9b6-${i.toString(36).padStart(5, '0')}`, `bench-plain-${i % 10}`);
  const uid = `${(0x10000000 + i).toString(16)}-78e2-42bc-8238-c45c7aeefd26`;
  p.metadata = {
    ...p.metadata,
    namespace: 'bench',
    uid,
    resourceVersion: String(100_000 + i),
    // As a LIST's JSON holds it (the Date type is client-node's after its own decoding).
    creationTimestamp: new Date(1_700_000_000_000 + i * 1000).toISOString() as unknown as Date,
    generateName: 'web-5d8f7c9b6-',
    ownerReferences: [
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: 'web-5d8f7c9b6',
        uid: 'b1f0c3a2-1111-4bcd-9e0f-0123456789ab',
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
    managedFields: [
      {
        manager: 'kube-controller-manager',
        operation: 'Update',
        apiVersion: 'v1',
        time: '2026-11-01T00:00:00Z' as unknown as Date,
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } } },
      },
    ],
  };
  p.spec = {
    ...p.spec!,
    schedulerName: 'default-scheduler',
    priority: 0,
    restartPolicy: 'Always',
    dnsPolicy: 'ClusterFirst',
    serviceAccountName: 'default',
  };
  p.status = {
    phase: 'Running',
    podIP: `10.0.${(i >> 8) & 255}.${i & 255}`,
    conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-01T00:00:00Z' as unknown as Date }],
    containerStatuses: [
      { name: 'app', ready: true, restartCount: 0, image: 'x', imageID: 'y', started: true } as never,
    ],
  };
  return p;
}

const PAGE = 500;
function page(start: number): string {
  const items = [];
  for (let i = start; i < Math.min(n, start + PAGE); i++) items.push(served(i));
  return JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items });
}

gc();
const before = process.memoryUsage().heapUsed;
const store = new IndexedStore<V1Pod>(POD_INDEXERS);
for (let start = 0; start < n; start += PAGE) {
  for (const p of parseLean<{ items: V1Pod[] }>(page(start)).items) store.upsert(leanPod(p));
}
gc();
gc();
const after = process.memoryUsage().heapUsed;
console.log(
  `${n} pods cached: ${((after - before) / n).toFixed(0)} bytes of live heap per pod (store size ${store.size})`,
);
