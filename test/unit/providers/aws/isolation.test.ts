import { describe, expect, it } from 'vitest';
import type { InstanceClass, InstanceClassSpec } from '../../../../src/api/types.ts';
import {
  cpuProblems,
  isMetalType,
  isolationInput,
  obtainedIsolation,
  validateAwsIsolation,
  type CpuFacts,
} from '../../../../providers/aws/isolation.ts';
import { isolationShortfall, requiredIsolation } from '../../../../providers/isolation.ts';

const cls = (instanceTypes: string[], extra: Partial<InstanceClassSpec> = {}): InstanceClass => ({
  metadata: { name: 'relay', uid: 'u1' },
  spec: { instanceTypes, aws: { ami: { id: 'ami-0a' } }, ...extra },
});

// As DescribeInstanceTypes answers (moto carries EC2's own table).
const FACTS: Record<string, CpuFacts> = {
  'm5.large': {
    bareMetal: false,
    defaultCores: 1,
    defaultThreadsPerCore: 2,
    validThreadsPerCore: [1, 2],
    nestedVirtualization: false,
  },
  'm5.2xlarge': {
    bareMetal: false,
    defaultCores: 4,
    defaultThreadsPerCore: 2,
    validThreadsPerCore: [1, 2],
    nestedVirtualization: false,
  },
  'c8i.large': {
    bareMetal: false,
    defaultCores: 1,
    defaultThreadsPerCore: 2,
    validThreadsPerCore: [1, 2],
    nestedVirtualization: true,
  },
  'm6g.large': {
    bareMetal: false,
    defaultCores: 2,
    defaultThreadsPerCore: 1,
    validThreadsPerCore: [1],
    nestedVirtualization: false,
  },
  'm5.metal': {
    bareMetal: true,
    defaultCores: 48,
    defaultThreadsPerCore: 2,
    validThreadsPerCore: [],
    nestedVirtualization: false,
  },
};
const facts = new Map(Object.entries(FACTS));

describe('validateAwsIsolation (from the type names)', () => {
  it('accepts every level on types that deliver it', () => {
    expect(validateAwsIsolation(cls(['m5.large', 'c8i.large']))).toEqual([]);
    expect(validateAwsIsolation(cls(['m5.large'], { hostIsolation: 'DedicatedHardware', smt: 'Off' }))).toEqual([]);
    expect(validateAwsIsolation(cls(['m5.metal', 'm7i.metal-24xl'], { hostIsolation: 'BareMetal' }))).toEqual([]);
    expect(
      validateAwsIsolation(cls(['c8i.large', 'm8i-flex.large', 'm5.metal'], { nestedVirtualization: true })),
    ).toEqual([]);
    expect(validateAwsIsolation(cls(['m6g.metal'], { hostIsolation: 'BareMetal', smt: 'Off' }))).toEqual([]);
  });

  it('refuses a BareMetal class listing a VM type, naming both fields', () => {
    expect(validateAwsIsolation(cls(['m5.metal', 'm5.large'], { hostIsolation: 'BareMetal' }))).toEqual([
      'spec.hostIsolation: BareMetal needs bare-metal instance types, and spec.instanceTypes[1] m5.large is a VM; use *.metal types (e.g. m5.metal, c6i.metal, m7i.metal-24xl)',
    ]);
  });

  it('refuses smt Off on x86 bare metal (EC2 takes no CPU options there) and nested virtualization on other families', () => {
    const [smt] = validateAwsIsolation(cls(['m5.metal'], { hostIsolation: 'BareMetal', smt: 'Off' }));
    expect(smt).toMatch(
      /^spec\.smt: Off cannot be delivered by spec\.instanceTypes\[0\] m5\.metal: EC2 takes no CPU options/,
    );
    const [nested] = validateAwsIsolation(cls(['c8i.large', 'm5.large'], { nestedVirtualization: true }));
    expect(nested).toMatch(/^spec\.nestedVirtualization: spec\.instanceTypes\[1\] m5\.large cannot run VMs/);
  });

  it('takes spec.aws.tenancy host for DedicatedHardware only', () => {
    const host = (level: InstanceClassSpec['hostIsolation']) =>
      cls(['m5.large'], { hostIsolation: level, aws: { ami: { id: 'ami-0a' }, tenancy: 'host' } });
    expect(validateAwsIsolation(host('DedicatedHardware'))).toEqual([]);
    expect(isolationInput(host('DedicatedHardware'), 'm5.large', undefined)).toEqual({ tenancy: 'host' });
    expect(obtainedIsolation('m5.large', { Placement: { Tenancy: 'host' } }).level).toBe('DedicatedHardware');
    expect(validateAwsIsolation(host('VM'))).toEqual([
      'spec.aws.tenancy: host only applies to spec.hostIsolation: DedicatedHardware (the class asks for VM)',
    ]);
  });

  it('knows metal names', () => {
    expect(['m5.metal', 'c6i.metal', 'm7i.metal-48xl', 'u-6tb1.metal'].every(isMetalType)).toBe(true);
    expect(['m5.large', 'metal', 'x.metallic', 'm5.24xlarge'].some(isMetalType)).toBe(false);
  });
});

describe('cpuProblems (from DescribeInstanceTypes)', () => {
  it('refuses what EC2 says a type cannot do, and types EC2 does not know', () => {
    expect(cpuProblems(cls(['m5.large', 'm6g.large'], { smt: 'Off' }), facts)).toEqual([]);
    expect(cpuProblems(cls(['c8i.large', 'm5.metal'], { nestedVirtualization: true }), facts)).toEqual([]);
    expect(cpuProblems(cls(['m5.large'], { nestedVirtualization: true }), facts)).toEqual([
      'spec.nestedVirtualization: spec.instanceTypes[0] m5.large does not support nested virtualization (DescribeInstanceTypes)',
    ]);
    expect(cpuProblems(cls(['m5.metal'], { smt: 'Off' }), facts)).toEqual([
      'spec.smt: Off cannot be delivered by spec.instanceTypes[0] m5.metal: EC2 does not let it run one thread per core',
    ]);
    expect(cpuProblems(cls(['x9.huge'], { smt: 'Off' }), facts)).toEqual([
      'spec.instanceTypes[0]: EC2 does not describe instance type x9.huge in this Region',
    ]);
  });
});

describe('isolationInput and obtainedIsolation', () => {
  it('VM asks for nothing', () => {
    const c = cls(['m5.large']);
    expect(isolationInput(c, 'm5.large', undefined)).toEqual({});
    expect(obtainedIsolation('m5.large', {})).toEqual({ level: 'VM', smt: 'On', nestedVirtualization: false });
  });

  it('DedicatedHardware: dedicated tenancy on VM types, nothing extra on metal (which obtains more)', () => {
    const c = cls(['m5.large', 'm5.metal'], { hostIsolation: 'DedicatedHardware' });
    const vm = isolationInput(c, 'm5.large', undefined);
    expect(vm).toEqual({ tenancy: 'dedicated' });
    expect(obtainedIsolation('m5.large', { Placement: { Tenancy: vm.tenancy } }).level).toBe('DedicatedHardware');
    expect(isolationInput(c, 'm5.metal', undefined)).toEqual({});
    const metal = obtainedIsolation('m5.metal', {});
    expect(metal).toEqual({ level: 'BareMetal', smt: 'On', nestedVirtualization: true });
    expect(isolationShortfall(requiredIsolation(c), metal)).toEqual([]);
  });

  it('smt Off: the default core count with one thread per core; nothing to send where cores have one thread', () => {
    const c = cls(['m5.2xlarge', 'm6g.large'], { smt: 'Off' });
    const x86 = isolationInput(c, 'm5.2xlarge', FACTS['m5.2xlarge']);
    expect(x86).toEqual({ cpuOptions: { CoreCount: 4, ThreadsPerCore: 1 } });
    expect(obtainedIsolation('m5.2xlarge', { CpuOptions: x86.cpuOptions }, FACTS['m5.2xlarge']).smt).toBe('Off');
    expect(isolationInput(c, 'm6g.large', FACTS['m6g.large'])).toEqual({});
    expect(obtainedIsolation('m6g.large', {}, FACTS['m6g.large']).smt).toBe('Off');
    expect(() => isolationInput(c, 'm5.2xlarge', undefined)).toThrow(/core count/);
  });

  it('nested virtualization with SMT off and dedicated tenancy, all in one launch', () => {
    const c = cls(['c8i.large'], { hostIsolation: 'DedicatedHardware', smt: 'Off', nestedVirtualization: true });
    const input = isolationInput(c, 'c8i.large', FACTS['c8i.large']);
    expect(input).toEqual({
      tenancy: 'dedicated',
      cpuOptions: { CoreCount: 1, ThreadsPerCore: 1, NestedVirtualization: 'enabled' },
    });
    const got = obtainedIsolation('c8i.large', { Placement: { Tenancy: 'dedicated' }, CpuOptions: input.cpuOptions });
    expect(got).toEqual({ level: 'DedicatedHardware', smt: 'Off', nestedVirtualization: true });
    expect(isolationShortfall(requiredIsolation(c), got)).toEqual([]);
  });
});

describe('isolationShortfall', () => {
  it('names each property an instance lacks; stronger levels meet weaker ones', () => {
    const want = { level: 'DedicatedHardware', smt: 'Off', nestedVirtualization: true } as const;
    expect(isolationShortfall(want, { level: 'VM', smt: 'On' })).toEqual([
      "host isolation VM is weaker than the class's DedicatedHardware",
      'SMT is on, the class asks for smt: Off',
      'nested virtualization is not available, the class asks for nestedVirtualization: true',
    ]);
    expect(isolationShortfall(want, undefined)).toHaveLength(3);
    expect(isolationShortfall(want, { level: 'BareMetal', smt: 'Off', nestedVirtualization: true })).toEqual([]);
    expect(isolationShortfall({ level: 'VM', smt: 'On' }, { level: 'VM', smt: 'On' })).toEqual([]);
  });
});
