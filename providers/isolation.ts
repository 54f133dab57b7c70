// Host isolation levels, provider-neutral: what a class asks for, and whether what an instance
// obtained is at least that. Each provider maps the level to its own launch parameters and refuses
// instance types that cannot deliver it (aws/isolation.ts; simulated/catalog.ts).
import type { HostIsolation, HostIsolationLevel, InstanceClass } from '../src/api/types.ts';

const RANK: Record<HostIsolationLevel, number> = { VM: 0, DedicatedHardware: 1, BareMetal: 2 };

/** What the class asks for, defaults filled in. */
export function requiredIsolation(cls: InstanceClass): HostIsolation {
  return {
    level: cls.spec.hostIsolation ?? 'VM',
    smt: cls.spec.smt ?? 'On',
    nestedVirtualization: cls.spec.nestedVirtualization === true,
  };
}

/**
 * How `obtained` falls short of `required`, one message per missing property; [] when it meets it.
 * BareMetal meets DedicatedHardware (nobody else is on the machine); smt On asks for nothing.
 */
export function isolationShortfall(required: HostIsolation, obtained: HostIsolation | undefined): string[] {
  const got: HostIsolation = obtained ?? { level: 'VM', smt: 'On' };
  const out: string[] = [];
  if (RANK[got.level] < RANK[required.level])
    out.push(`host isolation ${got.level} is weaker than the class's ${required.level}`);
  if (required.smt === 'Off' && got.smt !== 'Off') out.push('SMT is on, the class asks for smt: Off');
  if (required.nestedVirtualization && !got.nestedVirtualization)
    out.push('nested virtualization is not available, the class asks for nestedVirtualization: true');
  return out;
}
