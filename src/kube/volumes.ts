// The zones a waiting pod's volumes pin it to, read directly from the API server: one GET of each
// claim and of the volume it is bound to (or, not bound yet, of its StorageClass), only for pods
// about to be given a new instance. An informer of every PersistentVolume and claim would hold the
// whole cluster's storage in memory for the few pods that wait at any moment.
import { CoreV1Api, StorageV1Api, type KubeConfig, type V1Pod, type V1StorageClass } from '@kubernetes/client-node';
import { claimsOf, storageClassZoneRequirement, volumeZoneRequirement, type ZoneRequirement } from '../api/zones.ts';
import { ignoreNotFound } from './errors.ts';

export interface VolumeLookup {
  /** What the pod's bound volumes require of its node's zone; an unbound or missing claim requires nothing yet. */
  zoneRequirements(pod: V1Pod): Promise<ZoneRequirement[]>;
}

/** How long a pod's answer is kept when all its claims were bound (a binding never changes). */
const BOUND_TTL_MS = 10 * 60_000;

/** How long a StorageClass read is kept: its allowedTopologies cannot change (only its labels can). */
const STORAGE_CLASS_TTL_MS = 60_000;

export class VolumeReader implements VolumeLookup {
  private readonly core: CoreV1Api;
  private readonly storage: StorageV1Api;
  private readonly now: () => number;
  /** StorageClass name → what was read (undefined: it does not exist). */
  private readonly storageClasses = new Map<string, { at: number; sc: V1StorageClass | undefined }>();
  /** pod uid → its requirements, for pods whose claims were all bound. */
  private readonly bound = new Map<string, { at: number; requirements: ZoneRequirement[] }>();

  constructor(kc: KubeConfig, now: () => number = Date.now) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.storage = kc.makeApiClient(StorageV1Api);
    this.now = now;
  }

  async zoneRequirements(pod: V1Pod): Promise<ZoneRequirement[]> {
    const claims = claimsOf(pod);
    if (!claims.length) return [];
    const uid = pod.metadata?.uid ?? '';
    const now = this.now();
    for (const [k, v] of this.bound) if (now - v.at > BOUND_TTL_MS) this.bound.delete(k);
    const known = this.bound.get(uid);
    if (known) return known.requirements;

    const namespace = pod.metadata!.namespace!;
    const requirements: ZoneRequirement[] = [];
    let allBound = true;
    for (const name of claims) {
      const pvc = await ignoreNotFound(this.core.readNamespacedPersistentVolumeClaim({ name, namespace }));
      // Not bound yet (WaitForFirstConsumer, or not created yet): the volume follows the node, within
      // the zones its StorageClass lets the provisioner use.
      const volume = pvc?.spec?.volumeName;
      if (!volume) {
        allBound = false;
        const scName = pvc?.spec?.storageClassName;
        const sc = scName ? await this.storageClass(scName, now) : undefined;
        const r = sc && storageClassZoneRequirement(sc, name);
        if (r) requirements.push(r);
        continue;
      }
      const pv = await ignoreNotFound(this.core.readPersistentVolume({ name: volume }));
      if (!pv) {
        allBound = false;
        continue;
      }
      const r = volumeZoneRequirement(pv, name);
      if (r) requirements.push(r);
    }
    if (allBound && uid) this.bound.set(uid, { at: now, requirements });
    return requirements;
  }

  private async storageClass(name: string, now: number): Promise<V1StorageClass | undefined> {
    const known = this.storageClasses.get(name);
    if (known && now - known.at <= STORAGE_CLASS_TTL_MS) return known.sc;
    const sc = await ignoreNotFound(this.storage.readStorageClass({ name }));
    this.storageClasses.set(name, { at: now, sc });
    return sc;
  }
}
