// Is a Node labelled as an ipp node really the node of an Instance? Only its providerID says so.
import { describe, expect, it } from 'vitest';
import type { Instance } from '../../../../src/api/types.ts';
import { QUARANTINE_ANNOTATION } from '../../../../src/api/names.ts';
import {
  mayRelease,
  nodeChangeMattersToIdentity,
  nodeStanding,
  UNCONFIRMED_GRACE_MS,
} from '../../../../src/controllers/nodeidentity/decisions.ts';
import { instance, node } from '../fixtures.ts';

const lookup = (...instances: Instance[]) => ({
  instance: (name: string) => instances.find((i) => i.metadata.name === name),
  instanceByProviderID: (id: string | undefined) => instances.find((i) => !!id && i.status?.providerID === id),
  instancesOfClass: (cls: string) => instances.filter((i) => i.spec.class === cls),
});

describe('nodeStanding', () => {
  const real = instance('metal-1', { phase: 'Ready', providerID: 'sim:///real' });

  it('leaves a node without ipp labels alone', () => {
    expect(nodeStanding(node('shared'), lookup(real)).kind).toBe('unlabelled');
  });

  it('hands a node whose providerID is an Instance’s to the Instance controller (it checks the labels)', () => {
    const n = node('real', { class: 'metal', instance: 'metal-1', providerID: 'sim:///real' });
    expect(nodeStanding(n, lookup(real))).toEqual({ kind: 'instance', instance: real });
  });

  it('calls a node with another Instance’s labels and its own providerID an impostor, naming both', () => {
    const n = node('shared', { class: 'metal', instance: 'metal-1', providerID: 'aws:///us-east-1a/i-0shared' });
    const s = nodeStanding(n, lookup(real));
    expect(s).toMatchObject({ kind: 'impostor', claimed: real });
    expect(s.kind === 'impostor' && s.why).toBe(
      'it carries ipp.dev/class=metal, ipp.dev/instance=metal-1, but the cloud instance of Instance metal-1 is sim:///real, and this node has providerID aws:///us-east-1a/i-0shared',
    );
  });

  it('calls a node with ipp labels and no providerID, or one that is no Instance’s, an impostor', () => {
    const none = node('shared', { class: 'metal' });
    delete none.spec!.providerID;
    expect(nodeStanding(none, lookup(real))).toEqual({
      kind: 'impostor',
      why: 'it carries ipp.dev/class=metal, but its lack of a providerID matches no Instance',
    });
    const unknown = node('shared', { class: 'metal', instance: 'metal-9', providerID: 'aws:///x/i-0shared' });
    expect(nodeStanding(unknown, lookup(real))).toEqual({
      kind: 'impostor',
      why: 'it carries ipp.dev/class=metal, ipp.dev/instance=metal-9, but its providerID aws:///x/i-0shared matches no Instance',
    });
  });

  it('waits while the Instance it names has not recorded its cloud instance yet, but not for ever', () => {
    const launching = instance('metal-2', { phase: 'Pending' });
    const n = node('new', { class: 'metal', instance: 'metal-2', providerID: 'sim:///new' });
    expect(nodeStanding(n, lookup(launching), 0)).toEqual({ kind: 'unconfirmed', instance: launching });
    expect(nodeStanding(n, lookup(launching), UNCONFIRMED_GRACE_MS)).toMatchObject({
      kind: 'impostor',
      claimed: launching,
    });
  });

  it('does not wait for an Instance that is going away', () => {
    const going = instance('metal-3', { phase: 'Pending', deleting: true });
    const n = node('new', { class: 'metal', instance: 'metal-3', providerID: 'sim:///new' });
    expect(nodeStanding(n, lookup(going)).kind).toBe('impostor');
  });

  it('waits for a node with its pool’s class label only (GKE) while an Instance of the class is launching', () => {
    const n = node('gke-pool-node', { class: 'metal', providerID: 'gce://p/z/vm-1' });
    const pending = instance('metal-2', { phase: 'Pending' });
    expect(nodeStanding(n, lookup(real, pending), 0)).toEqual({ kind: 'unconfirmed', instance: pending });
    expect(nodeStanding(n, lookup(real, pending), UNCONFIRMED_GRACE_MS).kind).toBe('impostor');
    expect(nodeStanding(n, lookup(real), 0).kind).toBe('impostor');
  });
});

describe('mayRelease', () => {
  const real = instance('metal-1', { phase: 'Ready', providerID: 'sim:///real' });
  const quarantined = (o: Parameters<typeof node>[1]) => {
    const n = node('real', {
      class: 'metal',
      instance: 'metal-1',
      providerID: 'sim:///real',
      unschedulable: true,
      ...o,
    });
    n.metadata!.annotations = { [QUARANTINE_ANNOTATION]: 'identity unproven' };
    return n;
  };

  it('lifts ipp’s own cordon from a node that proved to be a live Instance’s, with agreeing labels', () => {
    const n = quarantined({});
    expect(mayRelease(n, nodeStanding(n, lookup(real)))).toBe(true);
  });

  it('keeps it while the node is no Instance’s, carries another class or not its taints, or its Instance is going', () => {
    const stranger = quarantined({ providerID: 'aws:///x/i-0other' });
    expect(mayRelease(stranger, nodeStanding(stranger, lookup(real)))).toBe(false);
    const otherClass = quarantined({ class: 'gpu' });
    expect(mayRelease(otherClass, nodeStanding(otherClass, lookup(real)))).toBe(false);
    // Its own, with its labels, but without the class's taints: the Instance controller refuses it.
    const untainted = quarantined({ untainted: true });
    expect(mayRelease(untainted, nodeStanding(untainted, lookup(real)))).toBe(false);
    const going = instance('metal-1', { phase: 'Ready', providerID: 'sim:///real', deleting: true });
    expect(mayRelease(quarantined({}), nodeStanding(quarantined({}), lookup(going)))).toBe(false);
  });

  it('never lifts a cordon without its annotation (an operator’s)', () => {
    const n = node('real', { class: 'metal', instance: 'metal-1', providerID: 'sim:///real', unschedulable: true });
    expect(mayRelease(n, nodeStanding(n, lookup(real)))).toBe(false);
  });
});

describe('nodeChangeMattersToIdentity', () => {
  const base = () => node('real', { class: 'metal', instance: 'metal-1', providerID: 'sim:///real' });

  it("ignores a node's heartbeats, conditions and taints", () => {
    const after = base();
    after.metadata!.resourceVersion = '9';
    after.spec!.taints = [{ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }];
    after.status = { conditions: [{ type: 'Ready', status: 'True' }] };
    expect(nodeChangeMattersToIdentity(base(), after)).toBe(false);
  });

  it('sees its labels, providerID, cordon and quarantine change', () => {
    const relabelled = node('real', { class: 'gpu', instance: 'metal-1', providerID: 'sim:///real' });
    const moved = node('real', { class: 'metal', instance: 'metal-1', providerID: 'sim:///other' });
    const cordoned = node('real', {
      class: 'metal',
      instance: 'metal-1',
      providerID: 'sim:///real',
      unschedulable: true,
    });
    const marked = base();
    marked.metadata!.annotations = { [QUARANTINE_ANNOTATION]: 'identity unproven' };
    for (const after of [relabelled, moved, cordoned, marked])
      expect(nodeChangeMattersToIdentity(base(), after)).toBe(true);
  });
});
