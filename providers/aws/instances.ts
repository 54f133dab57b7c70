// EC2 instances as ipp sees them: providerIDs, states, tags, and the launch-group tag that lets one
// RunInstances serve several Instances. Pure conversions, no calls.
import type { Instance as Ec2Instance, Tag } from '@aws-sdk/client-ec2';
import { NotFoundError } from '../errors.ts';
import { TAG_INSTANCE } from '../../src/api/names.ts';
import type { CloudInstance, CloudState } from '../types.ts';
import { obtainedIsolation } from './isolation.ts';

/** Lists, in launch-index order, the Instances one RunInstances launched: `/a/b/c/`. */
export const TAG_LAUNCH_GROUP = 'ipp.dev/launch-group';
/** EC2 tag values are at most 256 characters: the launch group of one call must fit. */
export const MAX_TAG_VALUE = 256;
export const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

export function providerIdOf(zone: string, instanceId: string): string {
  return `aws:///${zone}/${instanceId}`;
}

export function parseProviderId(providerID: string): { zone: string; instanceId: string } {
  const m = /^aws:\/\/\/([^/]*)\/(i-[0-9a-f]+)$/.exec(providerID);
  if (!m) throw new NotFoundError(`providerID ${providerID} is not an EC2 instance (expected aws:///<zone>/i-…)`);
  return { zone: m[1]!, instanceId: m[2]! };
}

const STATES: Record<string, CloudState> = {
  pending: 'pending',
  running: 'running',
  stopping: 'stopping',
  stopped: 'stopping',
  'shutting-down': 'terminating',
  terminated: 'terminated',
};

export function toCloudInstance(i: Ec2Instance): CloudInstance {
  const zone = i.Placement?.AvailabilityZone ?? '';
  const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  // A member of a grouped launch gets its ipp.dev/instance tag only after the launch (CreateTags);
  // until then its launch group names it by launch index. Read so, an instance whose tagging a
  // restart interrupted still has an owner, and garbage collection does not take it for a leak.
  const member = tags[TAG_INSTANCE] ? undefined : groupMember(tags[TAG_LAUNCH_GROUP], i.AmiLaunchIndex ?? 0);
  if (member) tags[TAG_INSTANCE] = member;
  return {
    providerID: providerIdOf(zone, i.InstanceId ?? ''),
    instanceType: i.InstanceType ?? '',
    zone,
    state: STATES[i.State?.Name ?? ''] ?? 'pending',
    tags,
    launchedAt: i.LaunchTime ?? new Date(0),
    // As EC2 describes it; a fresh launch replaces this with what its accepted request asked for.
    hostIsolation: obtainedIsolation(i.InstanceType ?? '', i),
  };
}

export const toTags = (tags: Record<string, string>): Tag[] =>
  Object.keys(tags)
    .sort()
    .map((Key) => ({ Key, Value: tags[Key] }));

/** The Instance at launch index `index` of a launch group tag value, if any. */
export function groupMember(group: string | undefined, index: number): string | undefined {
  return group?.split('/').filter(Boolean)[index];
}

export function launchGroupValue(names: string[]): string {
  return `/${names.join('/')}/`;
}
