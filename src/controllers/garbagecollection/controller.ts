// Garbage collection both ways, from what the cloud's tags and the API server say now:
// cloud instances tagged for this cluster that no Instance accounts for (leaked by a crash or a
// deleted CRD) are terminated after a grace period; Instances whose cloud instance vanished are
// deleted, so the pods they were meant for are provisioned again.
import { TAG_CLASS, TAG_INSTANCE } from '../../api/names.ts';
import type { Instance } from '../../api/types.ts';
import { ignoreCloudNotFound, NotFoundError } from '../../../providers/errors.ts';
import type { CloudInstance } from '../../../providers/types.ts';
import type { ControllerContext } from '../context.ts';
import { instanceVanished } from './events.ts';

export interface GarbageCollectionDeps extends ControllerContext {
  /** How old an unaccounted cloud instance must be before it counts as leaked. */
  gracePeriodMs: number;
}

/**
 * Cloud instances no Instance accounts for, older than the grace period. Pure. An instance tagged
 * with an Instance's name is accounted for only while that Instance has not recorded a providerID
 * (it may be about to record this one); once it has, any other instance with its name is a duplicate.
 */
export function leaked(
  cloud: readonly CloudInstance[],
  instances: readonly Instance[],
  gracePeriodMs: number,
  now: number,
): CloudInstance[] {
  const byName = new Map(instances.map((i) => [i.metadata.name, i]));
  const ids = new Set(instances.map((i) => i.status?.providerID).filter(Boolean));
  return cloud.filter((c) => {
    if (ids.has(c.providerID)) return false;
    const owner = byName.get(c.tags[TAG_INSTANCE] ?? '');
    if (owner && !owner.status?.providerID) return false;
    return now - c.launchedAt.getTime() >= gracePeriodMs;
  });
}

export class GarbageCollector {
  private readonly d: GarbageCollectionDeps;
  private readonly now: () => number;

  constructor(deps: GarbageCollectionDeps) {
    this.d = deps;
    this.now = deps.now ?? Date.now;
  }

  async collect(): Promise<void> {
    const instances = this.d.state.instances.list();
    for (const [name, provider] of this.d.providers) {
      const cloud = await provider.list();
      for (const c of leaked(cloud, instances, this.d.gracePeriodMs, this.now())) {
        await ignoreCloudNotFound(provider.delete(c.providerID));
        this.d.metrics.leakedInstancesCollected.inc({ provider: name });
        this.d.logger.warn(
          { providerID: c.providerID, instance: c.tags[TAG_INSTANCE], class: c.tags[TAG_CLASS] },
          'terminated a leaked cloud instance (tagged for this cluster, no Instance)',
        );
      }
      const live = new Set(cloud.map((c) => c.providerID));
      for (const inst of instances) {
        const id = inst.status?.providerID;
        if (!id || inst.status?.provider !== name || inst.metadata.deletionTimestamp || live.has(id)) continue;
        // list() may lag a fresh launch; ask for this one before declaring it gone.
        if (this.now() - Date.parse(inst.status.launchedAt ?? '') < this.d.gracePeriodMs) continue;
        try {
          await provider.get(id);
          continue;
        } catch (e) {
          if (!(e instanceof NotFoundError)) throw e;
        }
        this.d.events.record(instanceVanished(inst, id));
        this.d.logger.warn(
          { instance: inst.metadata.name, providerID: id },
          'cloud instance vanished; deleting its Instance',
        );
        await this.d.api.instances.delete(inst.metadata.name!);
      }
    }
  }
}
