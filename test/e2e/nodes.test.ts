// NodeWriter's quarantine against the real apiserver: the cordon carries ipp's mark, and lifting it
// removes both, but only from the Node as it was read: a cordon set since (an operator's) stays.
import type { V1Node } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUARANTINE_ANNOTATION } from '../../src/api/names.ts';
import { NodeWriter } from '../../src/kube/nodes.ts';
import { mergePatch } from '../../src/kube/patch.ts';
import { clients, eventually, suffix, type Clients } from './support/cluster.ts';

describe('node quarantine on a real apiserver', () => {
  let c: Clients;
  let nodes: NodeWriter;
  const name = `quarantine-${suffix()}`;
  const read = () => c.core.readNode({ name });

  beforeAll(async () => {
    c = clients();
    nodes = new NodeWriter(c.kc);
    // No kwok annotation: nothing else writes this Node while the test does.
    await c.core.createNode({ body: { metadata: { name }, spec: { providerID: `sim:///${name}` } } });
  });
  afterAll(async () => {
    await c.core.deleteNode({ name }).catch(() => {});
  });

  it('cordons and marks, and lifts both from the Node it read', async () => {
    await nodes.quarantine(await read(), 'identity unproven');
    const held = await read();
    expect(held.spec?.unschedulable).toBe(true);
    expect(held.metadata?.annotations?.[QUARANTINE_ANNOTATION]).toBe('identity unproven');
    // kube-controller-manager taints a cordoned Node (node.kubernetes.io/unschedulable) a moment after
    // the cordon: a release that meets that write is refused (the next test) and tried again on the
    // Node as it is then, as the node identity controller does.
    let node = held;
    await eventually('released', async () => {
      if (await nodes.release(node)) return;
      node = await read();
      throw new Error('the Node changed since it was read; reading it again');
    });
    const freed = await read();
    expect(freed.spec?.unschedulable).toBeFalsy();
    expect(freed.metadata?.annotations?.[QUARANTINE_ANNOTATION]).toBeUndefined();
  });

  it('leaves a Node changed since it was read as it is (an operator cordoned it meanwhile)', async () => {
    await nodes.quarantine(await read(), 'identity unproven');
    const stale: V1Node = await read();
    // The operator takes over the cordon: ipp's mark goes, the cordon stays.
    await c.core.patchNode(
      { name, body: { metadata: { annotations: { [QUARANTINE_ANNOTATION]: null, 'ops/why': 'disk' } } } },
      mergePatch,
    );
    await nodes.release(stale);
    const now = await read();
    expect(now.spec?.unschedulable).toBe(true);
    expect(now.metadata?.annotations?.['ops/why']).toBe('disk');
  });
});
