// Every Instance of a class ever written, and every deletion, as the API server reports them: what
// a warm pool launched and removed, whatever the controller's own counters say.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, NODE_CLASS_LABEL, VERSION } from '../../src/api/names.ts';
import type { Instance } from '../../src/api/types.ts';

export interface InstanceHistory {
  /** Names of the class's Instances seen written. */
  written: Set<string>;
  /** Names of those seen deleted or being deleted. */
  removed: Set<string>;
  stop(): void;
}

export async function watchInstanceHistory(kc: KubeConfig, cls: string): Promise<InstanceHistory> {
  const written = new Set<string>();
  const removed = new Set<string>();
  const req = await new Watch(kc).watch(
    `/apis/${GROUP}/${VERSION}/instances`,
    { labelSelector: `${NODE_CLASS_LABEL}=${cls}` },
    (type: string, i: Instance) => {
      written.add(i.metadata.name!);
      if (type === 'DELETED' || i.metadata.deletionTimestamp) removed.add(i.metadata.name!);
    },
    () => {},
  );
  return { written, removed, stop: () => req.abort() };
}
