// Builders for admission requests, so each test states only what it is about.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { InstanceClass } from '../../../src/api/types.ts';
import type { AdmissionRequest, ClassLookup, NodeLookup, PatchOp } from '../../../src/webhook/admission.ts';

export const lookup = <T>(entries: Record<string, T>): { get(name: string): T | undefined } => ({
  get: (n) => entries[n],
});

export function classes(...list: InstanceClass[]): ClassLookup {
  return lookup(Object.fromEntries(list.map((c) => [c.metadata.name!, c])));
}

export const instanceClass = (name: string, namespaces?: string[]): InstanceClass => ({
  metadata: { name },
  spec: { instanceTypes: ['sim.small'], simulated: {}, namespaces: namespaces ?? ['*'] },
});

export function nodes(...list: V1Node[]): NodeLookup {
  return lookup(Object.fromEntries(list.map((n) => [n.metadata!.name!, n])));
}

export const node = (name: string, labels: Record<string, string> = {}): V1Node => ({ metadata: { name, labels } });

export function pod(
  labels: Record<string, string> | undefined,
  spec: Partial<V1Pod['spec']> = {},
  meta: Partial<V1Pod['metadata']> = {},
): V1Pod {
  return {
    metadata: { generateName: 'web-', ...(labels ? { labels } : {}), ...meta },
    spec: { containers: [{ name: 'c', image: 'nginx' }], schedulerName: 'default-scheduler', ...spec },
  };
}

export function create(object: unknown, extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    uid: 'u-1',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    operation: 'CREATE',
    namespace: 'team-a',
    name: '',
    object,
    userInfo: { username: 'alice' },
    ...extra,
  };
}

export function update(object: V1Pod, oldObject: V1Pod, extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return create(object, { operation: 'UPDATE', oldObject, name: 'web-1', ...extra });
}

/**
 * A Binding of pod `name` to node `target` by `username`, as the API server reviews it: through
 * pods/binding, or the legacy bindings resource.
 */
export function binding(name: string, target: string, username: string, resource: 'pods' | 'bindings' = 'pods') {
  return create(
    { metadata: { name }, target: { kind: 'Node', name: target } },
    {
      kind: { group: '', version: 'v1', kind: 'Binding' },
      resource: { group: '', version: 'v1', resource },
      name,
      userInfo: { username },
      ...(resource === 'pods' ? { subResource: 'binding' } : {}),
    },
  );
}

/** RFC 6902 `add` (the only op the webhook emits), enough to check that a patch applies and what it yields. */
export function applyPatch<T>(doc: T, ops: PatchOp[]): T {
  const out = structuredClone(doc) as unknown;
  for (const op of ops) {
    if (op.op !== 'add') throw new Error(`unexpected op ${op.op}`);
    const parts = op.path
      .split('/')
      .slice(1)
      .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = parts.pop()!;
    let target = out as Record<string, unknown> | unknown[];
    for (const p of parts) {
      const next = Array.isArray(target) ? target[Number(p)] : target[p];
      if (typeof next !== 'object' || next === null) throw new Error(`path ${op.path}: ${p} does not exist`);
      target = next as Record<string, unknown> | unknown[];
    }
    if (Array.isArray(target)) {
      if (last === '-') target.push(op.value);
      else target.splice(Number(last), 0, op.value);
    } else {
      target[last] = op.value;
    }
  }
  return out as T;
}
