// The isolation invariant as a check: only DaemonSet/mirror pods and pods of the node's own class on an ipp node.
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { violations } from '../../../../src/controllers/audit/violations.ts';
import { node, pod } from '../fixtures.ts';

const on = (byNode: Record<string, V1Pod[]>) => (name: string) => byNode[name] ?? [];
const summary = (v: ReturnType<typeof violations>) =>
  v.map((x) => ({ pod: x.pod.metadata!.name, node: x.node, nodeClass: x.nodeClass, podClass: x.podClass }));

describe('violations', () => {
  it('accepts pods of the node class and DaemonSet, mirror and finished pods', () => {
    const pods = [
      pod('own', { class: 'metal', nodeName: 'n1', phase: 'Running' }),
      pod('ds', { class: null, daemonSet: true, phase: 'Running' }),
      pod('static', { class: null, mirror: true, phase: 'Running' }),
      pod('done', { class: 'other', phase: 'Succeeded' }),
      pod('failed', { class: null, phase: 'Failed' }),
    ];
    expect(violations([node('n1', { class: 'metal' })], on({ n1: pods }))).toEqual([]);
  });

  it('reports a pod of another class and a pod of no class, naming node and classes', () => {
    const intruders = [
      pod('tenant-b', { class: 'gpu', phase: 'Running' }),
      pod('plain', { class: null, phase: 'Running' }),
    ];
    const v = violations([node('n1', { class: 'metal' })], on({ n1: intruders }));
    expect(summary(v)).toEqual([
      { pod: 'tenant-b', node: 'n1', nodeClass: 'metal', podClass: 'gpu' },
      { pod: 'plain', node: 'n1', nodeClass: 'metal', podClass: undefined },
    ]);
    expect(v[0]!.pod).toBe(intruders[0]);
  });

  it('reports a still-pending pod bound to the node too (it will run there)', () => {
    expect(
      summary(violations([node('n1', { class: 'metal' })], on({ n1: [pod('p', { class: 'gpu', phase: 'Pending' })] }))),
    ).toHaveLength(1);
  });

  it('does not look at nodes that are not ipp nodes', () => {
    const seen: string[] = [];
    const v = violations([node('plain'), node('n1', { class: 'metal' })], (n) => {
      seen.push(n);
      return [pod('x', { class: null, phase: 'Running' })];
    });
    expect(seen).toEqual(['n1']);
    expect(summary(v)).toEqual([{ pod: 'x', node: 'n1', nodeClass: 'metal', podClass: undefined }]);
  });

  it('checks every ipp node', () => {
    const v = violations(
      [node('n1', { class: 'a' }), node('n2', { class: 'b' })],
      on({
        n1: [pod('p', { class: 'a', phase: 'Running' })],
        n2: [pod('q', { class: 'a', phase: 'Running' })],
      }),
    );
    expect(summary(v)).toEqual([{ pod: 'q', node: 'n2', nodeClass: 'b', podClass: 'a' }]);
  });
});
