// The RuntimeClass controller's shell over fakes of its own interfaces (src/kube/runtimeclasses.ts):
// what it writes for each decision, and that a class missing from the cache is read before anything
// of it is deleted.
import type { V1RuntimeClass } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { InstanceClass } from '../../../../src/api/types.ts';
import { RuntimeClassController } from '../../../../src/controllers/runtimeclass/controller.ts';
import { desiredRuntimeClass } from '../../../../src/controllers/runtimeclass/desired.ts';
import type { RuntimeClassReads, RuntimeClassWrites } from '../../../../src/kube/runtimeclasses.ts';
import { fakes } from '../../fake/cluster.ts';
import { cls } from '../fixtures.ts';

class FakeRuntimeClasses implements RuntimeClassReads, RuntimeClassWrites {
  objects = new Map<string, V1RuntimeClass>();
  /** InstanceClasses as a direct read from the API server sees them. */
  apiClasses: InstanceClass[] = [];
  writes: string[] = [];
  private uid = 0;

  read(name: string) {
    return Promise.resolve(this.objects.get(name));
  }
  readClass(name: string) {
    return Promise.resolve(this.apiClasses.find((c) => c.metadata.name === name));
  }
  create(body: V1RuntimeClass) {
    this.writes.push(`create ${body.metadata!.name} ${body.handler}`);
    this.objects.set(body.metadata!.name!, { ...body, metadata: { ...body.metadata, uid: `rc-${++this.uid}` } });
    return Promise.resolve();
  }
  replace(body: V1RuntimeClass) {
    this.writes.push(`replace ${body.metadata!.name}`);
    this.objects.set(body.metadata!.name!, body);
    return Promise.resolve();
  }
  delete(name: string, uid: string) {
    this.writes.push(`delete ${name} ${uid}`);
    if (this.objects.get(name)?.metadata?.uid === uid) this.objects.delete(name);
    return Promise.resolve();
  }
}

const relay = () => {
  const c = cls({}, 'relay');
  c.metadata.uid = 'uid-relay';
  return c;
};

describe('RuntimeClassController', () => {
  it('creates, replaces on a new handler, and deletes once the class is confirmed gone', async () => {
    const { ctx, cluster } = fakes();
    const api = new FakeRuntimeClasses();
    const rcs = new RuntimeClassController(ctx, api);
    cluster.classList = [relay()];
    await rcs.reconcile('relay');
    await rcs.reconcile('relay');
    expect(api.writes).toEqual(['create ipp-relay runc']);

    cluster.classList = [{ ...relay(), spec: { ...relay().spec, runtimeClass: { handler: 'kata' } } }];
    await rcs.reconcile('relay');
    expect(api.writes.slice(1)).toEqual(['delete ipp-relay rc-1', 'create ipp-relay kata']);

    cluster.classList = [];
    await rcs.reconcile('relay');
    expect(api.writes.slice(3)).toEqual(['delete ipp-relay rc-2']);
    expect(api.objects.size).toBe(0);
  });

  it('never deletes on a cache miss: the class is read from the API first', async () => {
    const { ctx } = fakes();
    const api = new FakeRuntimeClasses();
    api.objects.set('ipp-relay', {
      ...desiredRuntimeClass(relay()),
      metadata: { ...desiredRuntimeClass(relay()).metadata, uid: 'rc-0' },
    });
    api.apiClasses = [relay()];
    await new RuntimeClassController(ctx, api).reconcile('relay');
    expect(api.writes).toEqual([]);
  });

  it('reports a foreign ipp-<class> RuntimeClass on the class and leaves it alone', async () => {
    const { ctx, cluster, events } = fakes();
    const api = new FakeRuntimeClasses();
    api.objects.set('ipp-relay', { metadata: { name: 'ipp-relay', uid: 'theirs' }, handler: 'gvisor' });
    cluster.classList = [relay()];
    await new RuntimeClassController(ctx, api).reconcile('relay');
    expect(api.writes).toEqual([]);
    expect(events.map((e) => [e.reason, e.regarding.name])).toEqual([['RuntimeClassConflict', 'relay']]);
  });
});
