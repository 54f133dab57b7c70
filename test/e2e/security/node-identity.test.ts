// The testbed runs the apiserver as EKS and GKE do (Node,RBAC authorization + NodeRestriction), and
// tests can act as a kubelet. This proves both, and pins down what a kubelet may still do to its own
// Node, which is why ipp pins pods by node name and not by a label (docs/security.md, T2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_CLASS_LABEL, NODE_INSTANCE_LABEL, TAINT_KEY } from '../../../src/api/names.ts';
import { clients, namespace, suffix, type Clients } from '../support/cluster.ts';
import { asNode, refusal } from './support.ts';

describe('a kubelet identity on the testbed', () => {
  let c: Clients;
  let ns: string;
  const sfx = suffix();
  const mine = `kubelet-a-${sfx}`;
  const other = `kubelet-b-${sfx}`;

  beforeAll(async () => {
    c = clients();
    ns = await namespace(c, 'kubelet');
    await c.core.createNode({
      body: {
        metadata: { name: other, labels: { [NODE_CLASS_LABEL]: 'victim', [NODE_INSTANCE_LABEL]: 'victim-1' } },
        spec: { taints: [{ key: TAINT_KEY, value: 'victim', effect: 'NoSchedule' }] },
      },
    });
  });
  afterAll(async () => {
    for (const name of [mine, other]) await c.core.deleteNode({ name }).catch(() => {});
    await c.core.deleteNamespace({ name: ns }).catch(() => {});
  });

  it('registers its own Node, and may copy an ipp node’s labels onto it (the reason the pin is by name)', async () => {
    const node = asNode(mine);
    const created = await node.core.createNode({
      body: { metadata: { name: mine, labels: { [NODE_CLASS_LABEL]: 'victim' } } },
    });
    expect(created.metadata?.labels?.[NODE_CLASS_LABEL]).toBe('victim');
    await node.core.patchNode({
      name: mine,
      body: [{ op: 'add', path: `/metadata/labels/${NODE_INSTANCE_LABEL.replace('/', '~1')}`, value: 'victim-1' }],
    });
    expect((await c.core.readNode({ name: mine })).metadata?.labels?.[NODE_INSTANCE_LABEL]).toBe('victim-1');
  });

  it('may not change its own taints (NodeRestriction), nor touch another Node (Node authorizer)', async () => {
    const node = asNode(mine);
    expect(
      await refusal(
        node.core.patchNode({
          name: mine,
          body: [{ op: 'add', path: '/spec/taints', value: [{ key: 'x', value: 'y', effect: 'NoSchedule' }] }],
        }),
      ),
    ).toMatch(/not allowed to modify taints/);
    expect(
      await refusal(
        node.core.patchNode({
          name: other,
          body: [{ op: 'remove', path: '/spec/taints' }],
        }),
      ),
    ).toMatch(/forbidden/i);
    expect(await refusal(node.core.deleteNode({ name: other }))).toMatch(/forbidden/i);
    // Other taints may appear meanwhile (the node lifecycle controller marks a Node without a kubelet
    // unreachable; a running controller may cordon it); the one the kubelet tried to remove must remain.
    expect((await c.core.readNode({ name: other })).spec?.taints).toContainEqual(
      expect.objectContaining({ key: TAINT_KEY, value: 'victim', effect: 'NoSchedule' }),
    );
  });

  it('may create only mirror pods bound to itself', async () => {
    const node = asNode(mine);
    const body = (nodeName: string) => ({
      metadata: { name: `static-${nodeName}`, annotations: { 'kubernetes.io/config.mirror': 'x' } },
      spec: { nodeName, containers: [{ name: 'c', image: 'pause' }] },
    });
    expect(await refusal(node.core.createNamespacedPod({ namespace: ns, body: body(other) }))).toMatch(/forbidden/i);
    expect(
      await refusal(
        node.core.createNamespacedPod({
          namespace: ns,
          body: { metadata: { name: 'plain' }, spec: { nodeName: mine, containers: [{ name: 'c', image: 'pause' }] } },
        }),
      ),
    ).toMatch(/forbidden/i);
  });
});
