// The isolation invariant as a check: on an ipp node only node agents and pods of the node's class;
// pods of a class only on ipp nodes. Which DaemonSet pods count as node agents is trust.ts's call.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { NodeAgentTrust } from '../../../../src/controllers/audit/trust.ts';
import { nodeFindings, violations, type Standing } from '../../../../src/controllers/audit/violations.ts';
import { node, pod } from '../fixtures.ts';

const summary = (v: ReturnType<typeof violations>) =>
  v.map((x) => ({ pod: x.pod.metadata!.name, node: x.node, nodeClass: x.nodeClass, podClass: x.podClass }));
const workloads = (): Standing => 'workload';
const on = (nodeName: string, p: V1Pod): V1Pod => ({ ...p, spec: { ...p.spec!, nodeName } });
const withUid = (n: V1Node, uid: string): V1Node => ({ ...n, metadata: { ...n.metadata, uid } });
const mirrorOf = (name: string, n: V1Node, uid = n.metadata!.uid!): V1Pod => {
  const p = on(n.metadata!.name!, pod(name, { class: null, mirror: true, phase: 'Running' }));
  p.metadata!.ownerReferences = [{ apiVersion: 'v1', kind: 'Node', name: n.metadata!.name!, uid }];
  return p;
};

describe('violations', () => {
  it('accepts pods of the node class, node agents and finished pods', () => {
    const pods = [
      on('n1', pod('own', { class: 'metal', phase: 'Running' })),
      on('n1', pod('agent', { class: null, daemonSet: true, phase: 'Running' })),
      on('n1', pod('done', { class: 'other', phase: 'Succeeded' })),
      on('n1', pod('failed', { class: null, phase: 'Failed' })),
    ];
    const standing = (p: V1Pod): Standing => (p.metadata!.name === 'agent' ? 'agent' : 'workload');
    expect(violations([node('n1', { class: 'metal' })], pods, standing)).toEqual([]);
  });

  it('reports a pod of another class and a pod of no class, naming node and classes', () => {
    const intruders = [
      on('n1', pod('tenant-b', { class: 'gpu', phase: 'Running' })),
      on('n1', pod('plain', { class: null, phase: 'Running' })),
    ];
    const v = violations([node('n1', { class: 'metal' })], intruders, workloads);
    expect(summary(v)).toEqual([
      { pod: 'tenant-b', node: 'n1', nodeClass: 'metal', podClass: 'gpu' },
      { pod: 'plain', node: 'n1', nodeClass: 'metal', podClass: undefined },
    ]);
    expect(v[0]!.pod).toBe(intruders[0]);
  });

  it('reports a still-pending pod bound to the node too (it will run there)', () => {
    const v = violations([node('n1', { class: 'metal' })], [on('n1', pod('p', { class: 'gpu' }))], workloads);
    expect(summary(v)).toHaveLength(1);
  });

  it('waits for a verdict on a pod whose standing is unknown', () => {
    const v = violations([node('n1', { class: 'metal' })], [on('n1', pod('p', { class: null }))], () => 'unknown');
    expect(v).toEqual([]);
  });

  it('reports a pod of a class running on a shared node (a later webhook added the label); not unplaced pods', () => {
    const v = violations(
      [node('n1', { class: 'metal' })],
      [
        on('shared', pod('escaped', { class: 'metal', phase: 'Running' })),
        pod('waiting', { class: 'metal' }),
        on('shared', pod('plain', { class: null, phase: 'Running' })),
        on('shared', pod('static', { class: 'metal', mirror: true, phase: 'Running' })),
      ],
      workloads,
    );
    expect(summary(v)).toEqual([{ pod: 'escaped', node: 'shared', nodeClass: undefined, podClass: 'metal' }]);
  });

  it('does not take the node of an Instance for a shared node while its Node is missing (deleted, re-registering)', () => {
    // Found by the chaos run: a Node deleted under a running pod made the auditor report the pod.
    const running = on('sim-1', pod('relay', { class: 'metal', phase: 'Running' }));
    expect(violations([], [running], workloads, new Map([['sim-1', 'metal']]))).toEqual([]);
    // A node no Instance registered with is still a shared node.
    expect(summary(violations([], [running], workloads, new Map([['sim-2', 'metal']])))).toEqual([
      { pod: 'relay', node: 'sim-1', nodeClass: undefined, podClass: 'metal' },
    ]);
  });

  it('judges what runs on an Instance’s node that left the labelled ones (its kubelet dropped its labels)', () => {
    const pods = [
      on('sim-1', pod('relay', { class: 'metal', phase: 'Running' })),
      on('sim-1', pod('foreign', { class: 'gpu', phase: 'Running' })),
      on('sim-1', pod('tolerates-all', { class: null, phase: 'Running' })),
      on('sim-1', pod('static', { class: null, mirror: true, phase: 'Running' })),
    ];
    expect(summary(violations([], pods, workloads, new Map([['sim-1', 'metal']])))).toEqual([
      { pod: 'foreign', node: 'sim-1', nodeClass: 'metal', podClass: 'gpu' },
      { pod: 'tolerates-all', node: 'sim-1', nodeClass: 'metal', podClass: undefined },
    ]);
  });

  it('checks every ipp node', () => {
    const v = violations(
      [node('n1', { class: 'a' }), node('n2', { class: 'b' })],
      [on('n1', pod('p', { class: 'a', phase: 'Running' })), on('n2', pod('q', { class: 'a', phase: 'Running' }))],
      workloads,
    );
    expect(summary(v)).toEqual([{ pod: 'q', node: 'n2', nodeClass: 'b', podClass: 'a' }]);
  });
});

describe('nodeFindings', () => {
  const found = (...names: string[]) =>
    violations(
      [node('n1', { class: 'metal' })],
      names.map((n) => on('n1', pod(n, { class: null, phase: 'Running' }))),
      workloads,
    );

  it('reports only violations not reported at the node’s last audit, and remembers all current ones', () => {
    const first = nodeFindings(new Set(), found('a'));
    expect(first.report.map((v) => v.pod.metadata!.name)).toEqual(['a']);
    const second = nodeFindings(first.current, found('a', 'b'));
    expect(second.report.map((v) => v.pod.metadata!.name)).toEqual(['b']);
    expect([...second.current]).toEqual(['uid-team-a-a', 'uid-team-a-b']);
    // a left and came back (the node was relabelled twice): reported again, as a new violation.
    const third = nodeFindings(nodeFindings(second.current, found('b')).current, found('a', 'b'));
    expect(third.report.map((v) => v.pod.metadata!.name)).toEqual(['a']);
    expect(nodeFindings(third.current, []).current.size).toBe(0);
  });
});

describe('NodeAgentTrust', () => {
  const n1 = withUid(node('n1', { class: 'metal' }), 'node-uid');
  const dsPod = (ns: string) => on('n1', pod(`agent-${ns}`, { class: null, daemonSet: true, ns, phase: 'Running' }));

  it('trusts a DaemonSet pod only in a trusted namespace and only once its owner resolves to that DaemonSet', async () => {
    const reads: string[] = [];
    const trust = new NodeAgentTrust(['kube-system'], async (ns, name) => {
      reads.push(`${ns}/${name}`);
      return { metadata: { name, namespace: ns, uid: 'ds-uid' } };
    });
    expect(trust.standing(dsPod('tenant'), n1)).toBe('workload');
    expect(trust.standing(dsPod('kube-system'), n1)).toBe('unknown');
    await trust.settled();
    expect(trust.standing(dsPod('kube-system'), n1)).toBe('agent');
    expect(reads).toEqual(['kube-system/ds']);
  });

  it('treats a forged owner (no such DaemonSet, or another UID) as a workload; a failed read stays unknown', async () => {
    const missing = new NodeAgentTrust(['kube-system'], async () => undefined);
    missing.standing(dsPod('kube-system'), n1);
    await missing.settled();
    expect(missing.standing(dsPod('kube-system'), n1)).toBe('workload');

    const other = new NodeAgentTrust(['kube-system'], async (ns, name) => ({ metadata: { name, uid: 'another' } }));
    other.standing(dsPod('kube-system'), n1);
    await other.settled();
    expect(other.standing(dsPod('kube-system'), n1)).toBe('workload');

    const broken = new NodeAgentTrust(['kube-system'], () => Promise.reject(new Error('503')));
    broken.standing(dsPod('kube-system'), n1);
    await broken.settled();
    expect(broken.standing(dsPod('kube-system'), n1)).toBe('unknown');
  });

  it('trusts a mirror pod owned by its own node (by UID), not one with a copied annotation', () => {
    const trust = new NodeAgentTrust([]);
    expect(trust.standing(mirrorOf('static', n1), n1)).toBe('agent');
    expect(trust.standing(mirrorOf('forged', n1, 'other-uid'), n1)).toBe('workload');
    expect(trust.standing(on('n1', pod('annotated', { class: null, mirror: true })), n1)).toBe('workload');
  });
});
