// The wakes see every event's object and the one it replaced. Whatever they remember (a memo of
// their answer, say) must not keep the replaced one alive: each cached node or pod would hold every
// version it ever had (a memo did: 10 MiB more live heap after a 1,000-pod burst).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Instance } from '../../../src/api/types.ts';
import type { Controller } from '../../../src/controllers/context.ts';
import { InstanceController } from '../../../src/controllers/instance/controller.ts';
import { PlacementController } from '../../../src/controllers/placement/controller.ts';
import { ProvisioningController } from '../../../src/controllers/provisioning/controller.ts';
import { fakes } from '../fake/cluster.ts';
import { cls, instance, node, pod } from './fixtures.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Does `make()`'s object survive a full GC once only `wake` has seen it? */
async function retained<T extends object>(make: () => T, wake: (old: T) => void): Promise<boolean> {
  // Made and woken inside a function of its own: no variable here holds it afterwards.
  const ref = ((): WeakRef<T> => {
    const old = make();
    wake(old);
    return new WeakRef(old);
  })();
  // A WeakRef is cleared only after the job that read it: let the turn end before collecting.
  await new Promise((r) => setTimeout(r, 0));
  gc();
  return ref.deref() !== undefined;
}

describe('wakes', () => {
  it('keep nothing of the node, pod or Instance an event replaced', async () => {
    const f = fakes();
    f.cluster.classList = [cls()];
    const controllers: Controller[] = [
      new ProvisioningController(f.ctx),
      new PlacementController(f.ctx),
      new InstanceController(f.ctx),
    ];
    const nowNode = node('n1', { class: 'metal', instance: 'metal-x' });
    const nowPod = pod('web-1', { claim: 'metal-x' });
    const nowInstance = instance('metal-x', { phase: 'Ready', providerID: 'sim:///n1' });
    const wakeAll = (fn: (c: Controller) => void) => controllers.forEach(fn);
    const heartbeat = (): V1Node => ({ ...node('n1', { class: 'metal', instance: 'metal-x' }), status: {} });
    expect(
      await retained(heartbeat, (old) => wakeAll((c) => [...(c.wakes.node?.(nowNode, f.cluster, old) ?? [])])),
    ).toBe(false);
    expect(
      await retained(
        (): V1Pod => pod('web-1'),
        (old) => wakeAll((c) => [...(c.wakes.pod?.(nowPod, f.cluster, old) ?? [])]),
      ),
    ).toBe(false);
    expect(
      await retained(
        (): Instance => instance('metal-x', { phase: 'Launched', providerID: 'sim:///n1' }),
        (old) => wakeAll((c) => [...(c.wakes.instance?.(nowInstance, f.cluster, old) ?? [])]),
      ),
    ).toBe(false);
    // The test can tell: an object kept on purpose is found retained.
    const kept: object[] = [];
    expect(await retained(heartbeat, (old) => kept.push(old))).toBe(true);
  });
});
