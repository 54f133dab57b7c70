import { describe, expect, it } from 'vitest';
import type { InstanceClass } from '../../../../src/api/types.ts';
import { allocatable, machineShape } from '../../../../providers/gce/capacity.ts';
import { credentialProblem } from '../../../../providers/gce/client.ts';
import { failedAttempt } from '../../../../providers/gce/groups.ts';
import { templateIsolation } from '../../../../providers/gce/isolation.ts';
import { migsOf, validateGceSettings } from '../../../../providers/gce/settings.ts';

const cls = (gce: unknown, zones?: string[]): InstanceClass => ({
  metadata: { name: 'mail' },
  spec: { instanceTypes: ['n2-standard-4'], ...(zones ? { zones } : {}), gce: gce as InstanceClass['spec']['gce'] },
});
const a = { zone: 'us-central1-a', name: 'gke-prod-mail-grp-a' };
const b = { zone: 'us-central1-b', name: 'gke-prod-mail-grp-b' };

describe('spec.gce', () => {
  it('accepts an ordered list of groups and names each wrong field', () => {
    expect(validateGceSettings(cls({ instanceGroups: [a, b] }), 'proj-12345')).toEqual([]);
    expect(validateGceSettings({ metadata: {}, spec: { instanceTypes: ['x'] } })).toEqual([
      'spec.gce: required for the gce provider',
    ]);
    const problems = validateGceSettings(
      cls({ project: 'Bad_Project', instanceGroups: [{ zone: 'uscentral', name: 'Grp' }, a, a] }, ['europe-west1-b']),
      'proj-12345',
    );
    expect(problems).toEqual([
      'spec.gce.project: Bad_Project is not a project id',
      'spec.gce.instanceGroups[0].zone: uscentral is not a zone (e.g. us-central1-a)',
      'spec.gce.instanceGroups[0].name: Grp is not an instance group manager name',
      'spec.gce.instanceGroups[2]: us-central1-a/gke-prod-mail-grp-a is listed twice',
      'spec.zones: europe-west1-b has no group in spec.gce.instanceGroups',
    ]);
    expect(validateGceSettings(cls({ instanceGroups: [] }), 'p')[0]).toMatch(/^spec.gce.instanceGroups: list at least/);
    expect(validateGceSettings(cls({ instanceGroups: [a] }))).toEqual([
      'spec.gce.project: required (the controller has no default project: set --gce-project)',
    ]);
  });

  it('groups in the class order, filtered and ordered by spec.zones; the default project fills in', () => {
    expect(migsOf(cls({ instanceGroups: [a, b] }), 'proj-12345')).toEqual([
      { project: 'proj-12345', ...a },
      { project: 'proj-12345', ...b },
    ]);
    expect(migsOf(cls({ project: 'other-proj', instanceGroups: [a, b] }, ['us-central1-b']), 'proj-12345')).toEqual([
      { project: 'other-proj', ...b },
    ]);
  });

  it('capacity from the machine type: vCPU and memory minus GKE reservations; metal types by table', () => {
    expect(machineShape('n2-standard-4')).toEqual([4, 16]);
    expect(machineShape('c3-standard-192-metal')).toEqual([192, 768]);
    expect(machineShape('n1-standard-2')).toEqual([2, 7.5]);
    expect(machineShape('custom-4-8192')).toBeUndefined();
    const r = allocatable('n2-standard-4')!;
    // 4 cores: 60 + 10 + 5 + 5 m reserved. 16 GiB: 1 + 0.8 + 0.8 GiB reserved + 100 MiB eviction.
    expect(r.cpu).toBe(3920);
    expect(r.memory).toBe(Math.floor(16 * 1024 ** 3 - Math.round(2.6 * 1024 ** 3) - 100 * 1024 ** 2));
    expect(r.pods).toBe(110);
    expect(allocatable('unknown-type')).toBeUndefined();
  });

  it('a managed instance failed only while it has errors and no VM', () => {
    const errors = [{ code: 'ZONE_RESOURCE_POOL_EXHAUSTED', message: 'x' }];
    expect(failedAttempt({ currentAction: 'CREATING', lastAttempt: { errors: { errors } } })).toEqual(errors);
    expect(failedAttempt({ currentAction: 'CREATING' })).toBeUndefined();
    expect(
      failedAttempt({ currentAction: 'NONE', instanceStatus: 'RUNNING', lastAttempt: { errors: { errors } } }),
    ).toBeUndefined();
  });

  it('refuses a key file', () => {
    expect(credentialProblem({ GOOGLE_APPLICATION_CREDENTIALS: '/key.json' })).toMatch(/Workload Identity/);
    expect(credentialProblem({})).toBeUndefined();
  });
});

describe('host isolation of a group, from its template', () => {
  it('metal, sole tenancy, SMT and nested virtualization', () => {
    expect(templateIsolation('c3-standard-192-metal', {})).toEqual({
      level: 'BareMetal',
      smt: 'On',
      nestedVirtualization: true,
    });
    expect(
      templateIsolation('n2-standard-8', {
        scheduling: {
          nodeAffinities: [{ key: 'compute.googleapis.com/node-group-name', operator: 'IN', values: ['g'] }],
        },
        advancedMachineFeatures: { threadsPerCore: 1, enableNestedVirtualization: true },
      }),
    ).toEqual({ level: 'DedicatedHardware', smt: 'Off', nestedVirtualization: true });
    expect(templateIsolation('n2-standard-8', null)).toEqual({ level: 'VM', smt: 'On', nestedVirtualization: false });
    expect(
      templateIsolation('n2-standard-8', {
        scheduling: { nodeAffinities: [{ key: 'compute.googleapis.com/node-group-name', operator: 'NOT_IN' }] },
      }).level,
    ).toBe('VM');
  });
});
