// The fake Compute Engine and its metadata server, started together, with a GKE-like layout: per
// class a "node pool" of zonal groups whose template carries the ipp labels, Kubernetes labels
// and taint the class needs. Tests and the demo use this; nothing here is a mock of the client.
import type { KubeConfig } from '@kubernetes/client-node';
import { startFakeMetadata, type FakeMetadata } from './metadata.ts';
import { kwokNodes } from './nodes.ts';
import { startFakeGce, type FakeGceServer } from './server.ts';
import { FakeCompute } from './state.ts';

export interface FakeGce {
  server: FakeGceServer;
  metadata: FakeMetadata;
  state: FakeCompute;
  endpoint: string;
  project: string;
  /** Adds a node pool for `cls` of `cluster`: one group per zone, all of `machineType`. */
  nodePool(p: {
    cluster: string;
    cls: string;
    machineType: string;
    zones: string[];
    name?: string;
    /** The project of its groups (default: the fake's own, which the metadata server names). */
    project?: string;
    /** Template properties beyond machine type and labels (advancedMachineFeatures, scheduling). */
    extra?: Record<string, unknown>;
  }): {
    zone: string;
    name: string;
  }[];
  close(): Promise<void>;
}

export async function startGceFake(opts: { project?: string; kubeconfig?: KubeConfig } = {}): Promise<FakeGce> {
  const project = opts.project ?? 'ipp-test-project';
  const state = new FakeCompute(opts.kubeconfig ? kwokNodes(opts.kubeconfig) : {});
  const metadata = await startFakeMetadata(project);
  const server = await startFakeGce({ state, tokenValid: (t) => metadata.issued(t) });
  return {
    server,
    metadata,
    state,
    endpoint: server.endpoint,
    project,
    nodePool({ cluster, cls, machineType, zones, name, project: own, extra }) {
      const pool = name ?? `${cls}-${machineType}`.slice(0, 40);
      const template = `gke-${cluster}-${pool}-tpl`.slice(0, 63);
      state.addTemplate({
        name: template,
        region: zones[0]!.replace(/-[a-z]$/, ''),
        machineType,
        extra,
        labels: { 'ipp-dev-cluster': cluster, 'ipp-dev-class': cls, 'goog-k8s-cluster-name': cluster },
      });
      return zones.map((zone) => {
        const mig = {
          project: own ?? project,
          zone,
          name: `gke-${cluster}-${pool}-grp`.slice(0, 55) + `-${zone.slice(-1)}`,
          template,
        };
        state.addMig({
          ...mig,
          node: {
            labels: { 'ipp.dev/class': cls },
            // The pool's taints, as `--node-taints` registers them: both effects ipp expects.
            taints: [
              { key: 'ipp.dev/class', value: cls, effect: 'NoSchedule' },
              { key: 'ipp.dev/class', value: cls, effect: 'NoExecute' },
            ],
          },
        });
        return { zone, name: mig.name };
      });
    },
    async close() {
      await server.close();
      await metadata.close();
    },
  };
}
