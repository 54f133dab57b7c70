// Which zones a pod can run in, as far as its own node affinity and its volumes say. kube-scheduler
// refuses a node whose zone label a bound PersistentVolume's nodeAffinity (or the pod's own required
// affinity) excludes, and a volume not provisioned yet can only be made where its StorageClass's
// allowedTopologies admit; a pin cannot be undone: so the instance must be launched in an allowed zone.
import type { V1NodeSelectorTerm, V1PersistentVolume, V1Pod, V1StorageClass } from '@kubernetes/client-node';
import type { InstanceClass } from './types.ts';

/**
 * Node labels that name a zone: the well-known one, its deprecated beta form, and the ones the EBS
 * and GCE PD CSI drivers put into the PersistentVolumes they provision.
 */
export const ZONE_KEYS: readonly string[] = [
  'topology.kubernetes.io/zone',
  'failure-domain.beta.kubernetes.io/zone',
  'topology.ebs.csi.aws.com/zone',
  'topology.gke.io/zone',
];

/** One node selector term, as far as zones go: `in` undefined admits every zone not in `notIn`. */
export interface ZoneTerm {
  in?: readonly string[];
  notIn: readonly string[];
}

/** What one source (the pod's affinity, one volume) requires: a zone some term admits (terms are ORed). */
export interface ZoneRequirement {
  /** Names the source for people: `PersistentVolume pv-1 (claim data)`, `the pod's node affinity`. */
  source: string;
  terms: readonly ZoneTerm[];
}

const intersect = (a: readonly string[] | undefined, b: readonly string[]) =>
  a === undefined ? [...b] : a.filter((z) => b.includes(z));

/**
 * The zone part of required node selector terms, or undefined when they leave the zone open: a term
 * with no zone expression admits any zone, and terms are ORed. Gt/Lt never apply to zone names.
 */
export function zoneTerms(terms: readonly V1NodeSelectorTerm[] | undefined): ZoneTerm[] | undefined {
  if (!terms?.length) return undefined;
  const out: ZoneTerm[] = [];
  for (const t of terms) {
    let allowed: string[] | undefined;
    const notIn: string[] = [];
    let constrained = false;
    for (const e of t.matchExpressions ?? []) {
      if (!ZONE_KEYS.includes(e.key)) continue;
      if (e.operator === 'In') allowed = intersect(allowed, e.values ?? []);
      else if (e.operator === 'NotIn') notIn.push(...(e.values ?? []));
      // No node of ours lacks its zone label: such a term admits no ipp node at all.
      else if (e.operator === 'DoesNotExist') allowed = [];
      else continue;
      constrained = true;
    }
    if (!constrained) return undefined;
    out.push({ ...(allowed ? { in: allowed } : {}), notIn });
  }
  return out;
}

/** The pod's own required zone: its nodeSelector on a zone label, and its required node affinity. */
export function podZoneRequirements(pod: V1Pod): ZoneRequirement[] {
  const out: ZoneRequirement[] = [];
  const selector = Object.entries(pod.spec?.nodeSelector ?? {}).filter(([k]) => ZONE_KEYS.includes(k));
  if (selector.length) {
    const values = [...new Set(selector.map(([, v]) => v))];
    out.push({ source: "the pod's nodeSelector", terms: [{ in: values.length === 1 ? values : [], notIn: [] }] });
  }
  const terms = zoneTerms(
    pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms,
  );
  if (terms) out.push({ source: "the pod's required node affinity", terms });
  return out;
}

/** What a bound PersistentVolume requires, or undefined when its nodeAffinity leaves the zone open. */
export function volumeZoneRequirement(pv: V1PersistentVolume, claim: string): ZoneRequirement | undefined {
  const terms = zoneTerms(pv.spec?.nodeAffinity?.required?.nodeSelectorTerms);
  return terms ? { source: `PersistentVolume ${pv.metadata?.name} (claim ${claim})`, terms } : undefined;
}

/**
 * What a claim not bound yet requires through its StorageClass: the provisioner creates the volume
 * only in a zone `allowedTopologies` admits (terms ORed, expressions within a term ANDed), and the
 * pod must then run there; undefined when the class leaves the zone open.
 */
export function storageClassZoneRequirement(sc: V1StorageClass, claim: string): ZoneRequirement | undefined {
  const terms: V1NodeSelectorTerm[] = (sc.allowedTopologies ?? []).map((t) => ({
    matchExpressions: (t.matchLabelExpressions ?? []).map((e) => ({ key: e.key, operator: 'In', values: e.values })),
  }));
  const zones = zoneTerms(terms);
  return zones ? { source: `StorageClass ${sc.metadata?.name} (claim ${claim})`, terms: zones } : undefined;
}

/**
 * The PersistentVolumeClaims a pod mounts, by name: its own claims, and the one the ephemeral-volume
 * controller makes for each generic ephemeral volume (`<pod>-<volume>`).
 */
export function claimsOf(pod: V1Pod): string[] {
  return (pod.spec?.volumes ?? []).flatMap((v) =>
    v.persistentVolumeClaim
      ? [v.persistentVolumeClaim.claimName]
      : v.ephemeral
        ? [`${pod.metadata?.name}-${v.name}`]
        : [],
  );
}

const admits = (r: ZoneRequirement, zone: string) =>
  r.terms.some((t) => (!t.in || t.in.includes(zone)) && !t.notIn.includes(zone));

/**
 * The zones a class launches in when it names them (spec.zones, else the zones of its GCE instance
 * groups), or undefined when the provider chooses (AWS subnets, the simulated cloud's zones).
 */
export function classZones(cls: InstanceClass): string[] | undefined {
  if (cls.spec.zones?.length) return [...cls.spec.zones];
  const groups = cls.spec.gce?.instanceGroups;
  if (groups?.length) return [...new Set(groups.map((g) => g.zone))];
  return undefined;
}

/** Where a pod may be launched: `zones` (in the class's order), and why, for messages. */
export interface PodZones {
  /** Non-empty: launch only there. Empty: nowhere the class launches. */
  zones: string[];
  /** The requirements in words: `PersistentVolume pv-1 (claim data) needs zone b`. */
  why: string;
}

const describe = (r: ZoneRequirement) => {
  const parts = r.terms.map((t) =>
    [
      t.in ? (t.in.length ? `${t.in.join(' or ')}` : 'no zone') : undefined,
      t.notIn.length ? `not ${t.notIn.join(', ')}` : undefined,
    ]
      .filter(Boolean)
      .join(', '),
  );
  return `${r.source} needs zone ${parts.join('; or ')}`;
};

/**
 * The zones a pod may be launched in, given what it requires and the class's zones; undefined when
 * nothing constrains it. A class that leaves zones to the provider is narrowed to the zones the
 * requirements name (a requirement that only excludes zones cannot be enumerated there, and is left
 * to kube-scheduler).
 */
export function allowedZones(
  requirements: readonly ZoneRequirement[],
  offered: readonly string[] | undefined,
): PodZones | undefined {
  if (!requirements.length) return undefined;
  const named = [...new Set(requirements.flatMap((r) => r.terms.flatMap((t) => t.in ?? [])))];
  const candidates = offered ?? named;
  if (!offered && !requirements.some((r) => r.terms.every((t) => t.in))) return undefined;
  return {
    zones: candidates.filter((z) => requirements.every((r) => admits(r, z))),
    why: requirements.map(describe).join('; '),
  };
}

/**
 * May a pod with these allowed zones run on this instance? Launched: its zone must be allowed. Not
 * launched yet: every zone it may still be launched in must be (the launch picks among them).
 */
export function zonesCompatible(
  allowed: readonly string[] | undefined,
  instance: { launchedIn?: string; mayLaunchIn?: readonly string[] },
): boolean {
  if (!allowed) return true;
  if (instance.launchedIn) return allowed.includes(instance.launchedIn);
  return !!instance.mayLaunchIn?.length && instance.mayLaunchIn.every((z) => allowed.includes(z));
}
