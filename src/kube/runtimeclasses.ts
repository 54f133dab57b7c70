// RuntimeClasses ipp-<class> (src/controllers/runtimeclass/): direct reads, writes, and a watch of
// every RuntimeClass so a hand-made change to one of ipp's wakes its class. Also the direct read of
// an InstanceClass that confirms a class is gone before its RuntimeClass is deleted.
import { CustomObjectsApi, NodeV1Api, type KubeConfig, type V1RuntimeClass } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/names.ts';
import type { InstanceClass } from '../api/types.ts';
import type { Logger } from '../log.ts';
import { ignoreNotFound, isAlreadyExists } from './errors.ts';
import { Informer } from './informer.ts';

export interface RuntimeClassReads {
  /** The RuntimeClass as the API server has it now, or undefined. */
  read(name: string): Promise<V1RuntimeClass | undefined>;
  /** The InstanceClass as the API server has it now, or undefined: a cache miss is not proof that it is gone. */
  readClass(name: string): Promise<InstanceClass | undefined>;
}

export interface RuntimeClassWrites {
  create(body: V1RuntimeClass): Promise<void>;
  /** Whole-object update; the body's resourceVersion makes a concurrent change fail (the queue retries). */
  replace(body: V1RuntimeClass): Promise<void>;
  /** Deletes exactly the object with this uid (precondition), never a newer one of the same name; gone is fine. */
  delete(name: string, uid: string): Promise<void>;
}

export class RuntimeClassApi implements RuntimeClassReads, RuntimeClassWrites {
  private readonly kc: KubeConfig;
  private readonly node: NodeV1Api;
  private readonly custom: CustomObjectsApi;
  constructor(kc: KubeConfig) {
    this.kc = kc;
    this.node = kc.makeApiClient(NodeV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  read(name: string): Promise<V1RuntimeClass | undefined> {
    return ignoreNotFound(this.node.readRuntimeClass({ name }));
  }

  async readClass(name: string): Promise<InstanceClass | undefined> {
    return (await ignoreNotFound(
      this.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instanceclasses', name }),
    )) as InstanceClass | undefined;
  }

  async create(body: V1RuntimeClass): Promise<void> {
    try {
      await this.node.createRuntimeClass({ body });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      // Made meanwhile (another event, or the old one not gone yet): the next reconcile compares again.
      throw new Error(`RuntimeClass ${body.metadata!.name} already exists; reconciling again`, { cause: e });
    }
  }

  async replace(body: V1RuntimeClass): Promise<void> {
    await this.node.replaceRuntimeClass({ name: body.metadata!.name!, body });
  }

  async delete(name: string, uid: string): Promise<void> {
    await ignoreNotFound(this.node.deleteRuntimeClass({ name, body: { preconditions: { uid } } }));
  }

  /** A cache of every RuntimeClass (few in any cluster) calling `onChange` for each add, update and delete. */
  informer(logger: Logger, onChange: (rc: V1RuntimeClass) => void): Informer<V1RuntimeClass> {
    return new Informer<V1RuntimeClass>({
      kubeconfig: this.kc,
      resource: 'runtimeclasses',
      path: '/apis/node.k8s.io/v1/runtimeclasses',
      logger,
      onChange,
    });
  }
}
