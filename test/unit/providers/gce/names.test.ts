import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../../../providers/errors.ts';
import {
  createdBy,
  instanceOfVmName,
  labelValue,
  parseProviderId,
  providerIdOf,
  requestId,
  tagsOfLabels,
  vmName,
} from '../../../../providers/gce/names.ts';
import { tagsOf, toCloudInstance } from '../../../../providers/gce/vm.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('GCE names', () => {
  it('vmName: derived from the Instance UID, carries the Instance name, a valid GCE name of at most 63 characters', () => {
    const uid = '4f7c7b3e-1111-2222-3333-444455556666';
    const a = vmName(uid, 'mail-1a2b3c4d');
    expect(a).toMatch(/^ipp-mail-1a2b3c4d-[0-9a-f]{8}$/);
    expect(vmName(uid, 'mail-1a2b3c4d')).toBe(a);
    // Same Instance name, new object (recreated): another VM name.
    expect(vmName('other-uid', 'mail-1a2b3c4d')).not.toBe(a);
    expect(instanceOfVmName(a)).toBe('mail-1a2b3c4d');
    // A class may start with a digit; a GCE name may not: the prefix keeps it valid.
    expect(vmName(uid, '0class-1a2b3c4d')).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    const longest = vmName(uid, `${'c'.repeat(40)}-1a2b3c4d`);
    expect(longest.length).toBeLessThanOrEqual(63);
    expect(instanceOfVmName(longest)).toBe(`${'c'.repeat(40)}-1a2b3c4d`);
    const tooLong = vmName(uid, 'x'.repeat(51));
    expect(tooLong).toMatch(/^ipp-x-[0-9a-f]{16}$/);
    expect(instanceOfVmName(tooLong)).toBeUndefined();
    expect(instanceOfVmName('gke-prod-pool-1234abcd-x9z8')).toBeUndefined();
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

describe('GCE VM as CloudInstance', () => {
  it('owned by its Instance from the name before the label is written, by the label after; GCE TERMINATED is stopped, not gone', () => {
    const vm = {
      name: 'ipp-mail-1a2b3c4d-0badc0de',
      zone: 'https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a',
      machineType: 'zones/us-central1-a/machineTypes/n2-standard-4',
      status: 'RUNNING',
      labels: { 'ipp-dev-cluster': 'prod', 'ipp-dev-class': 'mail' },
      creationTimestamp: '2026-01-02T03:04:05.000-08:00',
    };
    expect(toCloudInstance(vm, 'my-project')).toEqual({
      providerID: 'gce://my-project/us-central1-a/ipp-mail-1a2b3c4d-0badc0de',
      instanceType: 'n2-standard-4',
      zone: 'us-central1-a',
      state: 'running',
      tags: { 'ipp.dev/cluster': 'prod', 'ipp.dev/class': 'mail', 'ipp.dev/instance': 'mail-1a2b3c4d' },
      launchedAt: new Date('2026-01-02T11:04:05.000Z'),
    });
    expect(tagsOf({ ...vm, labels: { ...vm.labels, 'ipp-dev-instance': 'other' } })['ipp.dev/instance']).toBe('other');
    expect(toCloudInstance({ ...vm, status: 'TERMINATED' }, 'p').state).toBe('stopping');
  });
});
