// What /readyz says while caches have not listed.
import { describe, expect, it } from 'vitest';
import { notSyncedReason } from '../../../src/state/cluster.ts';

describe('notSyncedReason', () => {
  it('is undefined once every cache has listed, even if a later watch failed', () => {
    expect(
      notSyncedReason([
        { resource: 'pods', synced: true, objects: 3, lastError: 'watching pods: HTTP 500' },
        { resource: 'nodes', synced: true, objects: 1 },
      ]),
    ).toBeUndefined();
  });

  it('names every cache that has not listed, with its last error when there is one', () => {
    expect(
      notSyncedReason([
        { resource: 'pods', synced: true, objects: 3 },
        { resource: 'nodes', synced: false, objects: 0, lastError: 'listing nodes: HTTP 403 Forbidden: no' },
        { resource: 'runtimeclasses', synced: false, objects: 0 },
      ]),
    ).toBe(
      'caches not synced: nodes has not listed yet (last error: listing nodes: HTTP 403 Forbidden: no); runtimeclasses has not listed yet',
    );
  });
});
