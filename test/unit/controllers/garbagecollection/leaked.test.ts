// leaked(): cloud instances tagged for this cluster that no Instance accounts for, past the grace period.
import { describe, expect, it } from 'vitest';
import { TAG_CLASS, TAG_CLUSTER, TAG_INSTANCE } from '../../../../src/api/names.ts';
import { leaked } from '../../../../src/controllers/garbagecollection/controller.ts';
import type { CloudInstance } from '../../../../providers/types.ts';
import { instance } from '../fixtures.ts';

const NOW = Date.parse('2024-01-01T01:00:00Z');
const GRACE = 5 * 60_000;

const cloud = (id: string, o: { instance?: string; ageMs?: number } = {}): CloudInstance => ({
  providerID: `aws:///eu-west-1a/${id}`,
  instanceType: 'i3.metal',
  zone: 'eu-west-1a',
  state: 'running',
  tags: { [TAG_CLUSTER]: 'prod', [TAG_CLASS]: 'metal', ...(o.instance ? { [TAG_INSTANCE]: o.instance } : {}) },
  launchedAt: new Date(NOW - (o.ageMs ?? GRACE * 2)),
});
const ids = (l: CloudInstance[]) => l.map((c) => c.providerID.split('/').pop());

describe('leaked', () => {
  it('reports an old cloud instance that no Instance accounts for', () => {
    expect(ids(leaked([cloud('i-1', { instance: 'deleted-long-ago' }), cloud('i-2')], [], GRACE, NOW))).toEqual([
      'i-1',
      'i-2',
    ]);
  });

  it('spares instances younger than the grace period, and counts it inclusively', () => {
    const young = cloud('i-young', { ageMs: GRACE - 1 });
    const exact = cloud('i-exact', { ageMs: GRACE });
    expect(ids(leaked([young, exact], [], GRACE, NOW))).toEqual(['i-exact']);
  });

  it('spares an instance matched by providerID', () => {
    const inst = instance('x', { providerID: 'aws:///eu-west-1a/i-1' });
    expect(leaked([cloud('i-1', { instance: 'renamed' })], [inst], GRACE, NOW)).toEqual([]);
  });

  it('spares an instance whose ipp.dev/instance tag names an Instance (launched, status not yet written)', () => {
    expect(leaked([cloud('i-1', { instance: 'x' })], [instance('x')], GRACE, NOW)).toEqual([]);
  });

  it('spares an instance whose Instance is being deleted (its finalizer terminates it)', () => {
    expect(leaked([cloud('i-1', { instance: 'x' })], [instance('x', { deleting: true })], GRACE, NOW)).toEqual([]);
  });

  it('reports a duplicate: tagged with an Instance that has recorded another providerID', () => {
    const owner = instance('x', { providerID: 'aws:///eu-west-1a/i-kept' });
    expect(
      ids(leaked([cloud('i-kept', { instance: 'x' }), cloud('i-dup', { instance: 'x' })], [owner], GRACE, NOW)),
    ).toEqual(['i-dup']);
  });

  it('does not match an untagged instance through an Instance without providerID', () => {
    expect(ids(leaked([cloud('i-1')], [instance('x')], GRACE, NOW))).toEqual(['i-1']);
  });

  it('picks only the unaccounted ones from a mixed list', () => {
    const list = [cloud('i-1', { instance: 'a' }), cloud('i-2', { instance: 'b' }), cloud('i-3', { instance: 'gone' })];
    expect(
      ids(leaked(list, [instance('a'), instance('z', { providerID: 'aws:///eu-west-1a/i-2' })], GRACE, NOW)),
    ).toEqual(['i-3']);
  });
});
