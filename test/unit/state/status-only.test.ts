// Which InstanceClass updates are status-only (they wake only the controller that reads the status).
import { describe, expect, it } from 'vitest';
import { onlyStatusChanged } from '../../../src/state/cluster.ts';

const cls = (o: { rv?: string; generation?: number; labels?: Record<string, string>; status?: object } = {}) => ({
  apiVersion: 'ipp.dev/v1alpha1',
  kind: 'InstanceClass',
  metadata: { name: 'c', resourceVersion: o.rv ?? '1', generation: o.generation ?? 1, labels: o.labels },
  spec: { instanceTypes: ['sim.small'] },
  status: o.status ?? { instances: 1 },
});

describe('onlyStatusChanged', () => {
  it('is true when only the status and the resourceVersion moved', () => {
    expect(onlyStatusChanged(cls(), cls({ rv: '2', status: { instances: 2 } }))).toBe(true);
  });
  it('is false for any change of spec or metadata', () => {
    expect(onlyStatusChanged(cls(), cls({ rv: '2', generation: 2 }))).toBe(false);
    expect(onlyStatusChanged(cls(), cls({ rv: '2', labels: { a: 'b' } }))).toBe(false);
    const otherSpec = { ...cls({ rv: '2' }), spec: { instanceTypes: ['sim.large'] } };
    expect(onlyStatusChanged(cls(), otherSpec)).toBe(false);
  });
});
