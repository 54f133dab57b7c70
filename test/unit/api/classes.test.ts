// usability(): can pods of a class be provisioned (and with which provider); namespaceAllowed(): spec.namespaces.
import { describe, expect, it } from 'vitest';
import { namespaceAllowed, providerName, usability } from '../../../src/api/classes.ts';
import { FakeCloudProvider } from '../fake/cloudprovider.ts';
import { cls } from '../controllers/fixtures.ts';

const providers = (...list: FakeCloudProvider[]) => new Map(list.map((p) => [p.name, p]));
const fakeProvider = (name: string, problems: string[] = []) => {
  const p = new FakeCloudProvider(name);
  p.validationProblems = problems;
  return p;
};

describe('usability', () => {
  it('reports an unknown class, naming it', () => {
    expect(usability(undefined, 'metal', providers(fakeProvider('simulated')))).toEqual({
      usable: false,
      reason: 'UnknownClass',
      message: expect.stringContaining('InstanceClass "metal" does not exist'),
    });
  });

  it('reports a class whose provider this controller does not run', () => {
    const aws = cls({ simulated: undefined, aws: { ami: { id: 'ami-0123' } } });
    const p = usability(aws, 'metal', providers(fakeProvider('simulated')));
    expect(p).toEqual({ usable: false, reason: 'InvalidClass', message: expect.stringContaining('provider "aws"') });
    expect(!p.usable && p.message).toContain('--providers');
  });

  it('reports a class with no provider block, naming the fields to set', () => {
    const p = usability(cls({ simulated: undefined }), 'metal', providers(fakeProvider('simulated')));
    expect(p).toEqual({
      usable: false,
      reason: 'InvalidClass',
      message: expect.stringContaining('spec.simulated, spec.aws, spec.gce'),
    });
  });

  it("reports the provider's validation problems, all of them", () => {
    const sim = fakeProvider('simulated', [
      'spec.instanceTypes[0]: "nope" is unknown',
      'spec.zones[0]: "mars-1a" is unknown',
    ]);
    const c = cls();
    const p = usability(c, 'metal', providers(sim));
    expect(p).toEqual({
      usable: false,
      reason: 'InvalidClass',
      message:
        'InstanceClass "metal" is invalid: spec.instanceTypes[0]: "nope" is unknown; spec.zones[0]: "mars-1a" is unknown',
    });
    expect(sim.validated).toEqual([c]);
  });

  it('hands back the class and its provider when usable, asking only the provider the class names', () => {
    const sim = fakeProvider('simulated');
    const aws = fakeProvider('aws', ['must not be asked']);
    const c = cls();
    expect(usability(c, 'metal', providers(sim, aws))).toEqual({ usable: true, cls: c, provider: sim });
    expect(sim.validated).toHaveLength(1);
    expect(aws.validated).toHaveLength(0);
  });
});

describe('namespaceAllowed', () => {
  it('allows no namespace when spec.namespaces is absent or empty, and every one for "*"', () => {
    expect(namespaceAllowed(cls({ namespaces: ['*'] }), 'anything')).toBe(true);
    expect(namespaceAllowed(cls({ namespaces: undefined }), 'anything')).toBe(false);
    expect(namespaceAllowed(cls({ namespaces: [] }), 'anything')).toBe(false);
  });

  it('allows only the listed namespaces otherwise, matched exactly', () => {
    const c = cls({ namespaces: ['mail', 'tenant-a'] });
    expect(namespaceAllowed(c, 'mail')).toBe(true);
    expect(namespaceAllowed(c, 'tenant-a')).toBe(true);
    expect(namespaceAllowed(c, 'tenant')).toBe(false);
    expect(namespaceAllowed(c, 'default')).toBe(false);
  });
});

describe('providerName', () => {
  it('is the provider whose settings block the class sets', () => {
    expect(providerName(cls())).toBe('simulated');
    expect(providerName(cls({ simulated: undefined, aws: {} }))).toBe('aws');
    expect(providerName(cls({ simulated: undefined }))).toBeUndefined();
  });
});
