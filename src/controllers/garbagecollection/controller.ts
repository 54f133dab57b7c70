// Garbage collection both ways, from what the cloud's tags and the API server say now:
// cloud instances tagged for this cluster that no Instance accounts for (leaked by a crash or a
// deleted CRD) are terminated after a grace period; Instances whose cloud instance vanished are
// deleted, so the pods they were meant for are provisioned again.
// A verdict of "leaked" rests on the absence of an Instance from a cache, so it is never acted on
// alone: the instance must be found leaked on two passes in a row, its owning Instance is read from
// the API server right before the termination, and one pass terminates at most a few. A cache that
// lies (a bug, a restore of etcd, a CRD deleted by mistake) then costs a handful of machines and a
// loud log line, not the fleet.
import { TAG_CLASS, TAG_INSTANCE } from '../../api/names.ts';
import type { Instance } from '../../api/types.ts';
import { ignoreCloudNotFound, NotFoundError, NotOwnedError } from '../../../providers/errors.ts';
import { isConflict } from '../../kube/errors.ts';
import type { CloudInstance, CloudProvider } from '../../../providers/types.ts';
import type { ControllerContext } from '../context.ts';
import { instanceVanished } from './events.ts';

export interface GarbageCollectionDeps extends ControllerContext {
  /** How old an unaccounted cloud instance must be before it counts as leaked. */
  gracePeriodMs: number;
}

/** The most cloud instances one pass terminates, and the most Instances it deletes as vanished. */
export const MAX_COLLECTED_PER_PASS = 10;

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
  /** Cloud instances the last pass found leaked: only those may be terminated by this one. */
  private suspects = new Set<string>();

  constructor(deps: GarbageCollectionDeps) {
    this.d = deps;
    this.now = deps.now ?? Date.now;
  }

  async collect(): Promise<void> {
    const instances = this.d.state.instances.list();
    const suspects = new Set<string>();
    for (const [name, provider] of this.d.providers) {
      const cloud = await provider.list();
      let terminated = 0;
      let held = 0;
      for (const c of leaked(cloud, instances, this.d.gracePeriodMs, this.now())) {
        suspects.add(c.providerID);
        if (!this.suspects.has(c.providerID)) continue;
        if (terminated >= MAX_COLLECTED_PER_PASS) {
          held++;
          continue;
        }
        if (await this.ownerClaims(c)) continue;
        await ignoreCloudNotFound(provider.delete(c.providerID));
        terminated++;
        this.d.metrics.leakedInstancesCollected.inc({ provider: name });
        this.d.logger.warn(
          { providerID: c.providerID, instance: c.tags[TAG_INSTANCE], class: c.tags[TAG_CLASS] },
          'terminated a leaked cloud instance (tagged for this cluster, no Instance on two passes nor in a direct read)',
        );
      }
      if (held)
        this.d.logger.warn(
          { provider: name, held, max: MAX_COLLECTED_PER_PASS },
          'more cloud instances look leaked than one pass terminates; the rest wait for the next passes. ' +
            'If this is unexpected (Instances deleted by mistake, a restored etcd), scale the controller to 0 and check',
        );
      await this.collectVanished(name, provider, instances, new Set(cloud.map((c) => c.providerID)));
    }
    this.suspects = suspects;
  }

  /** Does the Instance the cloud instance is tagged with, read from the API server now, account for it? */
  private async ownerClaims(c: CloudInstance): Promise<boolean> {
    const ownerName = c.tags[TAG_INSTANCE];
    if (!ownerName) return false;
    const owner = await this.d.lookup.instances.read(ownerName);
    if (!owner) return false;
    // One that recorded another cloud instance owns that one: this is a duplicate. One still
    // launching (no providerID yet) may be about to record this very instance.
    const recorded = owner.status?.providerID;
    if (recorded && recorded !== c.providerID) return false;
    this.d.logger.info(
      { providerID: c.providerID, instance: ownerName },
      'cloud instance looked leaked in the cache, but its Instance exists; kept',
    );
    return true;
  }

  private async collectVanished(
    name: string,
    provider: CloudProvider,
    instances: readonly Instance[],
    live: ReadonlySet<string>,
  ): Promise<void> {
    let deleted = 0;
    for (const inst of instances) {
      const id = inst.status?.providerID;
      if (!id || inst.status?.provider !== name || inst.metadata.deletionTimestamp || live.has(id)) continue;
      // list() may lag a fresh launch; ask for this one before declaring it gone.
      if (this.now() - Date.parse(inst.status.launchedAt ?? '') < this.d.gracePeriodMs) continue;
      if (deleted >= MAX_COLLECTED_PER_PASS) return;
      try {
        // With its class: a provider finds a machine its group has not made yet through it (GCE).
        await provider.get(id, this.d.state.instanceClass(inst.spec.class));
        continue;
      } catch (e) {
        if (e instanceof NotOwnedError) {
          // Not gone: there, under another cluster's tag. Most likely every machine is (--cluster-name
          // changed), and deleting their Instances would drain every node: this pass stops here.
          this.d.logger.error(
            { instance: inst.metadata.name, providerID: id, err: e },
            'an Instance records a cloud instance tagged for another cluster; not collecting vanished instances ' +
              `of provider ${name} until it is explained (was --cluster-name changed?)`,
          );
          return;
        }
        if (!(e instanceof NotFoundError)) throw e;
      }
      this.d.events.record(instanceVanished(inst, id));
      this.d.logger.warn(
        { instance: inst.metadata.name, providerID: id },
        'cloud instance vanished; deleting its Instance',
      );
      // At the version this pass read: an Instance of the same name written since (repair replaced
      // it, a pod's claim recreated it) is not the one whose machine vanished (409: left alone).
      try {
        await this.d.api.instances.delete(inst.metadata.name!, inst.metadata.resourceVersion);
      } catch (e) {
        if (!isConflict(e)) throw e;
        continue;
      }
      deleted++;
    }
  }
}
