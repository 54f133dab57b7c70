// The zones a waiting pod's volumes pin it to, read directly from the API server: one GET of each
// claim and of the volume it is bound to (or, not bound yet, of its StorageClass), only for pods
// about to be given a new instance. An informer of every PersistentVolume and claim would hold the
// whole cluster's storage in memory for the few pods that wait at any moment.
import {
  CoreV1Api,
  StorageV1Api,
  type KubeConfig,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1StorageClass,
} from '@kubernetes/client-node';
import { claimsOf, storageClassZoneRequirement, volumeZoneRequirement, type ZoneRequirement } from '../api/zones.ts';
import { ignoreNotFound, kubeError } from './errors.ts';
import type { Logger } from '../log.ts';

export interface VolumeLookup {
  /**
   * What the pod's volumes require of its node's zone: a bound volume's node affinity, a claim waiting
   * for its node its StorageClass's allowedTopologies. Throws ClaimNotBoundError for a claim the pod
   * must wait for.
   */
  zoneRequirements(pod: V1Pod): Promise<ZoneRequirement[]>;
}

/** The reads the lookup makes, one object each; undefined for an object that does not exist. */
export interface StorageReads {
  claim(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined>;
  volume(name: string): Promise<V1PersistentVolume | undefined>;
  storageClass(name: string): Promise<V1StorageClass | undefined>;
}

/** StorageReads from the API server. */
export function apiStorageReads(kc: KubeConfig): StorageReads {
  const core = kc.makeApiClient(CoreV1Api);
  const storage = kc.makeApiClient(StorageV1Api);
  return {
    claim: (namespace, name) => ignoreNotFound(core.readNamespacedPersistentVolumeClaim({ name, namespace })),
    volume: (name) => ignoreNotFound(core.readPersistentVolume({ name })),
    storageClass: (name) => ignoreNotFound(storage.readStorageClass({ name })),
  };
}

/**
 * A claim the pod mounts is not bound, and its volume does not wait for the pod's node: the claim does
 * not exist yet, or its StorageClass provisions at once (`Immediate`), or it waits for a volume made
 * by hand. kube-scheduler refuses the pod until the claim is bound, and the volume's zone, not the
 * instance's, decides where the pod can run: no instance is launched until then.
 */
export class ClaimNotBoundError extends Error {
  readonly claim: string;
  constructor(claim: string, message: string) {
    super(message);
    this.name = 'ClaimNotBoundError';
    this.claim = claim;
  }
}

/** How long a pod's answer is kept when all its claims were bound (a binding never changes). */
const BOUND_TTL_MS = 10 * 60_000;

/** A claim found not bound is read again after this, six times, then after twice as long each time up to the max. */
const UNBOUND_BACKOFF_MS = 5_000;
const UNBOUND_READS_BEFORE_BACKOFF = 6;
const UNBOUND_BACKOFF_MAX_MS = 60_000;

/** How long a StorageClass read is kept (a class deleted and made again under its name is seen within it). */
const STORAGE_CLASS_TTL_MS = 60_000;

const FORBIDDEN = Symbol('forbidden');
type StorageClassRead = V1StorageClass | undefined | typeof FORBIDDEN;

export class VolumeReader implements VolumeLookup {
  private readonly reads: StorageReads;
  private readonly now: () => number;
  /** StorageClass name → its read (undefined: it does not exist; FORBIDDEN: not allowed to read it), shared by concurrent lookups. */
  private readonly storageClasses = new Map<string, { at: number; read: Promise<StorageClassRead> }>();
  /** pod uid → its claim found not bound, and when to read it again. */
  private readonly unbound = new Map<string, { until: number; failures: number; error: ClaimNotBoundError }>();
  private readonly logger: Logger | undefined;
  private toldForbidden = false;
  /** pod uid → its requirements, for pods whose claims were all bound. */
  private readonly bound = new Map<string, { at: number; requirements: ZoneRequirement[] }>();

  constructor(reads: StorageReads, now: () => number = Date.now, logger?: Logger) {
    this.reads = reads;
    this.now = now;
    this.logger = logger;
  }

  async zoneRequirements(pod: V1Pod): Promise<ZoneRequirement[]> {
    const claims = claimsOf(pod);
    if (!claims.length) return [];
    const uid = pod.metadata?.uid ?? '';
    const now = this.now();
    for (const [k, v] of this.bound) if (now - v.at > BOUND_TTL_MS) this.bound.delete(k);
    const known = this.bound.get(uid);
    if (known) return known.requirements;
    for (const [k, v] of this.unbound) if (now - v.until > BOUND_TTL_MS) this.unbound.delete(k);
    const waiting = this.unbound.get(uid);
    if (waiting && now < waiting.until) throw waiting.error;
    try {
      const requirements = await this.read(pod, claims, uid, now);
      this.unbound.delete(uid);
      return requirements;
    } catch (e) {
      if (e instanceof ClaimNotBoundError && uid) {
        // Most claims bind within seconds and are read every 5 s meanwhile; one that stays unbound (a
        // provisioner that is down) is read less and less often: hundreds of such pods, each read every
        // pass, would take the controller's request budget.
        const failures = (waiting?.failures ?? 0) + 1;
        const backoff = Math.min(
          UNBOUND_BACKOFF_MAX_MS,
          UNBOUND_BACKOFF_MS * 2 ** Math.max(0, failures - UNBOUND_READS_BEFORE_BACKOFF),
        );
        this.unbound.set(uid, { until: now + backoff, failures, error: e });
      }
      throw e;
    }
  }

  private async read(pod: V1Pod, claims: string[], uid: string, now: number): Promise<ZoneRequirement[]> {
    const namespace = pod.metadata!.namespace!;
    const requirements: ZoneRequirement[] = [];
    let allBound = true;
    for (const name of claims) {
      const pvc = await this.reads.claim(namespace, name);
      if (!pvc) throw new ClaimNotBoundError(name, `PersistentVolumeClaim ${namespace}/${name} does not exist (yet)`);
      const volume = pvc.spec?.volumeName;
      // A claim names a volume before it is bound to it (pre-bound); any claim may name any volume.
      // Until both say so, the volume's zone is not this pod's (nor, in a message, its owner's to learn).
      if (volume && pvc.status?.phase !== 'Bound')
        throw new ClaimNotBoundError(
          name,
          `PersistentVolumeClaim ${namespace}/${name} names PersistentVolume ${volume} but is not bound to it yet: its instance is launched in the volume's zone once it is`,
        );
      if (!volume) {
        allBound = false;
        // WaitForFirstConsumer: the volume follows the node, within the zones its StorageClass lets the
        // provisioner use. Anything else is bound before the pod can be placed, wherever its volume is.
        const scName = pvc.spec?.storageClassName;
        const sc = scName ? await this.storageClass(scName, now) : undefined;
        // Without the right to read StorageClasses (a chart older than the image), the claim is taken
        // for one that waits for its node, as before ipp read them: said once, not on every pass.
        if (sc === FORBIDDEN) continue;
        if (sc?.volumeBindingMode !== 'WaitForFirstConsumer')
          throw new ClaimNotBoundError(
            name,
            `PersistentVolumeClaim ${namespace}/${name} is not bound yet, and ${
              !scName
                ? 'names no StorageClass (it waits for a PersistentVolume made for it)'
                : !sc
                  ? `its StorageClass ${scName} does not exist`
                  : `its StorageClass ${scName} binds at once (volumeBindingMode ${sc.volumeBindingMode ?? 'Immediate'}), in a zone of its own`
            }: its instance is launched in the volume's zone once it is bound`,
          );
        const r = storageClassZoneRequirement(sc, name);
        if (r) requirements.push(r);
        continue;
      }
      const pv = await this.reads.volume(volume);
      if (!pv) {
        allBound = false;
        continue;
      }
      if (pv.spec?.claimRef?.uid !== pvc.metadata?.uid)
        throw new ClaimNotBoundError(
          name,
          `PersistentVolumeClaim ${namespace}/${name} says it is bound to PersistentVolume ${volume}, which is bound to another claim or none`,
        );
      const r = volumeZoneRequirement(pv, name);
      if (r) requirements.push(r);
    }
    if (allBound && uid) this.bound.set(uid, { at: now, requirements });
    return requirements;
  }

  private storageClass(name: string, now: number): Promise<StorageClassRead> {
    for (const [k, v] of this.storageClasses) if (now - v.at > STORAGE_CLASS_TTL_MS) this.storageClasses.delete(k);
    const known = this.storageClasses.get(name);
    if (known) return known.read;
    const read = this.reads.storageClass(name).catch((e: unknown): StorageClassRead => {
      if (kubeError(e)?.code !== 403) {
        this.storageClasses.delete(name); // a failed read is not kept: the next pass asks again
        throw e;
      }
      if (!this.toldForbidden)
        this.logger?.warn(
          { storageClass: name, err: e },
          `reading StorageClass ${name} is forbidden: claims not bound yet are taken to wait for their pod's node, without zone limits; give the controller get on storageclasses (the chart does)`,
        );
      this.toldForbidden = true;
      return FORBIDDEN;
    });
    this.storageClasses.set(name, { at: now, read });
    return read;
  }
}
