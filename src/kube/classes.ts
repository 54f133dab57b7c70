// Writes to InstanceClass: only its status, which tells `kubectl get ic` whether the class works.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/names.ts';
import type { InstanceClassStatus } from '../api/types.ts';
import { ignoreNotFound } from './errors.ts';
import { mergePatch } from './patch.ts';

export interface ClassWrites {
  /** Replaces the fields of the status it names; a class deleted meanwhile is fine. */
  patchStatus(name: string, status: InstanceClassStatus): Promise<void>;
}

export class ClassWriter implements ClassWrites {
  private readonly api: CustomObjectsApi;
  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  async patchStatus(name: string, status: InstanceClassStatus): Promise<void> {
    await ignoreNotFound(
      this.api.patchClusterCustomObjectStatus(
        { group: GROUP, version: VERSION, plural: 'instanceclasses', name, body: { status } },
        mergePatch,
      ),
    );
  }
}
