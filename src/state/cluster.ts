// The controller's view of the cluster: informer caches of pods, ipp nodes, Instances and
// InstanceClasses, and the few lookups the controllers need. Reconcilers read only from here
// (and write to the API); they never keep state of their own between calls.
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { GROUP, NODE_CLASS_LABEL, VERSION } from '../api/names.ts';
import type { Instance, InstanceClass } from '../api/types.ts';
import { claimOf, classOf } from '../api/pods.ts';
import { Informer } from '../kube/informer.ts';
import type { Logger } from '../log.ts';

export type ChangeHandler = {
  pod: (p: V1Pod) => void;
  node: (n: V1Node) => void;
  instance: (i: Instance) => void;
  instanceClass: (c: InstanceClass) => void;
};

export class ClusterState {
  readonly pods: Informer<V1Pod>;
  readonly nodes: Informer<V1Node>;
  readonly instances: Informer<Instance & KubernetesObject>;
  readonly classes: Informer<InstanceClass & KubernetesObject>;

  constructor(kc: KubeConfig, logger: Logger, on: ChangeHandler, onActivity?: (resource: string, at: number) => void) {
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const listCustom =
      <T>(plural: string) =>
      async () =>
        (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural })) as KubernetesListObject<
          T & KubernetesObject
        >;
    const common = (resource: string) => ({
      kubeconfig: kc,
      resource,
      logger,
      onActivity: (at: number) => onActivity?.(resource, at),
    });
    // All pods, not only ipp-class ones: idle and audit decisions need every pod on an ipp node.
    this.pods = new Informer<V1Pod>({
      ...common('pods'),
      path: '/api/v1/pods',
      list: () => core.listPodForAllNamespaces(),
      onChange: (p) => on.pod(p),
    });
    this.nodes = new Informer<V1Node>({
      ...common('nodes'),
      path: '/api/v1/nodes',
      labelSelector: NODE_CLASS_LABEL,
      list: () => core.listNode({ labelSelector: NODE_CLASS_LABEL }),
      onChange: (n) => on.node(n),
    });
    this.instances = new Informer<Instance & KubernetesObject>({
      ...common('instances'),
      path: `/apis/${GROUP}/${VERSION}/instances`,
      list: listCustom<Instance>('instances'),
      onChange: (i) => on.instance(i),
    });
    this.classes = new Informer<InstanceClass & KubernetesObject>({
      ...common('instanceclasses'),
      path: `/apis/${GROUP}/${VERSION}/instanceclasses`,
      list: listCustom<InstanceClass>('instanceclasses'),
      onChange: (c) => on.instanceClass(c),
    });
  }

  private all() {
    return [this.classes, this.instances, this.nodes, this.pods];
  }

  async start(): Promise<void> {
    await Promise.all(this.all().map((i) => i.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.all().map((i) => i.stop()));
  }

  synced(): boolean {
    return this.all().every((i) => i.hasSynced());
  }

  /** The informer that has been silent longest, with how long: for /healthz. */
  stalest(): { resource: string; silentForMs: number } {
    return this.all()
      .map((i) => ({ resource: i.resource, silentForMs: i.silentForMs() }))
      .sort((a, b) => b.silentForMs - a.silentForMs)[0]!;
  }

  instanceClass(name: string): InstanceClass | undefined {
    return this.classes.get(name);
  }

  instance(name: string): Instance | undefined {
    return this.instances.get(name);
  }

  instancesOfClass(cls: string): Instance[] {
    return this.instances.list().filter((i) => i.spec?.class === cls);
  }

  podsOfClass(cls: string): V1Pod[] {
    return this.pods.list().filter((p) => classOf(p) === cls);
  }

  podsClaiming(instance: string): V1Pod[] {
    return this.pods.list().filter((p) => claimOf(p) === instance);
  }

  podsOnNode(node: string): V1Pod[] {
    return this.pods.list().filter((p) => p.spec?.nodeName === node);
  }

  node(name: string): V1Node | undefined {
    return this.nodes.get(name);
  }

  nodeByProviderID(providerID: string | undefined): V1Node | undefined {
    if (!providerID) return undefined;
    return this.nodes.list().find((n) => n.spec?.providerID === providerID);
  }
}
