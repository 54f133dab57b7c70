// spec.gce of an InstanceClass: which managed instance groups (one per zone of the class's GKE
// node pool) ipp adds VMs to, in order of preference. Pure: validation and the ordered groups.
import type { InstanceClass } from '../../src/api/types.ts';

export interface Mig {
  project: string;
  zone: string;
  name: string;
}

const ZONE = /^[a-z]+-[a-z]+[0-9]+-[a-z]$/;
const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Project ids, including the legacy domain-scoped form (example.com:my-project). */
const PROJECT = /^([a-z0-9.-]+:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$/;

export const migKey = (m: Mig) => `${m.project}/${m.zone}/${m.name}`;
export const migLabel = (m: Mig) => `MIG ${m.zone}/${m.name}`;

/** Problems with spec.gce, as messages naming the field. `defaultProject`: the controller's own. */
export function validateGceSettings(cls: InstanceClass, defaultProject?: string): string[] {
  const gce = cls.spec.gce;
  if (!gce) return ['spec.gce: required for the gce provider'];
  const out: string[] = [];
  if (gce.project !== undefined && !PROJECT.test(gce.project))
    out.push(`spec.gce.project: ${gce.project} is not a project id`);
  if (gce.project === undefined && !defaultProject)
    out.push('spec.gce.project: required (the controller has no default project: set --gce-project)');
  const groups = gce.instanceGroups ?? [];
  if (!groups.length)
    out.push(
      'spec.gce.instanceGroups: list at least one managed instance group ({zone, name}) of the class node pool (gcloud container node-pools describe … --format="value(instanceGroupUrls)")',
    );
  const seen = new Set<string>();
  groups.forEach((g, i) => {
    const at = `spec.gce.instanceGroups[${i}]`;
    if (!ZONE.test(g.zone ?? '')) out.push(`${at}.zone: ${String(g.zone)} is not a zone (e.g. us-central1-a)`);
    if (!NAME.test(g.name ?? '')) out.push(`${at}.name: ${String(g.name)} is not an instance group manager name`);
    const k = `${g.zone}/${g.name}`;
    if (seen.has(k)) out.push(`${at}: ${k} is listed twice`);
    seen.add(k);
  });
  for (const z of cls.spec.zones ?? [])
    if (!groups.some((g) => g.zone === z)) out.push(`spec.zones: ${z} has no group in spec.gce.instanceGroups`);
  return out;
}

/** The class's groups in preference order; spec.zones, when set, keeps only (and orders by) those zones. */
export function migsOf(cls: InstanceClass, defaultProject: string): Mig[] {
  const gce = cls.spec.gce!;
  const project = gce.project ?? defaultProject;
  const groups = gce.instanceGroups.map((g) => ({ project, zone: g.zone, name: g.name }));
  const zones = cls.spec.zones;
  if (!zones?.length) return groups;
  return zones.flatMap((z) => groups.filter((g) => g.zone === z));
}
