// Writes to Nodes: ipp only ever removes the Node of an Instance it is terminating.
import { CoreV1Api, type KubeConfig, type V1Node } from '@kubernetes/client-node';
import { QUARANTINE_ANNOTATION } from '../api/names.ts';
import { ignoreNotFound, isConflict } from './errors.ts';
import { mergePatch } from './patch.ts';

export interface NodeWrites {
  /** Marks the Node unschedulable; a gone Node is fine. */
  cordon(node: V1Node): Promise<void>;
  /** Cordons the Node and marks the cordon as ipp's (QUARANTINE_ANNOTATION); a gone Node is fine. */
  quarantine(node: V1Node, why: string): Promise<void>;
  /**
   * Lifts ipp's quarantine: uncordons and unmarks the Node, only if it is unchanged since `node` was
   * read (resourceVersion), so a cordon set since is never undone. False when the Node changed since
   * (nothing was written: decide again on what it is now); a gone Node is fine.
   */
  release(node: V1Node): Promise<boolean>;
  /** Cordons (so nothing new lands while the instance goes) and deletes the Node; a gone Node is fine. */
  cordonAndDelete(node: V1Node): Promise<void>;
}

/** Reads that bypass the cache, to confirm an absence before acting on it. */
export interface NodeLookup {
  /** The Node as the API server has it now, or undefined when it does not exist. */
  read(name: string): Promise<V1Node | undefined>;
}

export class NodeReader implements NodeLookup {
  private readonly core: CoreV1Api;
  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  read(name: string): Promise<V1Node | undefined> {
    return ignoreNotFound(this.core.readNode({ name }));
  }
}

export class NodeWriter implements NodeWrites {
  private readonly core: CoreV1Api;
  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async cordon(node: V1Node): Promise<void> {
    const cordon = [{ op: 'add', path: '/spec/unschedulable', value: true }];
    await ignoreNotFound(this.core.patchNode({ name: node.metadata!.name!, body: cordon }));
  }

  async quarantine(node: V1Node, why: string): Promise<void> {
    const body = { spec: { unschedulable: true }, metadata: { annotations: { [QUARANTINE_ANNOTATION]: why } } };
    await ignoreNotFound(this.core.patchNode({ name: node.metadata!.name!, body }, mergePatch));
  }

  async release(node: V1Node): Promise<boolean> {
    const body = {
      spec: { unschedulable: null },
      metadata: { resourceVersion: node.metadata!.resourceVersion, annotations: { [QUARANTINE_ANNOTATION]: null } },
    };
    try {
      await ignoreNotFound(this.core.patchNode({ name: node.metadata!.name!, body }, mergePatch));
      return true;
    } catch (e) {
      if (!isConflict(e)) throw e;
      return false;
    }
  }

  async cordonAndDelete(node: V1Node): Promise<void> {
    const name = node.metadata!.name!;
    if (!node.spec?.unschedulable) {
      const cordon = [{ op: 'add', path: '/spec/unschedulable', value: true }];
      if ((await ignoreNotFound(this.core.patchNode({ name, body: cordon }))) === undefined) return;
    }
    await ignoreNotFound(this.core.deleteNode({ name }));
  }
}
