// The controller's token, stolen (T3): its role grants pods/eviction cluster-wide (it drains ipp
// nodes), and no policy can narrow that (an Eviction carries no pod to look at). ipp's eviction
// webhook reads the pod from the controller's cache and lets that identity evict only the pods it
// drains: labelled ipp-class, or on an ipp node. ipp's admission runs in this process.
import { RbacAuthorizationV1Api, type V1ClusterRoleBinding, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLASS_LABEL } from '../../../src/api/names.ts';
import { clientCertKubeconfig } from '../../testbed/controlplane.ts';
import { clients, eventually, namespace, suffix, type Clients } from '../support/cluster.ts';
import { createClass, deleteClasses, installCrds } from '../support/ipp.ts';
import { kwokNode, refusal, startTestAdmission, type TestAdmission } from './support.ts';

const sfx = suffix();
const cls = `tok-${sfx}`;
const plainNode = `tok-plain-${sfx}`;
const user = `ipp-controller-${sfx}`;
const container = [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }];

describe("the controller's token against pods it does not drain", () => {
  let c: Clients;
  let thief: Clients;
  let ns: string;
  let system: string;
  let admission: TestAdmission;

  const evict = (namespace: string, name: string) =>
    thief.core.createNamespacedPodEviction({ name, namespace, body: { metadata: { name, namespace } } });
  /** Created, and known to the webhook's "cache" as the controller's informer would have it. */
  const podOf = async (namespace: string, body: V1Pod) => {
    const p = await c.core.createNamespacedPod({ namespace, body });
    admission.pods.set(`${namespace}/${p.metadata!.name}`, p);
    return p;
  };

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'tok');
    system = await namespace(c, 'ipp-tok');
    await createClass(c, cls, { simulated: {}, instanceTypes: ['sim.small'], namespaces: [ns] });
    await kwokNode(c, plainNode, undefined, { 'e2e-tok': sfx });
    // What the chart's role grants the controller for drains, and the identity that holds it.
    const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({
      body: {
        metadata: { name: user },
        rules: [{ apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] }],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: user },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: user },
        subjects: [{ kind: 'User', name: user, apiGroup: 'rbac.authorization.k8s.io' }],
      } satisfies V1ClusterRoleBinding,
    });
    thief = clients(clientCertKubeconfig(inject('testbedDir'), user, []));
    admission = await startTestAdmission(c, { controllerNamespace: system, controllerUsernames: [user] });
  });

  afterAll(async () => {
    await admission?.stop();
    const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.deleteClusterRoleBinding({ name: user }).catch(() => {});
    await rbac.deleteClusterRole({ name: user }).catch(() => {});
    await c.core.deleteNamespacedPod({ namespace: 'kube-system', name: `victim-${sfx}` }).catch(() => {});
    for (const name of [ns, system]) if (name) await c.core.deleteNamespace({ name }).catch(() => {});
    await c.core.deleteNode({ name: plainNode }).catch(() => {});
    await deleteClasses(c, [cls]);
  });

  it('may not evict a pod of kube-system or an ordinary pod; may evict a pod of a class', async () => {
    await podOf('kube-system', {
      metadata: { name: `victim-${sfx}` },
      spec: { nodeName: plainNode, containers: container },
    });
    await podOf(ns, { metadata: { name: 'bystander' }, spec: { nodeName: plainNode, containers: container } });
    // RBAC allows it (the webhook may take a moment to be called: the configuration was just created).
    await eventually('the eviction webhook to refuse', async () =>
      expect(await refusal(evict('kube-system', `victim-${sfx}`))).toContain('ipp evicts only the pods it drains'),
    );
    expect(await refusal(evict(ns, 'bystander'))).toContain(`pod ${ns}/bystander is neither`);
    await c.core.readNamespacedPod({ namespace: 'kube-system', name: `victim-${sfx}` });
    await c.core.readNamespacedPod({ namespace: ns, name: 'bystander' });

    await podOf(ns, { metadata: { name: 'relay', labels: { [CLASS_LABEL]: cls } }, spec: { containers: container } });
    await evict(ns, 'relay');
    await eventually('the evicted pod gone', async () => {
      const left = (await c.core.listNamespacedPod({ namespace: ns })).items.map((p) => p.metadata?.name);
      expect(left).not.toContain('relay');
    });
  });
});
