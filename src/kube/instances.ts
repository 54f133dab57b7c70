// Writes to Instance objects. Every write is safe to repeat: create tolerates AlreadyExists,
// status is a merge patch, and finalizer removal is guarded by a JSON Patch test.
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, FINALIZER, GROUP, NODE_CLASS_LABEL, VERSION } from '../api/names.ts';
import type { Instance, InstanceStatus } from '../api/types.ts';
import { isAlreadyExists, isNotFound } from './errors.ts';
import { mergePatch } from './patch.ts';

const plural = 'instances';

export class InstanceWriter {
  private readonly api: CustomObjectsApi;
  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  /** Records the intent before any cloud call; the finalizer is there from the first moment. */
  async create(name: string, cls: string): Promise<void> {
    const body: Instance = {
      apiVersion: API_VERSION,
      kind: 'Instance',
      metadata: { name, labels: { [NODE_CLASS_LABEL]: cls }, finalizers: [FINALIZER] },
      spec: { class: cls },
    };
    try {
      await this.api.createClusterCustomObject({ group: GROUP, version: VERSION, plural, body });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
  }

  async patchStatus(name: string, status: InstanceStatus): Promise<void> {
    await this.api.patchClusterCustomObjectStatus({ group: GROUP, version: VERSION, plural, name, body: { status } }, mergePatch);
  }

  async delete(name: string): Promise<void> {
    try {
      await this.api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural, name });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  async removeFinalizer(inst: Instance): Promise<void> {
    const finalizers = inst.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return;
    try {
      await this.api.patchClusterCustomObject({
        group: GROUP, version: VERSION, plural, name: inst.metadata.name!,
        body: [
          { op: 'test', path: '/metadata/finalizers', value: finalizers },
          { op: 'replace', path: '/metadata/finalizers', value: finalizers.filter((f) => f !== FINALIZER) },
        ],
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
