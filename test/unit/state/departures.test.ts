import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Departures } from '../../../src/state/departures.ts';

const pod = (phase: string, extra: Partial<V1Pod['metadata']> = {}): V1Pod => ({
  metadata: { name: 'web-1', namespace: 'team-a', labels: { 'ipp-class': 'metal' }, ...extra },
  spec: { containers: [], nodeName: 'n1' },
  status: { phase },
});
const NODE_CREATED = Date.parse('2026-12-02T10:00:00Z');
const MACHINE = 'aws:///us-east-1a/i-0abc';
const ippNode = (n: string) => (n === 'n1' ? { created: NODE_CREATED, machine: MACHINE } : undefined);

describe('Departures', () => {
  it('notes a workload removed from an ipp node while still running or pending: force-deleted', () => {
    const d = new Departures();
    d.seen(pod('Running'), 'update', ippNode);
    expect(d.unconfirmed(MACHINE)).toBeUndefined();
    d.seen(pod('Running'), 'delete', ippNode);
    expect(d.unconfirmed(MACHINE)).toBe('team-a/web-1');
    // Noted against the machine, not the node's name: another machine is not marked.
    expect(d.unconfirmed('aws:///us-east-1a/i-0other')).toBeUndefined();
    d.machineGone(MACHINE);
    expect(d.unconfirmed(MACHINE)).toBeUndefined();
    d.seen(pod('Pending'), 'delete', ippNode);
    expect(d.unconfirmed(MACHINE)).toBe('team-a/web-1');
  });

  it('not a pod its kubelet ended first, a node agent, or a pod on a node that is not ipp’s', () => {
    const d = new Departures();
    d.seen(pod('Succeeded'), 'delete', ippNode);
    d.seen(pod('Failed'), 'delete', ippNode);
    d.seen(
      pod('Running', {
        labels: {},
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'd', controller: true }],
      }),
      'delete',
      ippNode,
    );
    d.seen(pod('Running'), 'delete', () => undefined);
    expect(d.unconfirmed(MACHINE)).toBeUndefined();
  });

  it('not a pod bound to an earlier machine of the same name (removed by the pod GC long after)', () => {
    const d = new Departures();
    const bound = (at: string) => {
      const p = pod('Running');
      p.status!.conditions = [{ type: 'PodScheduled', status: 'True', lastTransitionTime: new Date(at) }];
      return p;
    };
    d.seen(bound('2026-12-02T09:59:00Z'), 'delete', ippNode);
    expect(d.unconfirmed(MACHINE)).toBeUndefined();
    d.seen(bound('2026-12-02T10:00:05Z'), 'delete', ippNode);
    expect(d.unconfirmed(MACHINE)).toBe('team-a/web-1');
  });
});
