// The informer catching up with the Instance controller's own status writes, for tests whose fake
// writers only record: each write shows in the cached Instance, at a new resourceVersion, as a watch
// event would bring it.
import type { InstanceStatus } from '../../../../src/api/types.ts';
import type { Fakes } from '../../fake/cluster.ts';

const shown = new WeakMap<Fakes, number>();

/** Applies to the cache every status write recorded since the last call. */
export function cacheShowsWrites(f: Fakes): void {
  const from = shown.get(f) ?? 0;
  for (const [what, name, ...args] of f.writes.log.slice(from)) {
    const inst = f.cluster.instanceList.find((i) => i.metadata.name === name);
    if (!inst) continue;
    let status: InstanceStatus | undefined;
    if (what === 'instances.patchStatus') {
      const merged: Record<string, unknown> = { ...inst.status };
      for (const [k, v] of Object.entries(args[0] as Record<string, unknown>)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      status = merged as InstanceStatus;
    } else if (what === 'instances.replaceStatus') {
      status = args[1] as InstanceStatus;
    } else {
      continue;
    }
    const i = f.cluster.instanceList.indexOf(inst);
    f.cluster.instanceList[i] = {
      ...inst,
      metadata: { ...inst.metadata, resourceVersion: String(Number(inst.metadata.resourceVersion ?? 0) + 1) },
      status,
    };
  }
  shown.set(f, f.writes.log.length);
}
