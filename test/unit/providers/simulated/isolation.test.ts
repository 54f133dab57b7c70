import { describe, expect, it } from 'vitest';
import type { InstanceClassSpec } from '../../../../src/api/types.ts';
import { simulatedIsolationProblems } from '../../../../providers/simulated/provider.ts';

const cls = (instanceTypes: string[], extra: Partial<InstanceClassSpec> = {}) => ({
  metadata: { name: 'c' },
  spec: { instanceTypes, simulated: {}, ...extra },
});

describe('simulatedIsolationProblems', () => {
  it('accepts what the simulated types deliver', () => {
    expect(simulatedIsolationProblems(cls(['sim.metal'], { hostIsolation: 'BareMetal' }))).toEqual([]);
    expect(
      simulatedIsolationProblems(cls(['sim.medium', 'sim.large'], { hostIsolation: 'DedicatedHardware', smt: 'Off' })),
    ).toEqual([]);
    expect(simulatedIsolationProblems(cls(['sim.medium', 'sim.metal'], { nestedVirtualization: true }))).toEqual([]);
  });

  it('refuses, naming the field, what a type cannot deliver', () => {
    expect(simulatedIsolationProblems(cls(['sim.metal', 'sim.large'], { hostIsolation: 'BareMetal' }))).toEqual([
      'spec.hostIsolation: BareMetal needs bare-metal instance types, and spec.instanceTypes[1] sim.large is a VM; use sim.metal',
    ]);
    expect(simulatedIsolationProblems(cls(['sim.small'], { smt: 'Off' }))).toEqual([
      'spec.smt: Off cannot be delivered by spec.instanceTypes[0] sim.small; use sim.medium or sim.large',
    ]);
    expect(simulatedIsolationProblems(cls(['sim.large'], { nestedVirtualization: true }))).toEqual([
      'spec.nestedVirtualization: spec.instanceTypes[0] sim.large cannot run VMs; use sim.medium or sim.metal',
    ]);
  });
});
