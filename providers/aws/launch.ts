// RunInstances parameters, as pure functions of the launch requests: what one call for one or
// several Instances sends, which launches may share a call, and the ClientToken that makes each
// call idempotent. No I/O here; provider.ts sends what these build.
import type { RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import type { AwsSettings } from '../../src/api/types.ts';
import { NODE_INSTANCE_LABEL, TAG_CLASS, TAG_CLUSTER, TAG_INSTANCE } from '../../src/api/names.ts';
import type { Offering } from '../offerings.ts';
import type { LaunchRequest, NodeIdentity } from '../types.ts';
import {
  customUserData,
  customUserDataIsPerInstance,
  groupUserData,
  instanceUserData,
  type EksCluster,
} from './bootstrap.ts';
import { launchGroupValue, MAX_TAG_VALUE, TAG_LAUNCH_GROUP, toTags } from './instances.ts';
import { isolationInput, type CpuFacts } from './isolation.ts';
import { batchClientToken, clientToken, paramsDigest } from './token.ts';

/** One Instance waiting to be launched on one offering. */
export interface Member {
  req: LaunchRequest;
  offering: Offering;
  subnetId: string | undefined;
  /** The offering's instance type as DescribeInstanceTypes has it; only when the class's isolation needs it. */
  cpu?: CpuFacts | undefined;
}

/** What the launch parameters depend on besides the requests. */
export interface LaunchContext {
  /** Value of the ipp.dev/cluster tag. */
  clusterName: string;
  eks: EksCluster;
  /** Most Instances one RunInstances may launch. */
  maxGroupSize: number;
}

/** What differs between the launches of one class only by Instance: everything else must match to share a RunInstances. */
export function sharedIdentity(node: NodeIdentity): NodeIdentity {
  const labels = { ...node.labels };
  delete labels[NODE_INSTANCE_LABEL];
  return { labels, taints: node.taints };
}

/** Is the class's custom user data the same for every Instance (so that launches can share it)? */
function userDataIsShared(aws: AwsSettings): boolean {
  return aws.userData !== undefined && !customUserDataIsPerInstance(aws.userData);
}

/** Launch parameters shared by every member of a group (everything but per-Instance tags and user data). */
export function baseInput(m: Member): RunInstancesCommandInput {
  const aws = m.req.class.spec.aws!;
  const lt = aws.launchTemplate;
  const input: RunInstancesCommandInput = {
    MinCount: 1,
    MaxCount: 1,
    InstanceType: m.offering.instanceType as RunInstancesCommandInput['InstanceType'],
    MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
  };
  if (lt)
    input.LaunchTemplate = {
      ...(lt.id ? { LaunchTemplateId: lt.id } : { LaunchTemplateName: lt.name }),
      Version: lt.version ?? '$Default',
    };
  if (aws.ami?.id) input.ImageId = aws.ami.id;
  // EC2 resolves the parameter at launch (needs ssm:GetParameters): no SSM client, no stale cache.
  else if (aws.ami?.ssmParameter) input.ImageId = `resolve:ssm:${aws.ami.ssmParameter}`;
  if (m.subnetId) input.SubnetId = m.subnetId;
  else if (m.offering.zone) input.Placement = { AvailabilityZone: m.offering.zone };
  const isolation = isolationInput(m.req.class, m.offering.instanceType, m.cpu);
  if (isolation.tenancy) input.Placement = { ...input.Placement, Tenancy: isolation.tenancy };
  if (isolation.cpuOptions) input.CpuOptions = isolation.cpuOptions;
  if (aws.securityGroupIds?.length) input.SecurityGroupIds = aws.securityGroupIds;
  if (aws.instanceProfile)
    input.IamInstanceProfile = aws.instanceProfile.startsWith('arn:')
      ? { Arn: aws.instanceProfile }
      : { Name: aws.instanceProfile };
  if (aws.capacityType === 'spot')
    input.InstanceMarketOptions = {
      MarketType: 'spot',
      SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' },
    };
  if (aws.rootVolume) {
    input.BlockDeviceMappings = [
      {
        DeviceName: '/dev/xvda',
        Ebs: {
          DeleteOnTermination: true,
          ...(aws.rootVolume.sizeGiB ? { VolumeSize: aws.rootVolume.sizeGiB } : {}),
          ...(aws.rootVolume.type ? { VolumeType: aws.rootVolume.type as 'gp3' } : {}),
        },
      },
    ];
  }
  return input;
}

/** Tags every member of a launch shares; the per-Instance ones (ipp.dev/instance, Name) are not among them. */
export function sharedTags(ctx: LaunchContext, req: LaunchRequest): Record<string, string> {
  const tags: Record<string, string> = {
    ...req.class.spec.aws?.tags,
    ...req.tags,
    [TAG_CLUSTER]: ctx.clusterName,
    [TAG_CLASS]: req.class.metadata.name ?? '',
    [`kubernetes.io/cluster/${ctx.eks.clusterName}`]: 'owned',
  };
  delete tags[TAG_INSTANCE];
  delete tags.Name;
  return tags;
}

/** Members with equal keys can share one RunInstances; a key per Instance when they cannot. */
export function groupKey(ctx: LaunchContext, m: Member): string {
  const aws = m.req.class.spec.aws!;
  const shareable = ctx.maxGroupSize > 1 && (aws.userData === undefined || userDataIsShared(aws));
  return paramsDigest({
    input: baseInput(m),
    tags: sharedTags(ctx, m.req),
    node: sharedIdentity(m.req.node),
    userData: aws.userData ?? null,
    solo: shareable ? null : m.req.instance.uid,
  });
}

/** How many of the waiting members the next call takes: at most maxGroupSize, and a launch group tag that fits. */
export function groupSize(ctx: LaunchContext, waiting: Member[]): number {
  let n = 0;
  let length = 1;
  for (const m of waiting) {
    length += m.req.instance.name.length + 1;
    if (n >= ctx.maxGroupSize || (n > 0 && length > MAX_TAG_VALUE)) break;
    n++;
  }
  return n;
}

export function describeMembers(members: Member[]): string {
  const o = members[0]!.offering;
  return `${o.instanceType}${o.zone ? ` in ${o.zone}` : ''} for Instance${members.length > 1 ? 's' : ''} ${members.map((m) => m.req.instance.name).join(', ')}`;
}

/** The launch input of `members` (one or several) and the token that makes it idempotent. */
export function launchInput(ctx: LaunchContext, members: Member[], tokenAttempt = 0): RunInstancesCommandInput {
  const first = members[0]!;
  const aws = first.req.class.spec.aws!;
  const input = baseInput(first);
  const shared = sharedTags(ctx, first.req);
  const names = members.map((m) => m.req.instance.name);
  let userData: string;
  let instanceTags: Record<string, string>;
  if (members.length === 1) {
    userData =
      aws.userData !== undefined
        ? customUserData(aws.userData, first.req.node)
        : instanceUserData(ctx.eks, first.req.node);
    instanceTags = {
      ...shared,
      [TAG_INSTANCE]: first.req.instance.name,
      Name: first.req.instance.name,
      [TAG_LAUNCH_GROUP]: launchGroupValue(names),
    };
  } else {
    userData =
      aws.userData !== undefined
        ? customUserData(aws.userData, sharedIdentity(first.req.node))
        : groupUserData(
            ctx.eks,
            sharedIdentity(first.req.node),
            members.map((m) => ({
              [NODE_INSTANCE_LABEL]: m.req.node.labels[NODE_INSTANCE_LABEL] ?? m.req.instance.name,
            })),
          );
    instanceTags = { ...shared, [TAG_LAUNCH_GROUP]: launchGroupValue(names) };
  }
  input.MaxCount = members.length;
  input.UserData = Buffer.from(userData).toString('base64');
  input.TagSpecifications = [
    { ResourceType: 'instance', Tags: toTags(instanceTags) },
    { ResourceType: 'volume', Tags: toTags(shared) },
  ];
  const digest = paramsDigest({ ...input, ClientToken: undefined });
  input.ClientToken =
    members.length === 1
      ? clientToken(first.req.instance.uid, first.offering, digest, tokenAttempt)
      : batchClientToken(
          members.map((m) => m.req.instance.uid),
          first.offering,
          digest,
          tokenAttempt,
        );
  return input;
}
