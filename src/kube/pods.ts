// Writes to pods: the claim (which Instance a pod gets), the pin (which node) and the bind. Each is
// one optimistic request guarded by the resourceVersion the decision was made on, so a decision
// taken on a stale cache fails with 409/422 instead of overwriting a newer pod.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { GATE, NODE_INSTANCE_LABEL, POD_INSTANCE_ANNOTATION } from '../api/names.ts';
import { pointer } from './patch.ts';

export interface PodWrites {
  /** Records on the pod which Instance it gets. */
  claim(pod: V1Pod, instance: string): Promise<void>;
  /** Selects the Instance's node and lifts the gate; kube-scheduler binds. */
  pin(pod: V1Pod, instance: string): Promise<void>;
  /** Binds the pod to the node (bind mode: the pod waits for scheduler "ipp"). */
  bind(pod: V1Pod, node: string): Promise<void>;
}

const guard = (pod: V1Pod) => ({ op: 'test', path: '/metadata/resourceVersion', value: pod.metadata!.resourceVersion });

export class PodWriter implements PodWrites {
  private readonly core: CoreV1Api;
  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async claim(pod: V1Pod, instance: string): Promise<void> {
    const ops: object[] = [guard(pod)];
    if (!pod.metadata!.annotations) ops.push({ op: 'add', path: '/metadata/annotations', value: {} });
    ops.push({ op: 'add', path: pointer('metadata', 'annotations', POD_INSTANCE_ANNOTATION), value: instance });
    await this.core.patchNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: ops });
  }

  async pin(pod: V1Pod, instance: string): Promise<void> {
    const gates = pod.spec!.schedulingGates ?? [];
    const ops: object[] = [guard(pod)];
    if (!pod.spec!.nodeSelector) ops.push({ op: 'add', path: '/spec/nodeSelector', value: {} });
    ops.push({ op: 'add', path: pointer('spec', 'nodeSelector', NODE_INSTANCE_LABEL), value: instance });
    ops.push({ op: 'replace', path: '/spec/schedulingGates', value: gates.filter((g) => g.name !== GATE) });
    await this.core.patchNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: ops });
  }

  async bind(pod: V1Pod, node: string): Promise<void> {
    const { name, namespace } = pod.metadata as { name: string; namespace: string };
    await this.core.createNamespacedPodBinding({
      name,
      namespace,
      body: {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name, namespace },
        target: { apiVersion: 'v1', kind: 'Node', name: node },
      },
    });
  }
}
