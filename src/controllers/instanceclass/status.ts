// An InstanceClass's status: is it usable (condition Ready), and what does it have right now.
import type { V1Condition, V1Pod } from '@kubernetes/client-node';
import type { Instance, InstanceClass, InstanceClassStatus } from '../../api/types.ts';
import { awaitsPlacement } from '../../api/pods.ts';
import { isWarm } from '../warmpool/pool.ts';

/**
 * Pure: the status implied by the class's problem (if any), its Instances and its pods. `pods` may be
 * only those not bound yet (the controller passes the `unbound` index): no other pod awaits placement.
 */
export function classStatus(
  cls: InstanceClass,
  problem: { reason: string; message: string } | undefined,
  instances: readonly Instance[],
  pods: readonly V1Pod[],
  now: Date,
): InstanceClassStatus {
  const previous = cls.status?.conditions?.find((c) => c.type === 'Ready');
  const status = problem ? 'False' : 'True';
  const ready: V1Condition = {
    type: 'Ready',
    status,
    reason: problem?.reason ?? 'Valid',
    message: problem?.message ?? 'the class is valid and its provider is enabled',
    observedGeneration: cls.metadata.generation,
    lastTransitionTime: previous?.status === status ? previous.lastTransitionTime : now,
  };
  // One walk over the Instances: a busy class has thousands, and this runs up to once a second.
  let live = 0;
  let readyInstances = 0;
  let idleInstances = 0;
  let warmReady = 0;
  let warmLaunching = 0;
  for (const i of instances) {
    if (i.metadata.deletionTimestamp) continue;
    live++;
    const isReady = i.status?.phase === 'Ready';
    if (isReady) readyInstances++;
    if (isReady && i.status?.idleSince) idleInstances++;
    if (isWarm(i)) {
      if (isReady) warmReady++;
      else warmLaunching++;
    }
  }
  let pendingPods = 0;
  for (const p of pods) if (awaitsPlacement(p)) pendingPods++;
  return {
    observedGeneration: cls.metadata.generation,
    conditions: [ready],
    instances: live,
    readyInstances,
    idleInstances,
    pendingPods,
    warmReady,
    warmLaunching,
  };
}

/** Has anything a user would read changed? Avoids a status write per reconcile. */
export function statusChanged(a: InstanceClassStatus | undefined, b: InstanceClassStatus): boolean {
  // The server returns the status with its keys sorted: compare content, not key order.
  const sorted = (o: object) => Object.fromEntries(Object.entries(o).sort(([x], [y]) => x.localeCompare(y)));
  const strip = (s: InstanceClassStatus | undefined) =>
    JSON.stringify(
      sorted({
        ...s,
        conditions: (s?.conditions ?? []).map((c) => sorted({ ...c, lastTransitionTime: undefined })),
      }),
    );
  return strip(a) !== strip(b);
}
