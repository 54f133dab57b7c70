// Names the GCE provider derives instead of remembering: the VM name and the requestId come from
// the Instance's UID, so a retry, a restart or the other replica asks GCE for the very same thing,
// and GCE (one name per zone, one operation per requestId) refuses to make a second one.
import { createHash } from 'node:crypto';
import { TAG_CLASS, TAG_CLUSTER, TAG_INSTANCE } from '../../src/api/names.ts';
import { NotFoundError } from '../errors.ts';

/** GCE label keys allow no dots or slashes: the DESIGN tags ipp.dev/x become ipp-dev-x. */
export const LABEL_CLUSTER = 'ipp-dev-cluster';
export const LABEL_CLASS = 'ipp-dev-class';
export const LABEL_INSTANCE = 'ipp-dev-instance';

const LABEL_TO_TAG: Record<string, string> = {
  [LABEL_CLUSTER]: TAG_CLUSTER,
  [LABEL_CLASS]: TAG_CLASS,
  [LABEL_INSTANCE]: TAG_INSTANCE,
};

/** GCE labels as the provider-neutral tags controllers read (ipp-dev-instance → ipp.dev/instance). */
export function tagsOfLabels(labels: Record<string, string> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) out[LABEL_TO_TAG[k] ?? k] = v;
  return out;
}

/**
 * GCE label values: at most 63 of lowercase letters, digits, _ and -. Kubernetes object names fit
 * as they are (lowercase DNS names, ≤ 63 for these); longer ones are cut and keep a hash.
 */
export function labelValue(value: string): string {
  const clean = value.toLowerCase().replace(/[^a-z0-9_-]/g, '-');
  if (clean.length <= 63) return clean;
  return `${clean.slice(0, 50)}-${hex(value, 12)}`;
}

const hex = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

const INSTANCE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const VM_NAME = /^ipp-([a-z0-9]([-a-z0-9]*[a-z0-9])?)-([0-9a-f]{8})$/;

/**
 * The VM name of an Instance: `ipp-<Instance name>-<hash of its UID>` (RFC 1035, ≤ 63). Derived
 * from the UID, so a retry or a restart asks for the same name, and a recreated Instance of the
 * same name gets another. It carries the Instance's name from the moment the VM exists (labels can
 * only be added afterwards), so garbage collection knows whose it is even if the controller died
 * before labelling it; it is also the GKE node name, readable in `kubectl get nodes`.
 * Instance names that do not fit (> 50 characters) get `ipp-x-<hash>`, owned by label only.
 */
export function vmName(instanceUid: string, instanceName: string): string {
  if (instanceName.length <= 50 && INSTANCE_NAME.test(instanceName))
    return `ipp-${instanceName}-${hex(instanceUid, 8)}`;
  return `ipp-x-${hex(instanceUid, 16)}`;
}

/** The Instance a VM was made for, from its name (see vmName); undefined when the name does not say. */
export function instanceOfVmName(name: string): string | undefined {
  return VM_NAME.exec(name)?.[1];
}

/**
 * A requestId for one call: a UUID (GCE accepts only UUIDs, not the zero one) derived from what
 * the call is about. `attempt` moves to a fresh id once GCE has answered an id with a finished
 * operation that cannot be reused (a failed create), since GCE replays that answer for the same id.
 */
export function requestId(about: string[], attempt = 0): string {
  const h = createHash('sha256')
    .update(`${about.join('\n')}\n#${attempt}`)
    .digest();
  h[6] = (h[6]! & 0x0f) | 0x50; // version 5 (name-based, SHA)
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export function providerIdOf(project: string, zone: string, name: string): string {
  return `gce://${project}/${zone}/${name}`;
}

export function parseProviderId(providerID: string): { project: string; zone: string; name: string } {
  const m = /^gce:\/\/([^/]+)\/([^/]+)\/([a-z]([-a-z0-9]*[a-z0-9])?)$/.exec(providerID);
  if (!m) throw new NotFoundError(`providerID ${providerID} is not a GCE VM (expected gce://<project>/<zone>/<name>)`);
  return { project: m[1]!, zone: m[2]!, name: m[3]! };
}

/** Last path segment of a GCE URL or partial URL (zones/us-central1-a → us-central1-a). */
export const lastSegment = (url: string | null | undefined): string => (url ?? '').split('/').pop() ?? '';

/** The managed instance group a VM belongs to, from the `created-by` metadata GCE sets on MIG members. */
export function createdBy(
  metadata: { items?: { key?: string | null; value?: string | null }[] | null } | null | undefined,
): { project: string; zone: string; name: string } | undefined {
  const url = metadata?.items?.find((i) => i.key === 'created-by')?.value ?? '';
  const m = /projects\/([^/]+)\/zones\/([^/]+)\/instanceGroupManagers\/([^/]+)$/.exec(url);
  return m ? { project: m[1]!, zone: m[2]!, name: m[3]! } : undefined;
}
