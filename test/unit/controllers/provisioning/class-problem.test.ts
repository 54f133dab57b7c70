// classProblem(): why pods of a class cannot be provisioned; namespaceAllowed(): spec.namespaces.
import { describe, expect, it } from 'vitest';
import type { InstanceClass } from '../../../../src/api/types.ts';
import { classProblem, namespaceAllowed } from '../../../../src/controllers/provisioning/controller.ts';
import type { CloudInstance, CloudProvider } from '../../../../providers/types.ts';
import { cls } from '../fixtures.ts';

/** A provider whose validate() answers with the given problems and records what it was asked. */
function fakeProvider(name: string, problems: string[] = []): CloudProvider & { validated: InstanceClass[] } {
  const validated: InstanceClass[] = [];
  const unused = (): never => {
    throw new Error('not used by classProblem');
  };
  return {
    name,
    validated,
    create: async (): Promise<CloudInstance> => unused(),
    delete: async () => unused(),
    get: async (): Promise<CloudInstance> => unused(),
    list: async () => [],
    capacity: () => undefined,
    validate: (c) => {
      validated.push(c);
      return problems;
    },
  };
}

const providers = (...list: CloudProvider[]) => new Map(list.map((p) => [p.name, p]));

describe('classProblem', () => {
  it('reports an unknown class, naming it', () => {
    expect(classProblem(undefined, 'metal', providers(fakeProvider('simulated')))).toEqual({
      reason: 'UnknownClass',
      message: expect.stringContaining('InstanceClass "metal" does not exist'),
    });
  });

  it('reports a class whose provider this controller does not run', () => {
    const aws = cls({ simulated: undefined, aws: { ami: { id: 'ami-0123' } } });
    const p = classProblem(aws, 'metal', providers(fakeProvider('simulated')));
    expect(p).toEqual({ reason: 'InvalidClass', message: expect.stringContaining('provider "aws"') });
    expect(p!.message).toContain('--providers');
  });

  it("reports the provider's validation problems, all of them", () => {
    const sim = fakeProvider('simulated', [
      'spec.instanceTypes[0]: "nope" is unknown',
      'spec.zones[0]: "mars-1a" is unknown',
    ]);
    const c = cls();
    const p = classProblem(c, 'metal', providers(sim));
    expect(p).toEqual({
      reason: 'InvalidClass',
      message:
        'InstanceClass "metal" is invalid: spec.instanceTypes[0]: "nope" is unknown; spec.zones[0]: "mars-1a" is unknown',
    });
    expect(sim.validated).toEqual([c]);
  });

  it('is undefined for a valid class, asking the provider the class names', () => {
    const sim = fakeProvider('simulated');
    const aws = fakeProvider('aws', ['must not be asked']);
    expect(classProblem(cls(), 'metal', providers(sim, aws))).toBeUndefined();
    expect(sim.validated).toHaveLength(1);
    expect(aws.validated).toHaveLength(0);
  });
});

describe('namespaceAllowed', () => {
  it('allows every namespace when spec.namespaces is absent or empty', () => {
    expect(namespaceAllowed(cls(), 'anything')).toBe(true);
    expect(namespaceAllowed(cls({ namespaces: [] }), 'anything')).toBe(true);
  });

  it('allows only the listed namespaces otherwise, matched exactly', () => {
    const c = cls({ namespaces: ['mail', 'tenant-a'] });
    expect(namespaceAllowed(c, 'mail')).toBe(true);
    expect(namespaceAllowed(c, 'tenant-a')).toBe(true);
    expect(namespaceAllowed(c, 'tenant')).toBe(false);
    expect(namespaceAllowed(c, 'default')).toBe(false);
  });
});
