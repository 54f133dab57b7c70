// Allocatable resources of the instance types ipp is most used with, for Class isolation packing.
// vCPU / memory from the EC2 instance type pages; max pods from the EKS AMI's ENI table
// (eni-max-pods.txt); reservations from the EKS AMI's formulas (kube-reserved CPU by cores, memory
// 255Mi + 11Mi per pod, eviction threshold 100Mi). Unknown types answer undefined: ipp then packs
// nothing it cannot count (one pod per instance).
import type { Resources } from '../types.ts';

const Gi = 1024 ** 3;
const Mi = 1024 ** 2;

/** [vCPU, memory GiB, max pods] */
const TYPES: Record<string, [number, number, number]> = {
  'i3.large': [2, 15.25, 29],
  'i3.xlarge': [4, 30.5, 58],
  'i3.2xlarge': [8, 61, 58],
  'i3.4xlarge': [16, 122, 234],
  'i3.8xlarge': [32, 244, 234],
  'i3.16xlarge': [64, 488, 737],
  'i3.metal': [72, 512, 737],
  'm5.large': [2, 8, 29],
  'm5.xlarge': [4, 16, 58],
  'm5.2xlarge': [8, 32, 58],
  'm5.4xlarge': [16, 64, 234],
  'm5.8xlarge': [32, 128, 234],
  'm5.12xlarge': [48, 192, 234],
  'm5.16xlarge': [64, 256, 737],
  'm5.24xlarge': [96, 384, 737],
  'm5.metal': [96, 384, 737],
  'c5.large': [2, 4, 29],
  'c5.xlarge': [4, 8, 58],
  'c5.2xlarge': [8, 16, 58],
  'c5.4xlarge': [16, 32, 234],
  'c5.9xlarge': [36, 72, 234],
  'c5.12xlarge': [48, 96, 234],
  'c5.18xlarge': [72, 144, 737],
  'c5.24xlarge': [96, 192, 737],
  'c5.metal': [96, 192, 737],
};

/** kube-reserved CPU (millicores): 6% of the first core, 1% of the second, 0.5% of cores 3-4, 0.25% above. */
export function reservedCpu(vcpu: number): number {
  let m = 0;
  for (let core = 1; core <= vcpu; core++) m += core === 1 ? 60 : core === 2 ? 10 : core <= 4 ? 5 : 2.5;
  return Math.round(m);
}

export function allocatable(instanceType: string): Resources | undefined {
  const t = TYPES[instanceType];
  if (!t) return undefined;
  const [vcpu, gib, pods] = t;
  return {
    cpu: vcpu * 1000 - reservedCpu(vcpu),
    memory: Math.floor(gib * Gi - (255 + 11 * pods) * Mi - 100 * Mi),
    pods,
  };
}
