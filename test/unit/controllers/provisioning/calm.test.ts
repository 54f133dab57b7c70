// What ends a class's calm (calm.ts): the events that could give a pass something to decide, and not
// the pins, bindings and status writes a burst is made of.
import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { instanceEndsCalm, podEndsCalm } from '../../../../src/controllers/provisioning/calm.ts';
import { FakeCluster } from '../../fake/cluster.ts';
import { cls, instance, node, pod } from '../fixtures.ts';

const world = () => {
  const c = new FakeCluster();
  c.classList = [cls()];
  c.instanceList = [
    instance('metal-x', { providerID: 'sim:///n1', phase: 'Ready' }),
    instance('metal-y', { providerID: 'sim:///n2', phase: 'Ready' }),
    instance('other-z', { class: 'other', providerID: 'sim:///n3', phase: 'Ready' }),
  ];
  c.nodeList = [
    node('n1', { class: 'metal', instance: 'metal-x' }),
    node('n2', { class: 'metal', instance: 'metal-y' }),
    node('n3', { class: 'other', instance: 'other-z' }),
    node('plain'),
  ];
  return c;
};

/** The pod pinned by name to `node`, its gate removed, as the placement controller writes it. */
const pinned = (p: V1Pod, node: string): V1Pod => ({
  ...p,
  spec: {
    ...p.spec!,
    schedulingGates: [],
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }],
        },
      },
    },
  },
});
const bound = (p: V1Pod, node: string): V1Pod => ({ ...p, spec: { ...p.spec!, nodeName: node } });
const withStatus = (p: V1Pod, status: V1Pod['status']): V1Pod => ({ ...p, status });

describe('podEndsCalm', () => {
  const c = world();
  const waiting = pod('web-1', { claim: 'metal-x' });

  it('leaves the calm through a pin to the claim, its binding there and the kubelet after it', () => {
    const pin = pinned(waiting, 'n1');
    expect(podEndsCalm(waiting, pin, c)).toEqual([]);
    const bind = bound(pin, 'n1');
    expect(podEndsCalm(pin, bind, c)).toEqual([]);
    expect(podEndsCalm(bind, withStatus(bind, { phase: 'Running' }), c)).toEqual([]);
  });

  it('ends it for a pod added or deleted (no old copy)', () => {
    expect(podEndsCalm(undefined, pod('web-2'), c)).toEqual(['metal']);
  });

  it('ends it when another scheduling gate is lifted from a pod (a queue admitted it), not while one holds it', () => {
    const queued = pod('web-3');
    queued.spec!.schedulingGates = [{ name: 'kueue.x-k8s.io/admission' }, ...queued.spec!.schedulingGates!];
    const admitted = { ...queued, spec: { ...queued.spec!, schedulingGates: queued.spec!.schedulingGates!.slice(1) } };
    expect(podEndsCalm(queued, admitted, c)).toEqual(['metal']);
    expect(
      podEndsCalm(
        queued,
        { ...queued, metadata: { ...queued.metadata, labels: { ...queued.metadata!.labels, x: 'y' } } },
        c,
      ),
    ).toEqual([]);
  });

  it('ends it for a claim that changes, in the pod’s class and the claimed Instance’s', () => {
    expect(podEndsCalm(waiting, pod('web-1', { claim: 'metal-y' }), c)).toEqual(['metal']);
    const foreign = pod('intruder', { class: 'other' });
    expect(podEndsCalm(foreign, pod('intruder', { class: 'other', claim: 'metal-x' }), c).sort()).toEqual([
      'metal',
      'other',
    ]);
  });

  it('ends it for a pod that ends or starts deleting, not for a pinned pod the scheduler refuses', () => {
    expect(podEndsCalm(waiting, withStatus(waiting, { phase: 'Failed' }), c)).toEqual(['metal']);
    expect(podEndsCalm(waiting, pod('web-1', { claim: 'metal-x', deleting: true }), c)).toEqual(['metal']);
    const pin = pinned(waiting, 'n1');
    const refused = withStatus(pin, {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: new Date() }],
    });
    expect(podEndsCalm(pin, refused, c)).toEqual([]);
  });

  it('ends it for the class of an ipp node a pod is bound to that is not its claim’s', () => {
    // Bound elsewhere than its claim: it takes n2 from whoever claims metal-y.
    expect(podEndsCalm(waiting, bound(waiting, 'n2'), c)).toEqual(['metal']);
    // A pod of no class on an ipp node of another class.
    const stranger = pod('stranger', { class: null, gated: false });
    expect(podEndsCalm(stranger, bound(stranger, 'n3'), c)).toEqual(['other']);
    // On a node that is not ipp's: nobody's calm.
    expect(podEndsCalm(stranger, bound(stranger, 'plain'), c)).toEqual([]);
  });
});

describe('instanceEndsCalm', () => {
  it('leaves the calm through a launch and a registration', () => {
    const fresh = instance('metal-x');
    const launched = instance('metal-x', { phase: 'Launched', providerID: 'sim:///n1' });
    expect(instanceEndsCalm(fresh, launched)).toBe(false);
    expect(instanceEndsCalm(launched, instance('metal-x', { phase: 'Ready', providerID: 'sim:///n1' }))).toBe(false);
  });

  it('ends it for an Instance added or deleted, deleting, terminated, out of the pool, or of another class', () => {
    const ready = instance('metal-x', { phase: 'Ready' });
    expect(instanceEndsCalm(undefined, ready)).toBe(true);
    expect(instanceEndsCalm(ready, instance('metal-x', { phase: 'Ready', deleting: true }))).toBe(true);
    expect(instanceEndsCalm(ready, instance('metal-x', { phase: 'Terminated' }))).toBe(true);
    expect(instanceEndsCalm(instance('metal-x', { warm: true }), ready)).toBe(true);
    expect(instanceEndsCalm(ready, instance('metal-x', { phase: 'Ready', class: 'other' }))).toBe(true);
  });
});
