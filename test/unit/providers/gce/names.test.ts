import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../../../providers/errors.ts';
import {
  createdBy,
  labelValue,
  parseProviderId,
  providerIdOf,
  requestId,
  tagsOfLabels,
  vmName,
} from '../../../../providers/gce/names.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('GCE names', () => {
  it('vmName: deterministic per Instance UID, a valid GCE name of at most 63 characters, readable class', () => {
    const a = vmName('4f7c7b3e-1111-2222-3333-444455556666', 'mail');
    expect(a).toBe(vmName('4f7c7b3e-1111-2222-3333-444455556666', 'mail'));
    expect(a).toMatch(/^ipp-mail-[0-9a-f]{16}$/);
    expect(vmName('other-uid', 'mail')).not.toBe(a);
    const long = vmName('u', 'a'.repeat(40));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    expect(vmName('u', 'class-with-dash-at-thirty-chars-x')).not.toMatch(/--/);
  });

  it('requestId: a version-5 UUID, the same for the same call, another for another attempt or member set', () => {
    const id = requestId(['createInstances', 'p/z/m', 'uid-a', 'uid-b']);
    expect(id).toMatch(UUID);
    expect(id).not.toBe('00000000-0000-0000-0000-000000000000');
    expect(requestId(['createInstances', 'p/z/m', 'uid-a', 'uid-b'])).toBe(id);
    expect(requestId(['createInstances', 'p/z/m', 'uid-a', 'uid-b'], 1)).not.toBe(id);
    expect(requestId(['createInstances', 'p/z/m', 'uid-a'])).not.toBe(id);
    expect(requestId(['createInstances', 'p/z/other', 'uid-a', 'uid-b'])).not.toBe(id);
  });

  it('providerID: gce://<project>/<zone>/<name> both ways; anything else is NotFound', () => {
    const id = providerIdOf('my-project', 'us-central1-a', 'ipp-mail-0123');
    expect(id).toBe('gce://my-project/us-central1-a/ipp-mail-0123');
    expect(parseProviderId(id)).toEqual({ project: 'my-project', zone: 'us-central1-a', name: 'ipp-mail-0123' });
    expect(() => parseProviderId('aws:///us-east-1a/i-0123')).toThrow(NotFoundError);
    expect(() => parseProviderId('gce://p/z')).toThrow(NotFoundError);
  });

  it('labels: GCE keys map to the DESIGN tags; values are valid GCE label values', () => {
    expect(tagsOfLabels({ 'ipp-dev-cluster': 'c', 'ipp-dev-class': 'k', 'ipp-dev-instance': 'i', team: 'x' })).toEqual({
      'ipp.dev/cluster': 'c',
      'ipp.dev/class': 'k',
      'ipp.dev/instance': 'i',
      team: 'x',
    });
    expect(labelValue('mail-abc12')).toBe('mail-abc12');
    expect(labelValue('Prod.Cluster')).toBe('prod-cluster');
    const long = labelValue('x'.repeat(80));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(labelValue('x'.repeat(80))).toBe(long);
    expect(labelValue('x'.repeat(81))).not.toBe(long);
  });

  it('createdBy: the group from the created-by metadata GCE sets on group members (project number or id)', () => {
    expect(
      createdBy({
        items: [
          { key: 'kube-env', value: '…' },
          { key: 'created-by', value: 'projects/123456789/zones/us-central1-a/instanceGroupManagers/gke-c-pool-grp' },
        ],
      }),
    ).toEqual({ project: '123456789', zone: 'us-central1-a', name: 'gke-c-pool-grp' });
    expect(createdBy({ items: [] })).toBeUndefined();
    expect(createdBy(undefined)).toBeUndefined();
  });
});
