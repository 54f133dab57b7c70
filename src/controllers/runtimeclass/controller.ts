// Keeps one RuntimeClass ipp-<class> per InstanceClass (desired.ts decides; this file reads and
// writes). Woken by InstanceClass events (operator.ts) and by any change to a RuntimeClass named
// ipp-*, so a RuntimeClass deleted or edited by hand comes back as the class says.
import { CustomObjectsApi, NodeV1Api, type V1RuntimeClass } from '@kubernetes/client-node';
import type { ControllerContext } from '../context.ts';
import { API_VERSION, GROUP, VERSION } from '../../api/names.ts';
import type { InstanceClass } from '../../api/types.ts';
import { isAlreadyExists, isNotFound } from '../../kube/errors.ts';
import type { EventRecorder } from '../../kube/events.ts';
import { Informer } from '../../kube/informer.ts';
import type { Logger } from '../../log.ts';
import type { ClusterState } from '../../state/cluster.ts';
import { classOfRuntimeClass, runtimeClassAction, runtimeClassName } from './desired.ts';

export class RuntimeClassController {
  private readonly nodeApi: NodeV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly state: ClusterState;
  private readonly events: EventRecorder;
  private readonly log: Logger;
  private readonly ctx: ControllerContext;
  private informer: Informer<V1RuntimeClass> | undefined;

  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
    this.nodeApi = ctx.kubeconfig.makeApiClient(NodeV1Api);
    this.custom = ctx.kubeconfig.makeApiClient(CustomObjectsApi);
    this.state = ctx.state;
    this.events = ctx.events;
    this.log = ctx.logger.child({ controller: 'runtimeclass' });
  }

  /** Watches RuntimeClasses; `wake` gets the InstanceClass name of every ipp-* one that changes. */
  async watch(wake: (className: string) => void): Promise<void> {
    this.informer = new Informer<V1RuntimeClass>({
      kubeconfig: this.ctx.kubeconfig,
      resource: 'runtimeclasses',
      path: '/apis/node.k8s.io/v1/runtimeclasses',
      list: () => this.nodeApi.listRuntimeClass(),
      logger: this.log,
      onChange: (rc) => {
        const cls = classOfRuntimeClass(rc.metadata?.name);
        if (cls) wake(cls);
      },
    });
    await this.informer.start();
  }

  async stop(): Promise<void> {
    await this.informer?.stop();
  }

  async reconcile(className: string): Promise<void> {
    const cls = this.state.instanceClass(className) ?? (await this.readClass(className));
    const name = runtimeClassName(className);
    const existing = await this.readRuntimeClass(name);
    const action = runtimeClassAction(className, cls, existing);
    const log = this.log.child({ class: className, runtimeClass: name });
    switch (action.kind) {
      case 'none':
        return;
      case 'create':
        await this.create(action.body);
        log.info({ handler: action.body.handler }, 'RuntimeClass created');
        return;
      case 'update':
        // resourceVersion in the body: a concurrent change makes this fail and the queue retry.
        await this.nodeApi.replaceRuntimeClass({ name, body: action.body });
        log.info('RuntimeClass updated');
        return;
      case 'recreate':
        await this.delete(name, action.uid);
        await this.create(action.body);
        log.info({ handler: action.body.handler, why: action.why }, 'RuntimeClass replaced');
        return;
      case 'delete':
        await this.delete(name, action.uid);
        log.info('RuntimeClass deleted with its InstanceClass');
        return;
      case 'conflict':
        if (cls)
          this.events.publish(
            { apiVersion: API_VERSION, kind: 'InstanceClass', name: className, uid: cls.metadata.uid },
            'Warning',
            'RuntimeClassConflict',
            'Reconcile',
            action.message,
          );
        log.warn(action.message);
        return;
    }
  }

  /** The class from the API: a cache miss is not proof that it is gone. */
  private async readClass(name: string): Promise<InstanceClass | undefined> {
    try {
      return (await this.custom.getClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'instanceclasses',
        name,
      })) as InstanceClass;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private async readRuntimeClass(name: string): Promise<V1RuntimeClass | undefined> {
    try {
      return await this.nodeApi.readRuntimeClass({ name });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private async create(body: V1RuntimeClass): Promise<void> {
    try {
      await this.nodeApi.createRuntimeClass({ body });
    } catch (e) {
      // Made meanwhile (another event, or the old one not gone yet): the next reconcile compares again.
      if (!isAlreadyExists(e)) throw e;
      throw new Error(`RuntimeClass ${body.metadata!.name} already exists; reconciling again`, { cause: e });
    }
  }

  /** Deletes exactly the object decided on (uid precondition): never a newer one of the same name. */
  private async delete(name: string, uid: string): Promise<void> {
    try {
      await this.nodeApi.deleteRuntimeClass({ name, body: { preconditions: { uid } } });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
