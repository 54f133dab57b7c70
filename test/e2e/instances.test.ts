// InstanceWriter's finalizer release against the real apiserver: it releases the Instance it read,
// never one created since under the same name (provisioning recreates an Instance under its old
// name when a pod still claims it), whose finalizer is all that makes its deletion drain and terminate.
import { beforeAll, describe, expect, it } from 'vitest';
import { FINALIZER, GROUP, VERSION } from '../../src/api/names.ts';
import type { Instance } from '../../src/api/types.ts';
import { InstanceReader, InstanceWriter } from '../../src/kube/instances.ts';
import { clients, eventually, suffix, type Clients } from './support/cluster.ts';
import { installCrds } from './support/ipp.ts';

describe('releasing an Instance on a real apiserver', () => {
  let c: Clients;
  const at = (name: string) => ({ group: GROUP, version: VERSION, plural: 'instances', name });
  beforeAll(async () => {
    c = clients();
    await installCrds(c);
  });

  it('leaves the finalizer of an Instance recreated under the same name since it was read', async () => {
    const name = `i-release-${suffix()}`;
    const writer = new InstanceWriter(c.kc);
    const reader = new InstanceReader(c.kc);
    await writer.create(name, 'metal');
    await c.custom.deleteClusterCustomObject(at(name));
    const old = (await reader.read(name))!;
    expect(old.metadata.deletionTimestamp).toBeDefined();
    // Released by the termination that read it, gone; then provisioning creates it again.
    await writer.removeFinalizer(old);
    await eventually('the old Instance gone', async () => expect(await reader.read(name)).toBeUndefined());
    await writer.create(name, 'metal');
    const recreated = (await reader.read(name)) as Instance;
    expect(recreated.metadata.uid).not.toBe(old.metadata.uid);

    // A second termination reconcile still holding the old copy must not release the new one.
    await expect(writer.removeFinalizer(old)).rejects.toThrow();
    expect((await reader.read(name))?.metadata.finalizers).toEqual([FINALIZER]);

    await c.custom.deleteClusterCustomObject(at(name));
    await writer.removeFinalizer((await reader.read(name))!);
    await eventually('the recreated Instance gone', async () => expect(await reader.read(name)).toBeUndefined());
  });
});
