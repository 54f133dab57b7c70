// Writes to pods: the claim (which Instance a pod gets), the pin (which node), the bind, and the
// removal of a pod that can never run where it was pinned. Each is one optimistic request guarded by
// the resourceVersion the decision was made on, so a decision taken on a stale cache fails with
// 409/422 instead of overwriting a newer pod. The claim, pin and bind go in the placement lane of the
// client's rate limit (lanes.ts): a waiting pod's own writes never queue behind status writes and Events.
import {
  CoreV1Api,
  type KubeConfig,
  type V1NodeSelectorTerm,
  type V1Pod,
  type V1PodCondition,
} from '@kubernetes/client-node';
import { GATE, POD_INSTANCE_ANNOTATION, POD_PINNED_AT_ANNOTATION } from '../api/names.ts';
import { ignoreNotFound, isConflict, isNotFound } from './errors.ts';
import { inPlacementLane } from './lanes.ts';
import { pointer, strategicMergePatch } from './patch.ts';
import { send, sendJson } from './request.ts';

export interface PodWrites {
  /** Records on the pod which Instance it gets; returns the pod as written (undefined when unknown). */
  claim(pod: V1Pod, instance: string): Promise<V1Pod | undefined>;
  /** Requires the node by name and lifts the gate; kube-scheduler binds, evaluating that node only. */
  pin(pod: V1Pod, node: string): Promise<void>;
  /** Binds the pod to the node (bind mode: the pod waits for scheduler "ipp"). */
  bind(pod: V1Pod, node: string): Promise<void>;
  /** Asks the Eviction API to remove the pod (PodDisruptionBudgets apply: 429 means not now). */
  evict(pod: V1Pod): Promise<void>;
  /** Deletes exactly this pod (uid and version), so that its controller recreates it. */
  delete(pod: V1Pod): Promise<void>;
  /**
   * Deletes this pod (uid) at once, grace period 0: only for a pod whose machine the cloud reports
   * gone, which no kubelet will ever confirm the end of. A pod already gone, or replaced by another
   * of the same name, is left alone.
   */
  forceDelete(pod: V1Pod): Promise<void>;
  /**
   * Sets ipp's own condition on the pod (pods/status). A strategic merge on conditions by type: the
   * kubelet's and kube-scheduler's conditions stay as they are. Only this pod (uid): a pod recreated
   * under the same name is left alone.
   */
  setCondition(pod: V1Pod, condition: V1PodCondition): Promise<void>;
}

const guard = (pod: V1Pod) => ({ op: 'test', path: '/metadata/resourceVersion', value: pod.metadata!.resourceVersion });

/**
 * JSON Patch requiring node `node` by name: `metadata.name In [node]` in every required term (terms
 * are ORed, so one term without it would let the pod go elsewhere). A gated pod may gain such
 * requirements (KEP-3838), never lose any.
 */
export function pinOps(pod: V1Pod, node: string): object[] {
  const byName = { key: 'metadata.name', operator: 'In', values: [node] };
  const base = ['spec', 'affinity', 'nodeAffinity', 'requiredDuringSchedulingIgnoredDuringExecution'];
  const affinity = pod.spec?.affinity;
  const required = affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const fresh = { nodeSelectorTerms: [{ matchFields: [byName] }] };
  if (!affinity)
    return [
      {
        op: 'add',
        path: '/spec/affinity',
        value: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: fresh } },
      },
    ];
  if (!affinity.nodeAffinity)
    return [
      {
        op: 'add',
        path: '/spec/affinity/nodeAffinity',
        value: { requiredDuringSchedulingIgnoredDuringExecution: fresh },
      },
    ];
  if (!required?.nodeSelectorTerms?.length) return [{ op: 'add', path: pointer(...base), value: fresh }];
  return required.nodeSelectorTerms.map((t: V1NodeSelectorTerm, i) =>
    t.matchFields?.length
      ? { op: 'add', path: `${pointer(...base, 'nodeSelectorTerms', i, 'matchFields')}/-`, value: byName }
      : { op: 'add', path: pointer(...base, 'nodeSelectorTerms', i, 'matchFields'), value: [byName] },
  );
}

/** The API path of a pod (and a subresource of it). */
const podPath = (pod: V1Pod, sub = '') =>
  `/api/v1/namespaces/${encodeURIComponent(pod.metadata!.namespace!)}/pods/${encodeURIComponent(pod.metadata!.name!)}${sub}`;

/** Direct reads of pods, to confirm what the cache shows before a step that cannot be undone. */
export interface PodLookup {
  /** The pods bound to `node` as the API server has them now. */
  onNode(node: string): Promise<V1Pod[]>;
}

export class PodReader implements PodLookup {
  private readonly core: CoreV1Api;
  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async onNode(node: string): Promise<V1Pod[]> {
    return (await this.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items;
  }
}

export class PodWriter implements PodWrites {
  private readonly kc: KubeConfig;
  private readonly core: CoreV1Api;
  constructor(kc: KubeConfig) {
    this.kc = kc;
    this.core = kc.makeApiClient(CoreV1Api);
  }

  // The claim, pin and bind are a burst's hot writes: plain JSON requests (request.ts).
  async claim(pod: V1Pod, instance: string): Promise<V1Pod> {
    const ops: object[] = [guard(pod)];
    if (!pod.metadata!.annotations) ops.push({ op: 'add', path: '/metadata/annotations', value: {} });
    ops.push({ op: 'add', path: pointer('metadata', 'annotations', POD_INSTANCE_ANNOTATION), value: instance });
    return inPlacementLane(() => sendJson<V1Pod>(this.kc, { method: 'PATCH', path: podPath(pod), body: ops }));
  }

  async pin(pod: V1Pod, node: string): Promise<void> {
    const gates = pod.spec!.schedulingGates ?? [];
    const ops: object[] = [guard(pod), ...pinOps(pod, node)];
    ops.push({ op: 'replace', path: '/spec/schedulingGates', value: gates.filter((g) => g.name !== GATE) });
    // When, so that a refusal is timed from the pin, not from the pod's creation (refusedSince).
    if (!pod.metadata!.annotations) ops.push({ op: 'add', path: '/metadata/annotations', value: {} });
    const at = new Date().toISOString();
    ops.push({ op: 'add', path: pointer('metadata', 'annotations', POD_PINNED_AT_ANNOTATION), value: at });
    await inPlacementLane(() => send(this.kc, { method: 'PATCH', path: podPath(pod), body: ops }));
  }

  async bind(pod: V1Pod, node: string): Promise<void> {
    const { name, namespace, uid } = pod.metadata as { name: string; namespace: string; uid?: string };
    // With the pod's UID, as kube-scheduler binds: a pod of the same name recreated meanwhile (a
    // StatefulSet's) is another pod, and the API server refuses the binding (409) instead of placing it.
    const body = {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name, namespace, ...(uid ? { uid } : {}) },
      target: { apiVersion: 'v1', kind: 'Node', name: node },
    };
    await inPlacementLane(() => send(this.kc, { method: 'POST', path: podPath(pod, '/binding'), body }));
  }

  async evict(pod: V1Pod): Promise<void> {
    const { name, namespace, uid } = pod.metadata as { name: string; namespace: string; uid?: string };
    await ignoreNotFound(
      this.core.createNamespacedPodEviction({
        name,
        namespace,
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name, namespace },
          // The pod the drain read, not one recreated since under its name (a StatefulSet's) elsewhere.
          ...(uid ? { deleteOptions: { preconditions: { uid } } } : {}),
        },
      }),
    ).catch((e: unknown) => {
      // That pod is gone: nothing left to evict.
      if (!isConflict(e)) throw e;
    });
  }

  async delete(pod: V1Pod): Promise<void> {
    const { name, namespace, uid, resourceVersion } = pod.metadata as Record<string, string>;
    await this.core.deleteNamespacedPod({
      name: name!,
      namespace: namespace!,
      body: { preconditions: { uid, resourceVersion } },
    });
  }

  async setCondition(pod: V1Pod, condition: V1PodCondition): Promise<void> {
    const { name, namespace, uid } = pod.metadata as Record<string, string>;
    await this.core.patchNamespacedPodStatus(
      { name: name!, namespace: namespace!, body: { metadata: { uid }, status: { conditions: [condition] } } },
      strategicMergePatch,
    );
  }

  async forceDelete(pod: V1Pod): Promise<void> {
    const { name, namespace, uid } = pod.metadata as Record<string, string>;
    try {
      await this.core.deleteNamespacedPod({
        name: name!,
        namespace: namespace!,
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid } },
      });
    } catch (e) {
      if (!isNotFound(e) && !isConflict(e)) throw e;
    }
  }
}
