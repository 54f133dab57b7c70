// What a chaos run promises, counted: no leaked cloud instance (live, with no Instance object), no
// duplicate (an Instance with two live cloud instances, or two Nodes of one Instance), every pod on
// a node of its own class (the e2e isolation invariant, sampled all along), no pod killed that was
// not asked to go, and, once converged, every pod still wanted running on a node that exists.
import { EventsV1Api } from '@kubernetes/client-node';
import { NODE_INSTANCE_LABEL, TAG_CLUSTER, TAG_INSTANCE, GROUP, VERSION } from '../../src/api/names.ts';
import type { Instance } from '../../src/api/types.ts';
import type { V1Pod } from '@kubernetes/client-node';
import { WORKLOAD_LABEL, type Workload } from './workload.ts';
import { CLOUD_NAMESPACE, CLUSTER, WORKLOAD_NAMESPACE, type Clients } from './world.ts';

export interface Counts {
  leaked: number;
  duplicates: number;
  misplaced: number;
  killed: number;
  unplaced: number;
  /** IsolationViolation Events of the controller's auditor about the workload: each is a false alarm when misplaced is 0. */
  alarms: number;
}

export interface Findings {
  counts: Counts;
  /** One line per violation, for the report. */
  details: string[];
}

const count = <T>(items: T[], key: (t: T) => string | undefined) => {
  const m = new Map<string, number>();
  for (const i of items) {
    const k = key(i);
    if (k) m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
};

/** Counts now; the observer's latest sample must be fresh (call workload.observe() first). */
export async function check(c: Clients, w: Workload): Promise<Findings> {
  const details: string[] = [];
  const records = (
    await c.core.listNamespacedConfigMap({ namespace: CLOUD_NAMESPACE, labelSelector: `${TAG_CLUSTER}=${CLUSTER}` })
  ).items.map((cm) => {
    const rec = JSON.parse(cm.data?.instance ?? '{}') as { id?: string; tags?: Record<string, string> };
    return { id: rec.id ?? cm.metadata!.name!, instance: rec.tags?.[TAG_INSTANCE] };
  });
  const instances = (
    (await c.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instances' })) as {
      items: Instance[];
    }
  ).items;
  const names = new Set(instances.map((i) => i.metadata.name!));

  const leaked = records.filter((r) => !r.instance || !names.has(r.instance));
  for (const r of leaked) details.push(`leaked: cloud instance ${r.id} (tagged Instance ${r.instance ?? 'none'})`);

  let duplicates = 0;
  for (const [inst, n] of count(records, (r) => r.instance)) {
    if (n < 2) continue;
    duplicates++;
    details.push(`duplicate: Instance ${inst} has ${n} live cloud instances`);
  }
  for (const [inst, n] of count(w.nodes, (node) => node.metadata?.labels?.[NODE_INSTANCE_LABEL])) {
    if (n < 2) continue;
    duplicates++;
    details.push(`duplicate: ${n} Nodes carry ${NODE_INSTANCE_LABEL}=${inst}`);
  }

  for (const b of w.breaches.values())
    details.push(
      `misplaced: pod ${b.pod} (class ${b.podClass ?? 'none'}) on ${b.node} (class ${b.nodeClass ?? 'none'})` +
        (b.beside ? `, beside ${b.beside} under Pod isolation` : ''),
    );

  let killed = 0;
  for (const p of w.seen.values()) {
    // A pod that finished its work was not killed: kube-controller-manager's pod GC deletes finished
    // pods whose node is gone (a Job's pod, once its instance was torn down as idle).
    if (w.asked(p) || p.phase === 'Succeeded') continue;
    const now = w.current.get(p.uid);
    const why = !now
      ? `deleted (last seen ${p.phase || 'without a phase'}${p.node ? ` on ${p.node}` : ''})`
      : now.status?.phase === 'Failed'
        ? `failed: ${now.status.reason ?? ''} ${now.status.message ?? ''}`.trim()
        : now.metadata?.deletionTimestamp
          ? 'being deleted'
          : undefined;
    if (!why) continue;
    killed++;
    details.push(`killed: pod ${p.name} (${p.uid}) of ${p.workload}, never asked to go, ${why}`);
  }

  // Unplaced: what each workload still wants (replicas, or Job completions not done yet) and does not
  // have running on a Node that exists, whether its pods are pending or were never created at all
  // (refused at admission); pods kube-controller-manager never even tried to create are shown apart.
  const nodeNames = new Set(w.nodes.map((n) => n.metadata!.name!));
  const placed = (p: V1Pod) => p.status?.phase === 'Running' && !!p.spec?.nodeName && nodeNames.has(p.spec.nodeName);
  const succeeded = new Map(
    (await c.batch.listNamespacedJob({ namespace: WORKLOAD_NAMESPACE })).items.map((j) => [
      j.metadata!.name!,
      j.status?.succeeded ?? 0,
    ]),
  );
  // A ReplicaSet's refusals to create a pod (ipp's webhook refusing it, or timing out while no replica
  // answers), by the ReplicaSet's name or its Deployment's: its FailedCreate Events (best effort) or
  // its ReplicaFailure condition (kept until a create succeeds).
  const events = (await c.kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: WORKLOAD_NAMESPACE })).items;
  const replicaSets = (await c.apps.listNamespacedReplicaSet({ namespace: WORKLOAD_NAMESPACE })).items;
  const ownName = (of: string, n: string | undefined) => n === of || !!n?.startsWith(`${of}-`);
  const refusedFor = (name: string) =>
    events.some((e) => e.reason === 'FailedCreate' && ownName(name, e.regarding?.name)) ||
    replicaSets.some(
      (rs) =>
        ownName(name, rs.metadata?.name) &&
        (rs.status?.conditions ?? []).some((x) => x.type === 'ReplicaFailure' && x.status === 'True'),
    );
  let unplaced = 0;
  for (const [name, wl] of w.workloads) {
    if (wl.deleted) continue;
    const pods = w.live().filter((p) => p.metadata?.labels?.[WORKLOAD_LABEL] === name);
    const wanted = wl.kind === 'Job' ? Math.max(0, wl.count - (succeeded.get(name) ?? 0)) : wl.count;
    // A create that failed made no workload: nothing of it exists, nothing is wanted.
    if (wl.kind === 'Job' ? !succeeded.has(name) : !(await exists(c, wl.kind, name))) continue;
    const missing = Math.max(0, wanted - pods.filter(placed).length);
    if (!missing) continue;
    const waiting = pods
      .filter((p) => !placed(p))
      .map((p) => `${p.metadata!.name} ${p.status?.phase ?? ''}${p.spec?.nodeName ? ` on ${p.spec.nodeName}` : ''}`);
    if (wl.kind !== 'Job' && !waiting.length && !refusedFor(name)) {
      // No pod of it waits, and its ReplicaSet was never refused a create: kube-controller-manager did
      // not try (after an injected kube-apiserver restart, its watches can be refused by RBAC for a
      // while and its expectations wait minutes). The testbed's, not ipp's: shown, not counted. Not a
      // Job: it runs one pod at a time, and its next pod does not exist while the last one runs.
      details.push(
        `not counted: ${wl.kind} ${name} has ${wanted - missing} of ${wanted} pods running, no other pod, no FailedCreate Event and no ReplicaFailure: kube-controller-manager never created the rest`,
      );
      continue;
    }
    unplaced += missing;
    details.push(
      `unplaced: ${wl.kind} ${name} has ${wanted - missing} of ${wanted} pods running${waiting.length ? ` (${waiting.join(', ')})` : ''}`,
    );
  }

  const alarms = events.filter((e) => e.reason === 'IsolationViolation');
  for (const e of alarms) details.push(`alarm: ${e.regarding?.kind} ${e.regarding?.name}: ${e.note}`);

  return {
    counts: { leaked: leaked.length, duplicates, misplaced: w.breaches.size, killed, unplaced, alarms: alarms.length },
    details,
  };
}

export const clean = (c: Counts) => Object.values(c).every((n) => n === 0);

async function exists(c: Clients, kind: 'Deployment' | 'ReplicaSet', name: string): Promise<boolean> {
  const read =
    kind === 'Deployment'
      ? c.apps.readNamespacedDeployment({ name, namespace: WORKLOAD_NAMESPACE })
      : c.apps.readNamespacedReplicaSet({ name, namespace: WORKLOAD_NAMESPACE });
  return read.then(
    () => true,
    (e: unknown) => {
      if ((e as { code?: number }).code === 404) return false;
      throw e;
    },
  );
}
