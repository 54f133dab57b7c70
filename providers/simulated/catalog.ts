// Instance types and zones of the simulated cloud. Names echo real ones so demos read naturally;
// sim.metal mirrors i3.metal's shape (72 vCPU, 512 GiB).
import type { Resources } from '../types.ts';

const GiB = 2 ** 30;

export const CATALOG: { [type: string]: Resources } = {
  'sim.small': { cpu: 2_000, memory: 4 * GiB, pods: 110 },
  'sim.medium': { cpu: 4_000, memory: 16 * GiB, pods: 110 },
  'sim.large': { cpu: 16_000, memory: 64 * GiB, pods: 110 },
  'sim.metal': { cpu: 72_000, memory: 512 * GiB, pods: 737 },
};

export const ZONES = ['sim-zone-a', 'sim-zone-b', 'sim-zone-c'];
