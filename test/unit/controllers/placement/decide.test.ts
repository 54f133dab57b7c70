// Which claimed pod may be placed now, decided per pod over its Instance, its node and their holders.
import type { V1Node } from '@kubernetes/client-node';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Instance } from '../../../../src/api/types.ts';
import { instanceChangeMattersToPlacement, placementOf } from '../../../../src/controllers/placement/decide.ts';
import { FakeCluster } from '../../fake/cluster.ts';
import { cls, instance, node, pod } from '../fixtures.ts';

let c: FakeCluster;
beforeEach(() => {
  c = new FakeCluster();
  c.classList = [cls()];
  c.instanceList = [instance('x', { phase: 'Ready', providerID: 'sim:///n1' })];
  c.nodeList = [node('n1', { class: 'metal', instance: 'x' })];
});
const placed = (name: string) =>
  placementOf(
    c.podList.find((p) => p.metadata!.name === name)!,
    c,
  )?.node.metadata?.name;

describe('placementOf', () => {
  it('places a pod claiming a Ready Instance on a Ready node there, gated or handed to scheduler ipp', () => {
    c.podList = [pod('a', { claim: 'x' })];
    expect(placed('a')).toBe('n1');
    c.podList = [pod('b', { claim: 'x', gated: false, schedulerName: 'ipp' })];
    expect(placed('b')).toBe('n1');
  });

  it('places on a Ready node of the Instance before the Instance controller has recorded it Ready', () => {
    c.instanceList = [instance('x', { phase: 'Launched', providerID: 'sim:///n1' })];
    c.podList = [pod('a', { claim: 'x' })];
    expect(placed('a')).toBe('n1');
  });

  it('waits while the node is not Ready, cordoned, mislabelled or missing, or the Instance not launched', () => {
    const ours = { class: 'metal', instance: 'x' };
    const x = instance('x', { phase: 'Ready', providerID: 'sim:///n1' });
    const cases: [string, Instance, V1Node | undefined][] = [
      ['node NotReady', x, node('n1', { ...ours, ready: false })],
      ['node cordoned', x, node('n1', { ...ours, unschedulable: true })],
      ['node of another class', x, node('n1', { class: 'other', instance: 'x' })],
      ['node naming another Instance', x, node('n1', { class: 'metal', instance: 'y' })],
      ['node unlabelled', x, node('n1')],
      ['no node yet', x, undefined],
      ['no providerID recorded yet', instance('x', { phase: 'Pending' }), node('n1', ours)],
      [
        'Instance deleting',
        instance('x', { phase: 'Ready', providerID: 'sim:///n1', deleting: true }),
        node('n1', ours),
      ],
      ['Instance still warm', instance('x', { phase: 'Ready', providerID: 'sim:///n1', warm: true }), node('n1', ours)],
    ];
    c.podList = [pod('a', { claim: 'x' })];
    for (const [what, x, n] of cases) {
      c.instanceList = [x];
      c.nodeList = n ? [n] : [];
      expect({ what, placed: placed('a') }).toEqual({ what, placed: undefined });
    }
  });

  it("never places a pod on a node without its class's taints, Ready and uncordoned as it may look", () => {
    c.podList = [pod('a', { claim: 'x' })];
    for (const drop of ['NoSchedule', 'NoExecute']) {
      const n = c.nodeList[0]!;
      n.spec!.taints = (n.spec!.taints ?? []).filter((t) => t.effect !== drop);
      expect(placed('a')).toBeUndefined();
      c.nodeList = [node('n1', { class: 'metal', instance: 'x' })];
    }
    expect(placed('a')).toBe('n1');
  });

  it("never places a pod on another class's Instance, whatever its claim says", () => {
    c.instanceList = [instance('x', { phase: 'Ready', providerID: 'sim:///n1', class: 'other' })];
    c.podList = [pod('a', { claim: 'x' })];
    expect(placed('a')).toBeUndefined();
  });

  it('places nothing for a namespace the class does not allow, an unknown class, or a pod already placed', () => {
    c.classList = [cls({ namespaces: ['team-b'] })];
    c.podList = [pod('a', { claim: 'x' })];
    expect(placed('a')).toBeUndefined();
    c.classList = [];
    expect(placed('a')).toBeUndefined();
    c.classList = [cls()];
    c.podList = [pod('a', { claim: 'x', gated: false })];
    expect(placed('a')).toBeUndefined();
  });

  describe('Pod isolation', () => {
    it('does not place a pod beside a workload already pinned to, bound to or running on the node', () => {
      for (const other of [
        pod('other', { claim: 'x', gated: false }),
        pod('other', { claim: 'x', gated: false, nodeName: 'n1' }),
        pod('other', { class: null, nodeName: 'n1', phase: 'Running' }),
      ]) {
        c.podList = [pod('a', { claim: 'x' }), other];
        expect(placed('a')).toBeUndefined();
      }
    });

    it('serves the oldest of two waiting claimers; DaemonSet pods and ended pods hold nothing', () => {
      c.podList = [
        pod('young', { claim: 'x', created: '2024-01-01T00:00:02Z' }),
        pod('old', { claim: 'x', created: '2024-01-01T00:00:01Z' }),
        pod('ds', { class: null, nodeName: 'n1', daemonSet: true, phase: 'Running' }),
        pod('done', { class: null, nodeName: 'n1', phase: 'Succeeded' }),
      ];
      expect(placed('old')).toBe('n1');
      expect(placed('young')).toBeUndefined();
    });

    it('places a claimed pod given a DaemonSet owner since (forged): it is not left holding its Instance unplaced', () => {
      c.podList = [pod('forged', { claim: 'x', daemonSet: true })];
      expect(placed('forged')).toBe('n1');
    });

    it('places nobody on a node a pod left without being seen to end (it may still run there)', () => {
      c.podList = [pod('next', { claim: 'x' })];
      c.unconfirmedExits.set('n1', 'team-b/gone');
      expect(placed('next')).toBeUndefined();
      c.classList = [cls({ isolation: 'Class' })];
      expect(placed('next')).toBe('n1');
    });

    it('serves the claimer waiting longest: one a queue held counts from its release', () => {
      c.podList = [
        pod('young', { claim: 'x', created: '2024-01-01T00:00:02Z' }),
        pod('aged', { claim: 'x', created: '2024-01-01T00:00:01Z' }),
      ];
      c.released.set('aged', Date.parse('2024-01-01T00:00:09Z'));
      expect(placed('young')).toBe('n1');
      expect(placed('aged')).toBeUndefined();
    });

    it('under Class isolation places every claimer of the Instance', () => {
      c.classList = [cls({ isolation: 'Class' })];
      c.podList = [pod('a', { claim: 'x' }), pod('b', { claim: 'x', gated: false, nodeName: 'n1' })];
      expect(placed('a')).toBe('n1');
    });
  });
});

describe('instanceChangeMattersToPlacement', () => {
  const launched = () => instance('x', { phase: 'Launched', providerID: 'sim:///n1' });

  it('ignores the Instance turning Ready or any other status of it', () => {
    const ready = instance('x', { phase: 'Ready', providerID: 'sim:///n1', resourceVersion: '7' });
    ready.status!.nodeName = 'n1';
    expect(instanceChangeMattersToPlacement(launched(), ready)).toBe(false);
  });

  it('sees its launch, its leaving the warm pool, its end and another class', () => {
    const unlaunched = instance('x', {});
    const warm = instance('x', { phase: 'Launched', providerID: 'sim:///n1', warm: true });
    const deleting = instance('x', { phase: 'Launched', providerID: 'sim:///n1', deleting: true });
    const terminated = instance('x', { phase: 'Terminated', providerID: 'sim:///n1' });
    const other = instance('x', { phase: 'Launched', providerID: 'sim:///n1', class: 'other' });
    expect(instanceChangeMattersToPlacement(unlaunched, launched())).toBe(true);
    expect(instanceChangeMattersToPlacement(warm, launched())).toBe(true);
    for (const after of [deleting, terminated, other])
      expect(instanceChangeMattersToPlacement(launched(), after)).toBe(true);
  });
});
