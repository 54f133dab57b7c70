// Allocatable resources of a GKE node from its machine type, for Class isolation packing. vCPU and
// memory from the machine type's name (the families' fixed ratios, as on the machine types page);
// reservations by GKE's published formulas ("Standard cluster architecture", allocatable):
// memory 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, 2%
// above 128 GiB, eviction threshold 100 MiB; CPU 6% of the first core, 1% of the second, 0.5% of
// cores 3-4, 0.25% above; 110 pods. Unknown types answer undefined (ipp then packs nothing).
import type { Resources } from '../types.ts';
import { reservedCpu } from '../aws/capacity.ts';

const Gi = 1024 ** 3;
const Mi = 1024 ** 2;

/** GiB per vCPU of `<family>-<shape>-<n>` types. */
const RATIOS: Record<string, Record<string, number>> = {
  n1: { standard: 3.75, highmem: 6.5, highcpu: 0.9 },
  n2: { standard: 4, highmem: 8, highcpu: 1 },
  n2d: { standard: 4, highmem: 8, highcpu: 1 },
  n4: { standard: 4, highmem: 8, highcpu: 2 },
  e2: { standard: 4, highmem: 8, highcpu: 1 },
  c2: { standard: 4 },
  c2d: { standard: 4, highmem: 8, highcpu: 2 },
  c3: { standard: 4, highmem: 8, highcpu: 2 },
  c3d: { standard: 4, highmem: 8, highcpu: 2 },
  c4: { standard: 3.75, highmem: 7.75, highcpu: 2 },
  t2d: { standard: 4 },
};

/** Bare-metal and other types whose size the name does not give: [vCPU, GiB]. */
const FIXED: Record<string, [number, number]> = {
  'c3-standard-192-metal': [192, 768],
  'c3-highcpu-192-metal': [192, 512],
  'c3-highmem-192-metal': [192, 1536],
  'x4-megamem-960-metal': [960, 16384],
  'x4-megamem-1440-metal': [1440, 24576],
  'x4-megamem-1920-metal': [1920, 32768],
};

export function machineShape(machineType: string): [number, number] | undefined {
  const fixed = FIXED[machineType];
  if (fixed) return fixed;
  const m = /^([a-z0-9]+)-(standard|highmem|highcpu)-(\d+)$/.exec(machineType);
  if (!m) return undefined;
  const ratio = RATIOS[m[1]!]?.[m[2]!];
  if (ratio === undefined) return undefined;
  const vcpu = Number(m[3]);
  return [vcpu, vcpu * ratio];
}

/** GKE's reserved memory (bytes) for a node of `gib` GiB, eviction threshold included. */
export function reservedMemory(gib: number): number {
  const tiers: [number, number][] = [
    [4, 0.25],
    [4, 0.2],
    [8, 0.1],
    [112, 0.06],
    [Infinity, 0.02],
  ];
  let left = gib;
  let reserved = 0;
  for (const [size, share] of tiers) {
    const part = Math.min(left, size);
    reserved += part * share;
    left -= part;
    if (left <= 0) break;
  }
  return Math.round(reserved * Gi) + 100 * Mi;
}

export function allocatable(machineType: string): Resources | undefined {
  const shape = machineShape(machineType);
  if (!shape) return undefined;
  const [vcpu, gib] = shape;
  return { cpu: vcpu * 1000 - reservedCpu(vcpu), memory: Math.floor(gib * Gi - reservedMemory(gib)), pods: 110 };
}
