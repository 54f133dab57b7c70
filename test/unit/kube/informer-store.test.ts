// The informer's indexed store: after any sequence of adds, updates (index keys changing), deletes
// and relists, every index must equal what a full scan of the cache finds.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { IndexedStore, type Indexers } from '../../../src/kube/store.ts';
import { NODE_INDEXERS, POD_INDEXERS } from '../../../src/state/cluster.ts';

function pod(
  name: string,
  o: { node?: string; claim?: string; cls?: string; rv?: string; ns?: string; phase?: string } = {},
): V1Pod {
  return {
    metadata: {
      name,
      namespace: o.ns ?? 'default',
      uid: `uid-${o.ns ?? 'default'}-${name}`,
      resourceVersion: o.rv ?? '1',
      labels: o.cls ? { 'ipp-class': o.cls } : {},
      annotations: o.claim ? { 'ipp.dev/instance': o.claim } : {},
    },
    spec: { containers: [], ...(o.node ? { nodeName: o.node } : {}) },
    ...(o.phase ? { status: { phase: o.phase } } : {}),
  };
}

/** Every index of the store against a scan: same values, same members. */
function expectIndexesMatchScan<T extends V1Pod | V1Node>(store: IndexedStore<T>, indexers: Indexers<T>): void {
  const all = store.list();
  for (const [name, fn] of Object.entries(indexers)) {
    const scanned = new Map<string, string[]>();
    for (const o of all) for (const v of fn(o)) scanned.set(v, [...(scanned.get(v) ?? []), o.metadata!.uid!]);
    expect(store.indexValues(name).sort(), `values of index ${name}`).toEqual([...scanned.keys()].sort());
    for (const [v, uids] of scanned) {
      expect(store.count(name, v), `count of ${name}=${v}`).toBe(uids.length);
      expect(
        store
          .byIndex(name, v)
          .map((o) => o.metadata!.uid!)
          .sort(),
        `${name}=${v}`,
      ).toEqual(uids.sort());
    }
  }
}

describe('IndexedStore', () => {
  it('finds pods by node, claim, class and unbound class after adds', () => {
    const s = new IndexedStore(POD_INDEXERS);
    s.upsert(pod('a', { node: 'n1', claim: 'i1', cls: 'c' }));
    s.upsert(pod('b', { node: 'n1', cls: 'c' }));
    s.upsert(pod('c', { ns: 'other' }));
    s.upsert(pod('waiting', { cls: 'c', claim: 'i2' }));
    s.upsert(pod('ended', { cls: 'c', phase: 'Failed' }));
    expect(s.byIndex('unbound', 'c').map((p) => p.metadata!.name)).toEqual(['waiting']);
    expect(s.count('held', 'c/i2')).toBe(1);
    expect(s.count('held', 'c/i1')).toBe(1);
    s.upsert(pod('waiting', { cls: 'c', claim: 'i2', node: 'n2', rv: '2' }));
    expect(s.byIndex('unbound', 'c')).toEqual([]);
    expect(s.count('held', 'other/i2')).toBe(0);
    s.delete(pod('waiting'));
    s.delete(pod('ended'));
    expect(s.byIndex('node', 'n1').map((p) => p.metadata!.name)).toEqual(['a', 'b']);
    expect(s.byIndex('claim', 'c/i1').map((p) => p.metadata!.name)).toEqual(['a']);
    expect(s.byIndex('class', 'c')).toHaveLength(2);
    expect(s.byIndex('node', 'n2')).toEqual([]);
    expect(s.get('c', 'other')?.metadata?.name).toBe('c');
    expect(s.list('other')).toHaveLength(1);
    expectIndexesMatchScan(s, POD_INDEXERS);
    // Ended, it holds its instance no more.
    s.upsert(pod('a', { node: 'n1', claim: 'i1', cls: 'c', phase: 'Succeeded', rv: '2' }));
    expect(s.count('held', 'c/i1')).toBe(0);
    expectIndexesMatchScan(s, POD_INDEXERS);
  });

  it('indexes a claim only under the claiming pod’s class: a pod of none claims nothing', () => {
    const s = new IndexedStore(POD_INDEXERS);
    s.upsert(pod('squatter', { claim: 'i1' }));
    s.upsert(pod('other-class', { claim: 'i1', cls: 'd' }));
    expect(s.indexValues('claim')).toEqual(['d/i1']);
    expectIndexesMatchScan(s, POD_INDEXERS);
  });

  it('moves an object between index values when an update changes its key', () => {
    const s = new IndexedStore(POD_INDEXERS);
    s.upsert(pod('a', { cls: 'c', claim: 'i1' }));
    s.upsert(pod('a', { cls: 'c', claim: 'i2', node: 'n1', rv: '2' }));
    expect(s.byIndex('claim', 'c/i1')).toEqual([]);
    expect(s.indexValues('claim')).toEqual(['c/i2']);
    expect(s.byIndex('node', 'n1').map((p) => p.metadata!.resourceVersion)).toEqual(['2']);
    expectIndexesMatchScan(s, POD_INDEXERS);
  });

  it('forgets a deleted object in every index, and ignores deleting what it does not hold', () => {
    const s = new IndexedStore(POD_INDEXERS);
    s.upsert(pod('a', { node: 'n1', claim: 'i1', cls: 'c' }));
    expect(s.delete(pod('a'))?.metadata?.name).toBe('a');
    expect(s.delete(pod('a'))).toBeUndefined();
    for (const idx of Object.keys(POD_INDEXERS)) expect(s.indexValues(idx)).toEqual([]);
    expect(s.size).toBe(0);
  });

  it('relists: replace() reports what was added, changed and removed, and the indexes follow', () => {
    const s = new IndexedStore(POD_INDEXERS);
    s.upsert(pod('keep', { node: 'n1', rv: '1' }));
    s.upsert(pod('change', { node: 'n1', rv: '1' }));
    s.upsert(pod('gone', { node: 'n2', claim: 'i9', cls: 'c' }));
    const r = s.replace([pod('keep', { node: 'n1', rv: '1' }), pod('change', { node: 'n3', rv: '5' }), pod('new')]);
    expect(r.added.map((p) => p.metadata!.name)).toEqual(['new']);
    // Each change with what it replaced, as a watch update has it: a wake compares the two.
    expect(r.updated.map(({ obj, old }) => [obj.spec!.nodeName, old.spec!.nodeName])).toEqual([['n3', 'n1']]);
    expect(r.deleted.map((p) => p.metadata!.name)).toEqual(['gone']);
    expect(s.byIndex('node', 'n2')).toEqual([]);
    expect(s.byIndex('claim', 'c/i9')).toEqual([]);
    expectIndexesMatchScan(s, POD_INDEXERS);
  });

  it('relists: an object deleted and created again under its name is told as a delete and an add', () => {
    // A node that is now another machine must not read as an update of the first (the identity check
    // would compare the two and find nothing to do).
    const s = new IndexedStore(NODE_INDEXERS);
    const before = { metadata: { name: 'n1', uid: 'u1', resourceVersion: '1' }, spec: { providerID: 'sim://a' } };
    const after = { metadata: { name: 'n1', uid: 'u2', resourceVersion: '7' }, spec: { providerID: 'sim://a' } };
    s.upsert(before);
    const r = s.replace([after]);
    expect(r.updated).toEqual([]);
    expect(r.deleted).toEqual([before]);
    expect(r.added).toEqual([after]);
    expect(s.get('n1')).toBe(after);
    expectIndexesMatchScan(s, NODE_INDEXERS);
  });

  it('refuses an index it was not given, naming the ones it has', () => {
    expect(() => new IndexedStore(NODE_INDEXERS).byIndex('node', 'x')).toThrow(
      /no index named node; declared: providerID/,
    );
    expect(() => new IndexedStore(NODE_INDEXERS).count('held', 'x')).toThrow(/no index named held/);
  });

  it('stays equal to a full scan through a long random sequence of events and relists', () => {
    // Deterministic pseudo-random sequence, so a failure reproduces.
    let seed = 42;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const pick = <T>(xs: T[]) => xs[rnd(xs.length)];
    const s = new IndexedStore(POD_INDEXERS);
    const nodes = ['n1', 'n2', 'n3', undefined];
    const claims = ['i1', 'i2', undefined];
    const classes = ['c1', 'c2', undefined];
    const random = (i: number, rv: number) =>
      pod(`p${i}`, {
        ns: pick(['a', 'b']),
        node: pick(nodes),
        claim: pick(claims),
        cls: pick(classes),
        phase: pick(['Pending', 'Running', 'Succeeded']),
        rv: String(rv),
      });
    for (let step = 0; step < 2_000; step++) {
      const op = rnd(10);
      if (op < 6) s.upsert(random(rnd(50), step));
      else if (op < 9) s.delete(random(rnd(50), step));
      else s.replace(Array.from({ length: rnd(40) }, (_, i) => random(i, step)));
      if (step % 100 === 0) expectIndexesMatchScan(s, POD_INDEXERS);
    }
    expectIndexesMatchScan(s, POD_INDEXERS);
  });

  it('indexes nodes by providerID', () => {
    const s = new IndexedStore(NODE_INDEXERS);
    s.upsert({ metadata: { name: 'n1', uid: 'u1', resourceVersion: '1' }, spec: { providerID: 'aws:///z/i-1' } });
    s.upsert({ metadata: { name: 'n2', uid: 'u2', resourceVersion: '1' }, spec: {} });
    expect(s.byIndex('providerID', 'aws:///z/i-1').map((n) => n.metadata!.name)).toEqual(['n1']);
    s.upsert({ metadata: { name: 'n1', uid: 'u1', resourceVersion: '2' }, spec: { providerID: 'aws:///z/i-2' } });
    expect(s.byIndex('providerID', 'aws:///z/i-1')).toEqual([]);
    expectIndexesMatchScan(s, NODE_INDEXERS);
  });
});
