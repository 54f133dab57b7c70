// What every controller is handed: the cluster view, the writers and the cloud. One object, built
// once in operator.ts, so controllers agree on their collaborators and tests can swap any of them.
import type { KubeConfig } from '@kubernetes/client-node';
import type { EventRecorder } from '../kube/events.ts';
import type { InstanceWriter } from '../kube/instances.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { ClusterState } from '../state/cluster.ts';
import type { CloudProvider } from '../../providers/types.ts';

export interface ControllerContext {
  kubeconfig: KubeConfig;
  clusterName: string;
  state: ClusterState;
  writer: InstanceWriter;
  /** Enabled providers by name (the key of an InstanceClass's provider block). */
  providers: Map<string, CloudProvider>;
  events: EventRecorder;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
}
