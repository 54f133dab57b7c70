// The simulated cloud's records: one ConfigMap per instance in the cloud's namespace, shared by the
// cloud API (provider.ts) and the machines' kubelets (kubelets.ts), which may run in another process.
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { HostIsolation } from '../../src/api/types.ts';
import { TAG_CLASS, TAG_CLUSTER, TAG_INSTANCE } from '../../src/api/names.ts';
import type { NodeIdentity } from '../types.ts';

export const PREFIX = 'sim:///';
const STATE_LABEL = 'sim.ipp.dev/state';

export interface SimulatedRecord {
  id: string;
  zone: string;
  instanceType: string;
  launchedAt: string;
  bootDelayMs: number;
  register: boolean;
  node: NodeIdentity;
  tags: { [k: string]: string };
  /** What the launch obtained (absent in records written before host isolation existed). */
  hostIsolation?: HostIsolation;
}

export const idOf = (providerID: string) => providerID.slice(providerID.lastIndexOf('/') + 1);
export const nodeName = (id: string) => `sim-${id}`;
export const providerIdOf = (r: SimulatedRecord) => `${PREFIX}${r.zone}/${r.id}`;

/** The records' collection in the cloud's namespace. */
export const recordsPath = (namespace: string) => `/api/v1/namespaces/${namespace}/configmaps`;

/** The label selector of a cluster's running instances (and more, e.g. `,<label>=<value>`). */
export const recordSelector = (cluster: string, more = '') => `${TAG_CLUSTER}=${cluster},${STATE_LABEL}=running${more}`;

export function toConfigMap(r: SimulatedRecord): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: r.id,
      labels: {
        [TAG_CLUSTER]: String(r.tags[TAG_CLUSTER]),
        [TAG_CLASS]: String(r.tags[TAG_CLASS]),
        // Lets a teardown find its instance by label (a label value holds at most 63 characters).
        ...(String(r.tags[TAG_INSTANCE]).length <= 63 ? { [TAG_INSTANCE]: String(r.tags[TAG_INSTANCE]) } : {}),
        [STATE_LABEL]: 'running',
      },
    },
    data: { instance: JSON.stringify(r) },
  };
}

export function fromConfigMap(cm: V1ConfigMap): SimulatedRecord {
  return JSON.parse(cm.data?.instance ?? '{}') as SimulatedRecord;
}
