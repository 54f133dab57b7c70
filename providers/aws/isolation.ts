// Host isolation on EC2 (the provider-neutral levels are in ../isolation.ts):
//   DedicatedHardware  Placement.Tenancy dedicated (or host, spec.aws.tenancy): the physical host runs only this account's instances
//   BareMetal          *.metal types only: no hypervisor, the whole machine
//   smt: Off           CpuOptions { CoreCount: <default cores>, ThreadsPerCore: 1 } (EC2 wants both)
//   nestedVirtualization  CpuOptions.NestedVirtualization enabled (c8i, m8i, r8i and -flex); metal runs VMs natively
// Types that cannot deliver what the class asks for are refused, never skipped: a fallback to the
// next type must not be a fallback to a weaker level. validateAwsIsolation() decides from the type
// names (deterministic, for the class status); cpuProblems() re-checks against DescribeInstanceTypes
// before the first launch, which also supplies the core count CpuOptions needs.
import type { InstanceTypeInfo, RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import type { HostIsolation, InstanceClass } from '../../src/api/types.ts';
import { requiredIsolation } from '../isolation.ts';

/** What the isolation parameters need to know about an instance type. */
export interface CpuFacts {
  bareMetal: boolean;
  defaultCores: number;
  defaultThreadsPerCore: number;
  /** Empty: the type takes no CPU options (bare metal). */
  validThreadsPerCore: number[];
  nestedVirtualization: boolean;
}

export function cpuFactsOf(info: InstanceTypeInfo): CpuFacts {
  const v = info.VCpuInfo ?? {};
  return {
    bareMetal: info.BareMetal === true,
    defaultCores: v.DefaultCores ?? 0,
    defaultThreadsPerCore: v.DefaultThreadsPerCore ?? 1,
    validThreadsPerCore: v.ValidThreadsPerCore ?? [],
    nestedVirtualization: (info.ProcessorInfo?.SupportedFeatures ?? []).includes('nested-virtualization'),
  };
}

const familyOf = (t: string) => t.split('.')[0] ?? '';
const sizeOf = (t: string) => t.slice(t.indexOf('.') + 1);

/** m5.metal, c6i.metal, m7i.metal-24xl, u-6tb1.metal. */
export function isMetalType(t: string): boolean {
  return t.includes('.') && /^metal(-|$)/.test(sizeOf(t));
}

/** Graviton families (a1, m6g, c7gn, is4gen, …): one thread per core, nothing to switch off. */
const GRAVITON = /^(a1|[a-z]+\d+g[a-z]*)$/;
/** The families whose VMs EC2 lets run VMs (SDK: "8th generation Intel-based instance types"). */
const NESTED_FAMILIES = /^[cmr]8i(-flex)?$/;

/** Does the class need DescribeInstanceTypes before launching (core counts, feature flags)? */
export function needsCpuFacts(cls: InstanceClass): boolean {
  const want = requiredIsolation(cls);
  return want.smt === 'Off' || want.nestedVirtualization === true;
}

/** Problems the type names alone show, naming the field: the class status's verdict. */
export function validateAwsIsolation(cls: InstanceClass): string[] {
  const want = requiredIsolation(cls);
  const out: string[] = [];
  if (cls.spec.aws?.tenancy && want.level !== 'DedicatedHardware')
    out.push(
      `spec.aws.tenancy: ${cls.spec.aws.tenancy} only applies to spec.hostIsolation: DedicatedHardware (the class asks for ${want.level})`,
    );
  cls.spec.instanceTypes.forEach((t, i) => {
    const field = `spec.instanceTypes[${i}]`;
    const metal = isMetalType(t);
    if (want.level === 'BareMetal' && !metal)
      out.push(
        `spec.hostIsolation: BareMetal needs bare-metal instance types, and ${field} ${t} is a VM; use *.metal types (e.g. m5.metal, c6i.metal, m7i.metal-24xl)`,
      );
    if (want.smt === 'Off' && metal && !GRAVITON.test(familyOf(t)))
      out.push(
        `spec.smt: Off cannot be delivered by ${field} ${t}: EC2 takes no CPU options for bare-metal types. A BareMetal instance serves one class alone; leave smt On, or switch SMT off in the OS from spec.aws.userData (nosmt)`,
      );
    if (want.nestedVirtualization && !metal && !NESTED_FAMILIES.test(familyOf(t)))
      out.push(
        `spec.nestedVirtualization: ${field} ${t} cannot run VMs; EC2 offers nested virtualization on c8i, m8i and r8i types (and their -flex variants), and bare-metal types run VMs natively`,
      );
  });
  return out;
}

/** Problems DescribeInstanceTypes shows (the authority, checked before the first launch). */
export function cpuProblems(cls: InstanceClass, facts: ReadonlyMap<string, CpuFacts>): string[] {
  const want = requiredIsolation(cls);
  const out: string[] = [];
  cls.spec.instanceTypes.forEach((t, i) => {
    const f = facts.get(t);
    const field = `spec.instanceTypes[${i}]`;
    if (!f) {
      out.push(`${field}: EC2 does not describe instance type ${t} in this Region`);
      return;
    }
    if (want.smt === 'Off' && f.defaultThreadsPerCore > 1 && !f.validThreadsPerCore.includes(1))
      out.push(`spec.smt: Off cannot be delivered by ${field} ${t}: EC2 does not let it run one thread per core`);
    if (want.nestedVirtualization && !f.bareMetal && !f.nestedVirtualization)
      out.push(
        `spec.nestedVirtualization: ${field} ${t} does not support nested virtualization (DescribeInstanceTypes)`,
      );
  });
  return out;
}

/** The RunInstances parameters that give `instanceType` the class's isolation. */
export function isolationInput(
  cls: InstanceClass,
  instanceType: string,
  facts: CpuFacts | undefined,
): { tenancy?: 'dedicated' | 'host'; cpuOptions?: RunInstancesCommandInput['CpuOptions'] } {
  const want = requiredIsolation(cls);
  const metal = isMetalType(instanceType);
  const out: { tenancy?: 'dedicated' | 'host'; cpuOptions?: RunInstancesCommandInput['CpuOptions'] } = {};
  // A metal instance is the whole machine already; tenancy would add nothing.
  if (want.level === 'DedicatedHardware' && !metal) out.tenancy = cls.spec.aws?.tenancy ?? 'dedicated';
  const cpu: NonNullable<RunInstancesCommandInput['CpuOptions']> = {};
  if (want.smt === 'Off') {
    if (!facts) throw new Error(`no CPU facts for ${instanceType}: smt Off needs its core count`);
    if (facts.defaultThreadsPerCore > 1) {
      cpu.CoreCount = facts.defaultCores;
      cpu.ThreadsPerCore = 1;
    }
  }
  if (want.nestedVirtualization && !metal) cpu.NestedVirtualization = 'enabled';
  if (Object.keys(cpu).length) out.cpuOptions = cpu;
  return out;
}

/**
 * The isolation a launch obtains. EC2 either launches with the requested tenancy and CPU options or
 * refuses the call, so the accepted request is what the instance has.
 */
export function obtainedIsolation(
  instanceType: string,
  input: {
    Placement?: { Tenancy?: string | undefined } | undefined;
    CpuOptions?: { ThreadsPerCore?: number | undefined; NestedVirtualization?: string | undefined } | undefined;
  },
  facts?: CpuFacts,
): HostIsolation {
  const metal = isMetalType(instanceType);
  const tenancy = input.Placement?.Tenancy;
  const oneThread = input.CpuOptions?.ThreadsPerCore === 1 || facts?.defaultThreadsPerCore === 1;
  return {
    level: metal ? 'BareMetal' : tenancy === 'dedicated' || tenancy === 'host' ? 'DedicatedHardware' : 'VM',
    smt: oneThread ? 'Off' : 'On',
    nestedVirtualization: metal || input.CpuOptions?.NestedVirtualization === 'enabled',
  };
}
