// The node identity shell with fakes: an impostor node is cordoned and reported once; a real one is left alone.
import { beforeEach, describe, expect, it } from 'vitest';
import type { V1Node } from '@kubernetes/client-node';
import { QUARANTINE_ANNOTATION } from '../../../../src/api/names.ts';
import { NodeIdentityController } from '../../../../src/controllers/nodeidentity/controller.ts';
import { fakes, type Fakes } from '../../fake/cluster.ts';
import { instance, node } from '../fixtures.ts';

let f: Fakes;
let controller: NodeIdentityController;
beforeEach(() => {
  f = fakes();
  controller = new NodeIdentityController(f.ctx);
  f.cluster.instanceList = [instance('metal-1', { phase: 'Ready', providerID: 'sim:///real' })];
});

describe('NodeIdentityController', () => {
  it('cordons a node that copied an Instance’s labels, and reports it on the Node and the Instance once', async () => {
    const n = node('shared', { class: 'metal', instance: 'metal-1', providerID: 'aws:///x/i-0shared' });
    f.cluster.nodeList = [n];
    await controller.reconcile('shared');
    expect(f.writes.log).toEqual([['nodes.quarantine', 'shared', 'identity unproven']]);
    expect(f.events.map((e) => `${e.regarding.kind}/${e.regarding.name}/${e.type}/${e.reason}`)).toEqual([
      'Node/shared/Warning/NodeLabelsTampered',
      'Instance/metal-1/Warning/NodeLabelsTampered',
    ]);
    expect(f.events[0]!.note).toMatch(/^node shared is not the node of any Instance: it carries ipp.dev\/class=metal/);
    f.cluster.nodeList = [{ ...n, spec: { ...n.spec, unschedulable: true } }];
    await controller.reconcile('shared');
    expect(f.writes.log).toHaveLength(1);
    expect(f.events).toHaveLength(2);
  });

  it('leaves the node of an Instance alone', async () => {
    f.cluster.nodeList = [node('real', { class: 'metal', instance: 'metal-1', providerID: 'sim:///real' })];
    await controller.reconcile('real');
    expect(f.writes.log).toEqual([]);
    expect(f.events).toEqual([]);
  });

  it('looks again at a node whose Instance has not recorded its cloud instance, and judges it after the grace', async () => {
    f.cluster.instanceList = [instance('metal-2', { phase: 'Pending' })];
    f.cluster.nodeList = [node('new', { class: 'metal', instance: 'metal-2', providerID: 'sim:///new' })];
    expect(await controller.reconcile('new')).toEqual({ requeueAfterMs: 2_000 });
    expect(f.writes.log).toEqual([]);
    f.clock.now += 61_000;
    await controller.reconcile('new');
    expect(f.writes.log).toEqual([['nodes.quarantine', 'new', 'identity unproven']]);
  });

  it('lifts its own cordon once the Instance records the node’s providerID after the grace (a slow launch)', async () => {
    const launching = instance('metal-2', { phase: 'Pending' });
    const n = node('new', { class: 'metal', instance: 'metal-2', providerID: 'sim:///new' });
    f.cluster.instanceList = [launching];
    f.cluster.nodeList = [n];
    await controller.reconcile('new');
    f.clock.now += 61_000;
    await controller.reconcile('new');
    expect(f.writes.of('nodes.quarantine')).toEqual([['new', 'identity unproven']]);
    f.cluster.nodeList = [quarantined(n)];
    const recorded = instance('metal-2', { phase: 'Launched', providerID: 'sim:///new' });
    f.cluster.instanceList = [recorded];
    // The launch recording the providerID wakes the node at once, not at the next resync.
    expect([...controller.wakes.instance!(recorded, f.cluster, launching)]).toEqual(['new']);
    await controller.reconcile('new');
    expect(f.writes.of('nodes.release')).toEqual([['new']]);
    expect(f.events.map((e) => `${e.regarding.kind}/${e.regarding.name}/${e.reason}`)).toContain(
      'Node/new/NodeIdentityConfirmed',
    );
  });

  it('looks again soon at a node that changed before its release, and reports no release that did not happen', async () => {
    const own = node('real', { class: 'metal', instance: 'metal-1', providerID: 'sim:///real', unschedulable: true });
    f.cluster.nodeList = [quarantined(own)];
    f.writes.changedNodes.add('real');
    expect(await controller.reconcile('real')).toEqual({ requeueAfterMs: 1_000 });
    expect(f.events).toEqual([]);
    f.writes.changedNodes.delete('real');
    await controller.reconcile('real');
    expect(f.writes.of('nodes.release')).toEqual([['real'], ['real']]);
    expect(f.events.map((e) => `${e.regarding.kind}/${e.regarding.name}/${e.reason}`)).toEqual([
      'Node/real/NodeIdentityConfirmed',
    ]);
  });

  it('never lifts a cordon it did not set, nor one on the node of an Instance being deleted', async () => {
    // The node of a live Instance (beforeEach), cordoned by someone else: no annotation, no release.
    const own = node('real', { class: 'metal', instance: 'metal-1', providerID: 'sim:///real', unschedulable: true });
    f.cluster.nodeList = [own];
    await controller.reconcile('real');
    expect(f.writes.log).toEqual([]);
    f.cluster.instanceList = [instance('metal-1', { phase: 'Ready', providerID: 'sim:///real', deleting: true })];
    f.cluster.nodeList = [quarantined(own)];
    await controller.reconcile('real');
    expect(f.writes.log).toEqual([]);
    // The same quarantined node with its Instance live is released: the two cases above are the guards.
    f.cluster.instanceList = [instance('metal-1', { phase: 'Ready', providerID: 'sim:///real' })];
    await controller.reconcile('real');
    expect(f.writes.of('nodes.release')).toEqual([['real']]);
  });

  it('cordons quietly a node that registers after its Instance was terminated (a machine that was booting)', async () => {
    const going = instance('metal-2', { phase: 'Launched', providerID: 'sim:///late', deleting: true });
    controller.wakes.instance!(going, f.cluster);
    f.cluster.instanceList = [];
    f.cluster.nodeList = [node('late', { class: 'metal', instance: 'metal-2', providerID: 'sim:///late' })];
    await controller.reconcile('late');
    expect(f.writes.log).toEqual([['nodes.quarantine', 'late', 'identity unproven']]);
    expect(f.events).toEqual([]);
    // Still there long after: no longer a late registration.
    f.clock.now += 11 * 60_000;
    await controller.reconcile('late');
    expect(f.events.map((e) => e.reason)).toContain('NodeLabelsTampered');
  });
});

const quarantined = (n: V1Node): V1Node => ({
  ...n,
  metadata: { ...n.metadata, annotations: { [QUARANTINE_ANNOTATION]: 'identity unproven' } },
  spec: { ...n.spec, unschedulable: true },
});
