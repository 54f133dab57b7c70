import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { allocatableOf, cpuMillis, fits, parseQuantity, podRequests } from '../../../src/api/quantity.ts';

describe('quantities', () => {
  it('parses CPU and memory notations', () => {
    expect(cpuMillis('500m')).toBe(500);
    expect(cpuMillis('2')).toBe(2000);
    expect(parseQuantity('4Gi')).toBe(4 * 2 ** 30);
    expect(parseQuantity('1k')).toBe(1000);
    expect(parseQuantity('1e3')).toBe(1000);
    expect(() => parseQuantity('lots')).toThrow(/not a Kubernetes quantity/);
  });

  it('counts a pod as the scheduler does: containers summed, the largest init container, overhead', () => {
    const r = podRequests({
      spec: {
        containers: [
          { name: 'a', resources: { requests: { cpu: '250m', memory: '1Gi' } } },
          { name: 'b', resources: { requests: { cpu: '250m' } } },
        ],
        initContainers: [{ name: 'i', resources: { requests: { cpu: '2', memory: '512Mi' } } }],
        overhead: { cpu: '100m' },
      },
    });
    expect(r).toEqual({ cpu: 2100, memory: 2 ** 30, pods: 1 });
  });

  it('counts sidecars (init containers that keep running) beside the containers, and with the init containers after them', () => {
    const sidecar = (name: string, cpu: string) => ({
      name,
      restartPolicy: 'Always',
      resources: { requests: { cpu, memory: '1Mi' } },
    });
    // containers 1 + sidecars 3 × 1: the scheduler counts 4 CPUs (ipp counted 1, and pinned onto a
    // Class-isolation node the scheduler then refused the next pod after it).
    expect(
      podRequests({
        spec: {
          containers: [{ name: 'app', resources: { requests: { cpu: '1' } } }],
          initContainers: [sidecar('s1', '1'), sidecar('s2', '1'), sidecar('s3', '1')],
        },
      }).cpu,
    ).toBe(4000);
    // An init container after a sidecar runs beside it: 3 + 1 > 1 + 1.
    expect(
      podRequests({
        spec: {
          containers: [{ name: 'app', resources: { requests: { cpu: '1' } } }],
          initContainers: [sidecar('s1', '1'), { name: 'migrate', resources: { requests: { cpu: '3' } } }],
        },
      }).cpu,
    ).toBe(4000);
  });

  it('takes pod-level requests where set, the containers for the rest', () => {
    const r = podRequests({
      spec: {
        resources: { requests: { cpu: '3' } },
        containers: [{ name: 'a', resources: { requests: { cpu: '1', memory: '1Gi' } } }],
        overhead: { cpu: '100m' },
      },
    } as V1Pod);
    expect(r).toEqual({ cpu: 3100, memory: 2 ** 30, pods: 1 });
  });

  it('fits only when every dimension fits', () => {
    const cap = { cpu: 1000, memory: 100, pods: 2 };
    expect(fits({ cpu: 500, memory: 50, pods: 1 }, { cpu: 500, memory: 50, pods: 1 }, cap)).toBe(true);
    expect(fits({ cpu: 500, memory: 50, pods: 2 }, { cpu: 1, memory: 1, pods: 1 }, cap)).toBe(false);
    expect(fits({ cpu: 600, memory: 0, pods: 0 }, { cpu: 500, memory: 0, pods: 1 }, cap)).toBe(false);
  });

  it('counts every other resource a pod requests as the scheduler does: GPUs, ephemeral storage, huge pages', () => {
    const r = podRequests({
      spec: {
        resources: { requests: { cpu: '3', 'hugepages-2Mi': '4Mi' } },
        containers: [
          { name: 'a', resources: { requests: { cpu: '1', 'nvidia.com/gpu': '1', 'ephemeral-storage': '1Gi' } } },
          { name: 'b', resources: { requests: { 'nvidia.com/gpu': '1' } } },
        ],
        initContainers: [
          { name: 'fetch', resources: { requests: { 'ephemeral-storage': '5Gi', 'hugepages-2Mi': '0' } } },
          { name: 'proxy', restartPolicy: 'Always', resources: { requests: { 'example.com/nic': '1' } } },
        ],
        overhead: { 'ephemeral-storage': '1Mi' },
      },
    } as V1Pod);
    // Pod-level requests replace CPU, memory and huge pages only; the init container's storage is larger
    // than the containers'; the sidecar's device runs beside them; a zero request is no request.
    expect(r).toEqual({
      cpu: 3000,
      memory: 0,
      pods: 1,
      other: {
        'nvidia.com/gpu': 2,
        'ephemeral-storage': 5 * 2 ** 30 + 2 ** 20,
        'example.com/nic': 1,
        'hugepages-2Mi': 4 * 2 ** 20,
      },
    });
  });

  it('fits a device by its count where the node reports it, one pod at a time where nothing does', () => {
    const gpus = (n: number) => ({ cpu: 0, memory: 0, pods: 0, other: { 'nvidia.com/gpu': n } });
    const node = allocatableOf({
      cpu: '8',
      memory: '32Gi',
      pods: '110',
      'nvidia.com/gpu': '2',
      'ephemeral-storage': '20Gi',
    })!;
    expect(node).toEqual({
      cpu: 8000,
      memory: 32 * 2 ** 30,
      pods: 110,
      other: { 'nvidia.com/gpu': 2, 'ephemeral-storage': 20 * 2 ** 30 },
    });
    expect(fits(gpus(1), gpus(1), node)).toBe(true);
    expect(fits(gpus(2), gpus(1), node)).toBe(false);
    // A node whose device plugin has not reported yet, or a catalog type with no device count.
    const unknown = allocatableOf({ cpu: '8', memory: '32Gi', pods: '110' })!;
    expect(fits(gpus(0), gpus(4), unknown)).toBe(true);
    expect(fits(gpus(1), gpus(1), unknown)).toBe(false);
    // Native resources the capacity does not list are the kubelet's to report at registration: not counted.
    const storage = (b: number) => ({ cpu: 0, memory: 0, pods: 0, other: { 'ephemeral-storage': b } });
    expect(fits(storage(10), storage(10), unknown)).toBe(true);
    expect(fits(storage(15 * 2 ** 30), storage(10 * 2 ** 30), node)).toBe(false);
    expect(allocatableOf({ cpu: '8', memory: '32Gi' })).toBeUndefined();
  });
});
