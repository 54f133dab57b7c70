// Instance types and zones of the simulated cloud. Names echo real ones so demos read naturally;
// sim.metal mirrors i3.metal's shape (72 vCPU, 512 GiB). FEATURES says which host isolation each
// type can deliver, shaped like EC2's: every VM type may run on dedicated hardware; SMT can be
// switched off on medium and large (not on small, which is burstable, nor on metal, which takes no
// CPU options); medium runs nested VMs; metal is bare metal and runs VMs natively.
import type { Resources } from '../types.ts';

const GiB = 2 ** 30;

export const CATALOG: { [type: string]: Resources } = {
  'sim.small': { cpu: 2_000, memory: 4 * GiB, pods: 110 },
  'sim.medium': { cpu: 4_000, memory: 16 * GiB, pods: 110 },
  'sim.large': { cpu: 16_000, memory: 64 * GiB, pods: 110 },
  'sim.metal': { cpu: 72_000, memory: 512 * GiB, pods: 737 },
};

export const ZONES = ['sim-zone-a', 'sim-zone-b', 'sim-zone-c'];

export interface TypeFeatures {
  metal: boolean;
  /** SMT can be switched off at launch. */
  smtOff: boolean;
  /** VMs can run inside (nested virtualization, or bare metal). */
  nested: boolean;
}

export const FEATURES: { [type: string]: TypeFeatures } = {
  'sim.small': { metal: false, smtOff: false, nested: false },
  'sim.medium': { metal: false, smtOff: true, nested: true },
  'sim.large': { metal: false, smtOff: true, nested: false },
  'sim.metal': { metal: true, smtOff: false, nested: true },
};
