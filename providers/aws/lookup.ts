// Reads of EC2 state for the provider: one instance by id, the live instances of some Instances
// (adopting interrupted grouped launches), every live instance of the cluster, a class's subnets.
// Each takes the provider's calls (client, rate limits, retries) as an argument.
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  type EC2Client,
  type Filter,
  type Instance as Ec2Instance,
} from '@aws-sdk/client-ec2';
import type { AwsSettings, InstanceClass } from '../../src/api/types.ts';
import { TAG_CLUSTER, TAG_INSTANCE } from '../../src/api/names.ts';
import type { Logger } from '../../src/log.ts';
import { InvalidConfigError, NotFoundError, NotOwnedError } from '../errors.ts';
import type { CloudInstance } from '../types.ts';
import { groupMember, LIVE_STATES, TAG_LAUNCH_GROUP, toCloudInstance } from './instances.ts';
import type { ApiFamily } from './ratelimit.ts';

/** The provider's way to EC2. */
export interface Ec2Calls {
  ec2: EC2Client;
  clusterName: string;
  log: Logger;
  /** DescribeInstances page size (EC2: 5..1000). */
  pageSize: number;
  /** One call through its family's token bucket, retried on throttling and transient failures. */
  call<T>(family: ApiFamily, what: string, send: () => Promise<T>): Promise<T>;
}

export interface Placement {
  /** Zones of the class's subnets, in the class's order. */
  zones: string[];
  subnetByZone: Map<string, string>;
}

/** The instance, if it exists; NotOwnedError when it is not tagged for this cluster. */
export async function describeById(api: Ec2Calls, instanceId: string): Promise<CloudInstance | undefined> {
  try {
    const r = await api.call('describe', `DescribeInstances ${instanceId}`, () =>
      api.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
    );
    const i = r.Reservations?.flatMap((x) => x.Instances ?? [])[0];
    if (!i) return undefined;
    const ci = toCloudInstance(i);
    if (ci.tags[TAG_CLUSTER] !== api.clusterName) {
      throw new NotOwnedError(
        `EC2 instance ${instanceId} is not tagged ${TAG_CLUSTER}=${api.clusterName}; ipp leaves it alone ` +
          `(if this cluster's instances carry another name, --cluster-name was changed: set it back)`,
      );
    }
    return ci;
  } catch (e) {
    if (e instanceof NotFoundError && /InvalidInstanceID/.test(e.message)) return undefined;
    throw e;
  }
}

/**
 * Every live instance tagged for this cluster; with `instance`, only those launched for that Instance.
 * Those are found by the launch group every launch is tagged with, not by the Instance tag: a member
 * of a grouped launch has no Instance tag until the launch tags it, and a controller killed in between
 * leaves it without one, yet a teardown must still find it.
 */
export async function listCluster(api: Ec2Calls, instance?: string): Promise<CloudInstance[]> {
  const out: CloudInstance[] = [];
  let NextToken: string | undefined;
  const what = instance
    ? `DescribeInstances of Instance ${instance}`
    : `DescribeInstances of cluster ${api.clusterName}`;
  do {
    const page = await api.call('describe', what, () =>
      api.ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: `tag:${TAG_CLUSTER}`, Values: [api.clusterName] },
            ...(instance ? [{ Name: `tag:${TAG_LAUNCH_GROUP}`, Values: [`*/${instance}/*`] }] : []),
            { Name: 'instance-state-name', Values: LIVE_STATES },
          ],
          MaxResults: api.pageSize,
          NextToken,
        }),
      ),
    );
    for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) out.push(toCloudInstance(i));
    NextToken = page.NextToken;
  } while (NextToken);
  // A group's tag names all its members: keep the one launched for this Instance (toCloudInstance
  // names an untagged member after its place in the group).
  return instance ? out.filter((c) => c.tags[TAG_INSTANCE] === instance) : out;
}

export async function tagInstance(api: Ec2Calls, instanceId: string, name: string): Promise<void> {
  await api.call('tags', `CreateTags ${instanceId} for Instance ${name}`, () =>
    api.ec2.send(
      new CreateTagsCommand({
        Resources: [instanceId],
        Tags: [
          { Key: TAG_INSTANCE, Value: name },
          { Key: 'Name', Value: name },
        ],
      }),
    ),
  );
}

/**
 * Live instances of this cluster launched for `names`, one DescribeInstances for all of them (raw
 * EC2 errors escape: the caller's coalescer retries). A grouped launch whose per-instance tags were
 * never written (controller killed in between) is adopted here: launch index k of the group belongs
 * to its k-th member, whose boot script already registers it with that Instance's label.
 */
export async function findOwned(api: Ec2Calls, names: string[]): Promise<{ instance?: CloudInstance }[]> {
  const filters: Filter[] = [
    { Name: `tag:${TAG_CLUSTER}`, Values: [api.clusterName] },
    { Name: `tag:${TAG_LAUNCH_GROUP}`, Values: names.map((n) => `*/${n}/*`) },
    { Name: 'instance-state-name', Values: LIVE_STATES },
  ];
  const owned = new Map<string, Ec2Instance[]>();
  let NextToken: string | undefined;
  do {
    const page = await api.ec2.send(
      new DescribeInstancesCommand({ Filters: filters, MaxResults: api.pageSize, NextToken }),
    );
    for (const i of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key, t.Value]));
      const owner = tags[TAG_INSTANCE] ?? groupMember(tags[TAG_LAUNCH_GROUP], i.AmiLaunchIndex ?? 0);
      if (owner && names.includes(owner)) owned.set(owner, [...(owned.get(owner) ?? []), i]);
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return Promise.all(
    names.map(async (name) => {
      const candidates = (owned.get(name) ?? []).sort(
        (a, b) => (a.LaunchTime?.getTime() ?? 0) - (b.LaunchTime?.getTime() ?? 0),
      );
      const first = candidates[0];
      if (!first) return {};
      if (candidates.length > 1) {
        api.log.warn(
          { instance: name, ids: candidates.map((c) => c.InstanceId) },
          'several live EC2 instances for one Instance; using the oldest, garbage collection terminates the rest',
        );
      }
      const ci = toCloudInstance(first);
      // The tag as EC2 has it (toCloudInstance fills in a member's name from its launch group).
      if (!first.Tags?.some((t) => t.Key === TAG_INSTANCE && t.Value === name)) {
        await tagInstance(api, first.InstanceId!, name);
        ci.tags[TAG_INSTANCE] = name;
        ci.tags.Name = name;
        api.log.info(
          { instance: name, providerID: ci.providerID },
          'adopted an instance of an interrupted grouped launch',
        );
      }
      return { instance: ci };
    }),
  );
}

/** The class's subnets by zone, in the class's order of ids (tag matches: most free addresses first). */
export async function describePlacement(
  api: Ec2Calls,
  cls: InstanceClass,
  subnets: NonNullable<AwsSettings['subnets']>,
): Promise<Placement> {
  const r = await api.call('describe', `DescribeSubnets for InstanceClass ${cls.metadata.name}`, () =>
    api.ec2.send(
      new DescribeSubnetsCommand(
        subnets.ids?.length
          ? { SubnetIds: subnets.ids }
          : { Filters: Object.entries(subnets.tags ?? {}).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })) },
      ),
    ),
  );
  const found = r.Subnets ?? [];
  if (!found.length)
    throw new InvalidConfigError(`InstanceClass ${cls.metadata.name}: spec.aws.subnets matches no subnet`);
  const ordered = subnets.ids?.length
    ? subnets.ids.map((id) => found.find((s) => s.SubnetId === id)).filter((s) => s !== undefined)
    : [...found].sort((a, b) => (b.AvailableIpAddressCount ?? 0) - (a.AvailableIpAddressCount ?? 0));
  const subnetByZone = new Map<string, string>();
  for (const s of ordered)
    if (s.AvailabilityZone && s.SubnetId && !subnetByZone.has(s.AvailabilityZone))
      subnetByZone.set(s.AvailabilityZone, s.SubnetId);
  return { zones: [...subnetByZone.keys()], subnetByZone };
}
