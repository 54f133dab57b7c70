// The burst bench's rounds: one figure per tree, scenario and size, the median of its rounds.
import { describe, expect, it } from 'vitest';
import { medianOfRounds } from '../../bench/burst-bench.ts';
import type { BurstResult } from '../../bench/burst.ts';

const result = (tree: string, pods: number, cpu: number, requests: Record<string, number>): BurstResult =>
  ({
    tree,
    scenario: 'empty cluster',
    pods,
    cpuMsPerPod: cpu,
    readyToPinnedP99Ms: NaN,
    controllerRequests: requests,
  }) as unknown as BurstResult;

describe('medianOfRounds', () => {
  it('merges the rounds of each tree and size into medians, number by number and key by key', () => {
    const merged = medianOfRounds([
      result('this tree', 1000, 12, { 'PATCH pods': 2 }),
      result('baseline x', 1000, 20, { 'PATCH pods': 2 }),
      result('baseline x', 1000, 16, { 'PATCH pods': 3, 'POST events': 1 }),
      result('this tree', 1000, 10, { 'PATCH pods': 2 }),
      result('this tree', 1000, 30, { 'PATCH pods': 2, 'POST events': 2 }),
      result('this tree', 100, 9, {}),
    ]);
    expect(merged.map((r) => [r.tree, r.pods, r.cpuMsPerPod])).toEqual([
      ['this tree', 1000, 12],
      ['baseline x', 1000, 18],
      ['this tree', 100, 9],
    ]);
    // A key one round lacks counts as 0 there; a figure no round measured stays NaN.
    expect(merged[0]!.controllerRequests).toEqual({ 'PATCH pods': 2, 'POST events': 0 });
    expect(merged[1]!.controllerRequests).toEqual({ 'PATCH pods': 2.5, 'POST events': 0.5 });
    expect(merged[0]!.readyToPinnedP99Ms).toBeNaN();
  });
});
