// The fake's kubelets: a VM that reaches RUNNING registers a kwok-managed Node the way a GKE node
// pool's kubelet does (name = VM name, the pool's labels and taints, providerID gce://…), and its
// Node goes when the VM goes. Capacity comes from the machine type, as a kubelet reports it.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { allocatable } from '../../../providers/gce/capacity.ts';
import { mergePatch } from '../../../src/kube/patch.ts';
import type { FakeMig, FakeVm, StateHooks } from './state.ts';

const status = (e: unknown) => (e as { code?: number }).code;

export function kwokNodes(kc: KubeConfig): StateHooks {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    async vmRunning(vm: FakeVm, mig: FakeMig | undefined) {
      if (!mig) return;
      try {
        await core.createNode({
          body: {
            metadata: {
              name: vm.name,
              labels: {
                ...mig.node.labels,
                'kubernetes.io/hostname': vm.name,
                'kubernetes.io/os': 'linux',
                'node.kubernetes.io/instance-type': vm.machineType,
                'topology.kubernetes.io/zone': vm.zone,
                'cloud.google.com/gke-nodepool': mig.name,
                type: 'kwok',
              },
              annotations: { 'kwok.x-k8s.io/node': 'fake' },
            },
            spec: { providerID: `gce://${vm.project}/${vm.zone}/${vm.name}`, taints: mig.node.taints },
          },
        });
      } catch (e) {
        if (status(e) !== 409) throw e;
      }
      const r = allocatable(vm.machineType) ?? { cpu: 2000, memory: 4 * 1024 ** 3, pods: 110 };
      const resources = { cpu: `${r.cpu}m`, memory: `${r.memory}`, pods: `${r.pods}` };
      await core.patchNodeStatus(
        { name: vm.name, body: { status: { capacity: resources, allocatable: resources } } },
        mergePatch,
      );
    },
    async vmGone(vm: FakeVm) {
      await core.deleteNode({ name: vm.name }).catch((e: unknown) => {
        if (status(e) !== 404) throw e;
      });
    },
  };
}
