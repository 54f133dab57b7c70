// The RuntimeClass ipp-<class> each InstanceClass gets, and what to do to make the cluster's match
// it. Pure: controller.ts reads the two objects and performs the answer. A pod that names the
// RuntimeClass is opted in exactly as one labelled ipp-class (src/webhook/mutate.ts); the
// RuntimeClass admission plugin adds the class toleration and the handler's overhead before ipp's
// webhook runs.
import type { V1OwnerReference, V1RuntimeClass } from '@kubernetes/client-node';
import { API_VERSION, NODE_CLASS_LABEL, RUNTIME_CLASS_PREFIX, runtimeClassName } from '../../api/names.ts';
import { parseQuantity } from '../../api/quantity.ts';
import type { InstanceClass } from '../../api/types.ts';
import { classNoExecuteToleration, classToleration } from '../../api/classes.ts';

export { classOfRuntimeClass, runtimeClassName } from '../../api/names.ts';
export const DEFAULT_HANDLER = 'runc';
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'ipp' };

function ownerOf(cls: InstanceClass): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: 'InstanceClass',
    name: cls.metadata.name!,
    uid: cls.metadata.uid!,
    controller: true,
  };
}

export function desiredRuntimeClass(cls: InstanceClass): V1RuntimeClass {
  const name = cls.metadata.name!;
  const rc: V1RuntimeClass = {
    apiVersion: 'node.k8s.io/v1',
    kind: 'RuntimeClass',
    metadata: {
      name: runtimeClassName(name),
      labels: { ...MANAGED_BY, [NODE_CLASS_LABEL]: name },
      // The garbage collector deletes it with the class even when ipp is not running.
      ownerReferences: [ownerOf(cls)],
    },
    handler: cls.spec.runtimeClass?.handler ?? DEFAULT_HANDLER,
    scheduling: { tolerations: [classToleration(name), classNoExecuteToleration(name)] },
  };
  const podFixed = cls.spec.runtimeClass?.overhead?.podFixed;
  // The CRD takes 1 as well as "1"; a RuntimeClass quantity is a string.
  if (podFixed && Object.keys(podFixed).length)
    rc.overhead = { podFixed: Object.fromEntries(Object.entries(podFixed).map(([k, v]) => [k, String(v)])) };
  return rc;
}

/** The InstanceClass (by name and uid) that owns a RuntimeClass, if ipp made it. */
function ippOwner(rc: V1RuntimeClass): V1OwnerReference | undefined {
  return rc.metadata?.ownerReferences?.find((o) => o.apiVersion === API_VERSION && o.kind === 'InstanceClass');
}

export type RuntimeClassAction =
  | { kind: 'none' }
  | { kind: 'create'; body: V1RuntimeClass }
  /** The handler is immutable, and an object owned by a deleted class of the same name is the GC's: delete, then create. */
  | { kind: 'recreate'; uid: string; body: V1RuntimeClass; why: string }
  | { kind: 'update'; body: V1RuntimeClass }
  | { kind: 'delete'; uid: string }
  /** Someone else's RuntimeClass has the name: leave it alone and say so. */
  | { kind: 'conflict'; message: string };

const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : x,
  );

/** Equal overheads, quantities compared by value (the apiserver writes 0.25 back as 250m). */
function sameOverhead(a: V1RuntimeClass['overhead'], b: V1RuntimeClass['overhead']): boolean {
  const x = a?.podFixed ?? {};
  const y = b?.podFixed ?? {};
  const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
  return [...keys].every((k) => {
    if (x[k] === undefined || y[k] === undefined) return false;
    const [p, q] = [parseQuantity(x[k]), parseQuantity(y[k])];
    return Math.abs(p - q) <= 1e-9 * Math.max(Math.abs(p), Math.abs(q));
  });
}

/**
 * What to do. `cls` undefined means the class is confirmed gone (a direct read, not a cache miss);
 * `existing` undefined means no RuntimeClass of that name.
 */
export function runtimeClassAction(
  className: string,
  cls: InstanceClass | undefined,
  existing: V1RuntimeClass | undefined,
): RuntimeClassAction {
  const owner = existing ? ippOwner(existing) : undefined;
  if (!cls) {
    if (existing && owner?.name === className) return { kind: 'delete', uid: existing.metadata!.uid! };
    return { kind: 'none' };
  }
  const want = desiredRuntimeClass(cls);
  if (!existing) return { kind: 'create', body: want };
  if (!owner || owner.name !== className) {
    return {
      kind: 'conflict',
      message:
        `RuntimeClass ${want.metadata!.name} exists and was not made by ipp for InstanceClass ${className}, so ipp leaves it ` +
        `alone and pods cannot opt in with runtimeClassName ${want.metadata!.name}. Delete or rename that RuntimeClass ` +
        `(names ${RUNTIME_CLASS_PREFIX}<class> are ipp's), or use the ipp-class label.`,
    };
  }
  const uid = existing.metadata!.uid!;
  if (owner.uid !== cls.metadata.uid)
    return { kind: 'recreate', uid, body: want, why: 'it belonged to an earlier InstanceClass of the same name' };
  if (existing.handler !== want.handler)
    return { kind: 'recreate', uid, body: want, why: `handler changed from ${existing.handler} to ${want.handler}` };
  const labels = existing.metadata?.labels ?? {};
  const same =
    canonical(existing.scheduling ?? null) === canonical(want.scheduling) &&
    sameOverhead(existing.overhead, want.overhead) &&
    Object.entries(want.metadata!.labels!).every(([k, v]) => labels[k] === v);
  if (same) return { kind: 'none' };
  return {
    kind: 'update',
    body: {
      ...want,
      metadata: {
        ...want.metadata,
        labels: { ...labels, ...want.metadata!.labels },
        ...(existing.metadata?.annotations ? { annotations: existing.metadata.annotations } : {}),
        resourceVersion: existing.metadata?.resourceVersion,
      },
    },
  };
}
