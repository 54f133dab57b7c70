// The e2e isolation invariant's oracle (test/e2e/support/invariant.ts) can fail: each breach it must see.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { breaches } from '../../e2e/support/invariant.ts';

const node = (name: string, cls?: string): V1Node => ({
  metadata: { name, labels: cls ? { 'ipp.dev/class': cls } : {} },
});
const pod = (name: string, nodeName: string, o: { cls?: string; ns?: string; ds?: boolean; mirror?: boolean } = {}) =>
  ({
    metadata: {
      name,
      namespace: o.ns ?? 'team',
      labels: o.cls ? { 'ipp-class': o.cls } : {},
      annotations: o.mirror ? { 'kubernetes.io/config.mirror': 'x' } : {},
      ownerReferences: o.ds
        ? [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'd', uid: 'u', controller: true }]
        : [],
    },
    spec: { nodeName, containers: [] },
    status: { phase: 'Running' },
  }) as V1Pod;

const nodes = [node('a', 'gold'), node('b', 'silver'), node('shared')];

describe('isolation invariant oracle', () => {
  it('sees a pod of another class, a plain pod, a tenant DaemonSet pod on an ipp node, and a class pod on a shared node', () => {
    const found = breaches(
      nodes,
      [
        pod('other', 'a', { cls: 'silver' }),
        pod('plain', 'a'),
        pod('tenant-agent', 'b', { ds: true }),
        pod('escaped', 'shared', { cls: 'gold' }),
      ],
      new Set(),
    );
    expect(found.map((b) => b.pod)).toEqual(['team/other', 'team/plain', 'team/tenant-agent', 'team/escaped']);
  });

  it('sees a second live pod of a class with Pod isolation on its node; not one being deleted or finished', () => {
    const deleting = pod('leaving', 'a', { cls: 'gold' });
    deleting.metadata!.deletionTimestamp = new Date();
    const done = pod('done', 'a', { cls: 'gold' });
    done.status = { phase: 'Succeeded' };
    const pods = [deleting, done, pod('one', 'a', { cls: 'gold' }), pod('two', 'a', { cls: 'gold' })];
    expect(breaches(nodes, pods, new Set(), new Set(['gold']))).toEqual([
      { pod: 'team/two', node: 'a', podClass: 'gold', nodeClass: 'gold', beside: 'team/one' },
    ]);
    // Class isolation packs pods of the class together.
    expect(breaches(nodes, pods, new Set(), new Set(['silver']))).toEqual([]);
  });

  it('accepts own-class pods, kube-system DaemonSet pods, mirror pods, plain pods on shared nodes, and allowed namespaces', () => {
    const found = breaches(
      nodes,
      [
        pod('own', 'a', { cls: 'gold' }),
        pod('agent', 'b', { ds: true, ns: 'kube-system' }),
        pod('static', 'a', { mirror: true }),
        pod('web', 'shared'),
        pod('deliberate', 'a', { ns: 'audit' }),
      ],
      new Set(['audit']),
    );
    expect(found).toEqual([]);
  });
});
