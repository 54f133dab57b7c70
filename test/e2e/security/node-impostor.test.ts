// T2 as an attacker would run it: root on a shared node watches for new ipp nodes (with a token found
// on the node: a node agent's, allowed to watch Nodes, since the kubelet's own identity may read only
// its own Node) and, acting as that node's kubelet (system:node:<name>, NodeRestriction on), copies
// each one's ipp.dev/* labels onto its own Node the moment it registers, racing the pin. ipp pins by node name after
// matching the Node to its Instance by spec.providerID, so the class's pod still lands on the real
// node, even while the attacker undoes every cordon; and the shared node, which carries ipp labels
// with a providerID that is no Instance's, is cordoned and reported (Warning NodeLabelsTampered on
// the Node and on the Instance it impersonates).
import { EventsV1Api, RbacAuthorizationV1Api, Watch, type V1Node } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLASS_LABEL, NODE_CLASS_LABEL, NODE_INSTANCE_LABEL, QUARANTINE_ANNOTATION } from '../../../src/api/names.ts';
import { mergePatch } from '../../../src/kube/patch.ts';
import { clientCertKubeconfig } from '../../testbed/controlplane.ts';
import { clients, eventually, suffix } from '../support/cluster.ts';
import { createClass, listInstances, useIppEnvironment } from '../support/ipp.ts';
import { asNode } from './support.ts';

const env = useIppEnvironment('impostor');
const sfx = suffix();
const cls = `impostor-${sfx}`;
const shared = `shared-${sfx}`;
/** The shared node's own cloud instance: a real providerID, of no Instance. */
const sharedProviderID = `aws:///us-east-1a/i-0${sfx}shared`;
/** A node agent whose credentials sit on the shared node: it may read Nodes, nothing more. */
const agent = `node-agent-${sfx}`;

describe('a kubelet that copies each new ipp node’s labels onto its own Node (T2)', () => {
  let stopCopying: () => void = () => {};
  /** Instance names the attacker has impersonated, in order. */
  const copied: string[] = [];
  /** What went wrong on the attacker's side (shown when a wait times out). */
  const attackErrors: string[] = [];
  /** The attacker uncordons its Node while this is set; how many cordons (ipp's) it undid. */
  let uncordoning = true;
  let cordonsUndone = 0;

  beforeAll(async () => {
    await env.start();
    const kubelet = asNode(shared);
    // Registers as kubelets do (providerID, no taints: a shared node), and reports more room than any
    // ipp node, so a scheduler choosing among labelled nodes would prefer it.
    await kubelet.core.createNode({
      body: {
        metadata: {
          name: shared,
          labels: { 'kubernetes.io/hostname': shared, 'kubernetes.io/os': 'linux', type: 'kwok' },
          annotations: { 'kwok.x-k8s.io/node': 'fake' },
        },
        spec: { providerID: sharedProviderID },
      },
    });
    const room = { cpu: '64', memory: '256Gi', pods: '110' };
    await kubelet.core.patchNodeStatus(
      { name: shared, body: { status: { capacity: room, allocatable: room } } },
      mergePatch,
    );
    await eventually(`kwok to make ${shared} Ready`, async () => {
      const n = await env.c.core.readNode({ name: shared });
      expect(n.status?.conditions?.find((x) => x.type === 'Ready')?.status).toBe('True');
    });
    const rbac = env.c.kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({
      body: {
        metadata: { name: agent },
        rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: agent },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: agent },
        subjects: [{ kind: 'User', name: agent, apiGroup: 'rbac.authorization.k8s.io' }],
      },
    });
    const reader = clients(clientCertKubeconfig(inject('testbedDir'), agent));
    await eventually(`the node agent's binding to take effect`, () => reader.core.listNode({ limit: 1 }));
    // The attack: a watch with the agent's token, and a patch of its own Node's labels, as its
    // kubelet, as soon as an ipp node of the class appears.
    const req = await new Watch(reader.kc).watch(
      '/api/v1/nodes',
      { labelSelector: `${NODE_CLASS_LABEL}=${cls}` },
      (type: string, n: V1Node) => {
        if (n.metadata?.name === shared) {
          // Root on the node also undoes a cordon (a kubelet may set spec.unschedulable on its own
          // Node): the cordon is a signal to the operators, the pin by name is what keeps pods away.
          if (!n.spec?.unschedulable || !uncordoning) return;
          cordonsUndone++;
          void kubelet.core
            .patchNode({ name: shared, body: { spec: { unschedulable: false } } }, mergePatch)
            .catch((e: Error) => attackErrors.push(`uncordoning: ${e.message}`));
          return;
        }
        const instance = n.metadata?.labels?.[NODE_INSTANCE_LABEL];
        if (type !== 'ADDED' || !instance || copied.includes(instance)) return;
        copied.push(instance);
        void kubelet.core
          .patchNode(
            {
              name: shared,
              body: { metadata: { labels: { [NODE_CLASS_LABEL]: cls, [NODE_INSTANCE_LABEL]: instance } } },
            },
            mergePatch,
          )
          .catch((e: Error) => attackErrors.push(`copying ${instance}'s labels: ${e.message}`));
      },
      (e: Error | null) => {
        if (e) attackErrors.push(`watch: ${e.message}`);
      },
    );
    stopCopying = () => req.abort();
  });
  afterAll(async () => {
    stopCopying();
    await env.c.core.deleteNode({ name: shared }).catch(() => {});
    const rbac = env.c.kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.deleteClusterRoleBinding({ name: agent }).catch(() => {});
    await rbac.deleteClusterRole({ name: agent }).catch(() => {});
  });

  it('gets no pod: the pod of the class is bound to the real node of its Instance', async () => {
    env.classes.push(cls);
    await createClass(env.c, cls, {
      instanceTypes: ['sim.small'],
      simulated: { bootDelay: '1s' },
      warmPool: { size: 1 },
    });
    // The pool's node registers; the attacker's Node now claims to be it.
    const warm = await eventually(
      'the warm node registered and impersonated',
      async () => {
        const [inst] = (await listInstances(env.c, cls)).filter((i) => i.status?.phase === 'Ready');
        expect(inst?.status?.nodeName).toBeDefined();
        const labels = (await env.c.core.readNode({ name: shared })).metadata?.labels ?? {};
        expect(attackErrors).toEqual([]);
        expect(labels[NODE_INSTANCE_LABEL]).toBe(inst!.metadata.name);
        expect(labels[NODE_CLASS_LABEL]).toBe(cls);
        return inst!;
      },
      90_000,
    );
    await env.c.core.createNamespacedPod({
      namespace: env.ns,
      body: {
        metadata: { name: 'victim', labels: { [CLASS_LABEL]: cls } },
        spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
      },
    });
    const bound = await eventually(
      'the pod bound',
      async () => {
        const p = await env.c.core.readNamespacedPod({ namespace: env.ns, name: 'victim' });
        expect(p.spec?.nodeName).toBeDefined();
        return p.spec!.nodeName!;
      },
      90_000,
    );
    expect(bound).not.toBe(shared);
    expect(bound).toBe(warm.status!.nodeName);
    // Still so once the refill's node registers and is impersonated in turn.
    await eventually(
      'the refill impersonated too',
      async () => expect(copied.length).toBeGreaterThanOrEqual(2),
      90_000,
    );
    const p = await env.c.core.readNamespacedPod({ namespace: env.ns, name: 'victim' });
    expect(p.spec?.nodeName).toBe(warm.status!.nodeName);
    const onShared = await env.c.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${shared}` });
    expect(onShared.items).toEqual([]);
  });

  it('is cordoned and reported: a Warning on the Node and on the Instance it impersonates', async () => {
    // ipp cordoned it while the attack went on (the attacker saw it and undid it), and cordons it
    // again once the attacker stops undoing it.
    expect(cordonsUndone).toBeGreaterThan(0);
    uncordoning = false;
    await eventually('the shared node cordoned, the cordon marked as ipp’s quarantine', async () => {
      const n = await env.c.core.readNode({ name: shared });
      expect(n.spec?.unschedulable).toBe(true);
      expect(n.metadata?.annotations?.[QUARANTINE_ANNOTATION]).toBeDefined();
    });
    const events = await eventually('the NodeLabelsTampered Events', async () => {
      const all = await env.c.kc.makeApiClient(EventsV1Api).listEventForAllNamespaces();
      const mine = all.items.filter((e) => e.reason === 'NodeLabelsTampered' && e.type === 'Warning');
      const onNode = mine.filter((e) => e.regarding?.kind === 'Node' && e.regarding.name === shared);
      expect(onNode.length).toBeGreaterThan(0);
      const onInstance = mine.filter((e) => e.regarding?.kind === 'Instance' && copied.includes(e.regarding.name!));
      expect(onInstance.length).toBeGreaterThan(0);
      return onNode;
    });
    expect(events[0]!.note).toContain(`node ${shared} is not the node of any Instance`);
    expect(events[0]!.note).toContain(`this node has providerID ${sharedProviderID}`);
  });
});
