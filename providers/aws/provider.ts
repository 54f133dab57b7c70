// The AWS provider: dedicated EC2 instances that join an EKS cluster by themselves.
//
// create() is idempotent three ways: (1) a live instance already tagged for the Instance (or, for
// grouped launches, listed for it in ipp.dev/launch-group) is returned; (2) RunInstances carries a
// ClientToken derived from the Instance UID, the offering and the parameters, so a retry after a lost
// response gets the same instance; (3) every call is retried only through the same token.
// Credentials come from the SDK's default chain (IRSA, EKS Pod Identity, instance profile) unless a
// test passes static ones.
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Filter,
  type Instance as Ec2Instance,
  type RunInstancesCommandInput,
  type Tag,
} from '@aws-sdk/client-ec2';
import type { AwsSettings, InstanceClass } from '../../src/api/types.ts';
import { NODE_INSTANCE_LABEL, TAG_CLASS, TAG_CLUSTER, TAG_INSTANCE } from '../../src/api/names.ts';
import type { Logger } from '../../src/log.ts';
import { InsufficientCapacityError, InvalidConfigError, NotFoundError } from '../errors.ts';
import { launchFirstAvailable, offerings, UnavailableOfferings, type Offering } from '../offerings.ts';
import type { CloudInstance, CloudProvider, CloudState, LaunchRequest, NodeIdentity, Resources } from '../types.ts';
import { Coalescer } from './batch.ts';
import {
  customUserData,
  customUserDataIsPerInstance,
  groupUserData,
  instanceUserData,
  MAX_USER_DATA_BYTES,
  type EksCluster,
} from './bootstrap.ts';
import { allocatable } from './capacity.ts';
import { classify, toProviderError } from './errors.ts';
import { RateLimits, realClock, type ApiFamily, type BucketShape, type Clock } from './ratelimit.ts';
import { batchClientToken, clientToken, paramsDigest } from './token.ts';

/** Lists, in launch-index order, the Instances one RunInstances launched: `/a/b/c/`. */
export const TAG_LAUNCH_GROUP = 'ipp.dev/launch-group';
/** EC2 tag values are at most 256 characters: the launch group of one call must fit. */
const MAX_TAG_VALUE = 256;
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

export interface AwsProviderOptions {
  /** Value of the ipp.dev/cluster tag: which instances this controller owns. */
  clusterName: string;
  region: string;
  /** Tests only (moto); production uses the Region's public endpoint. */
  endpoint?: string;
  /** Tests only. Production: the SDK's default chain (IRSA, EKS Pod Identity, instance profile). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  eks: EksCluster;
  logger: Logger;
  clock?: Clock;
  /** Client-side token buckets per API family; default EC2's published buckets. */
  rates?: Partial<Record<ApiFamily, BucketShape>>;
  /** Most Instances one RunInstances may launch (identical launches only); 1 launches each alone. Default 20. */
  maxGroupSize?: number;
  /** Attempts per call for throttling and transient failures (exponential backoff with full jitter). */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
  /** How long an offering that had no capacity is skipped. Default 3 minutes. */
  unavailableTtlMs?: number;
  /** DescribeInstances page size (EC2: 5..1000). Default 500. */
  pageSize?: number;
}

interface Member {
  req: LaunchRequest;
  offering: Offering;
  subnetId: string | undefined;
}

interface Placement {
  /** Zones of the class's subnets, in the class's order. */
  zones: string[];
  subnetByZone: Map<string, string>;
}

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
  return {
    providerID: providerIdOf(zone, i.InstanceId ?? ''),
    instanceType: i.InstanceType ?? '',
    zone,
    state: STATES[i.State?.Name ?? ''] ?? 'pending',
    tags: Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
    launchedAt: i.LaunchTime ?? new Date(0),
  };
}

const toTags = (tags: Record<string, string>): Tag[] =>
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

/** Problems with spec.aws, as messages naming the field. */
export function validateAwsSettings(cls: InstanceClass): string[] {
  const aws = cls.spec.aws;
  if (!aws) return ['spec.aws: required for the aws provider'];
  const out: string[] = [];
  if (!aws.launchTemplate && !aws.ami)
    out.push(
      'spec.aws: set launchTemplate or ami (e.g. ami.ssmParameter: /aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id)',
    );
  if (aws.launchTemplate && !!aws.launchTemplate.name === !!aws.launchTemplate.id)
    out.push('spec.aws.launchTemplate: set exactly one of name or id');
  if (aws.launchTemplate?.id && !/^lt-[0-9a-f]+$/.test(aws.launchTemplate.id))
    out.push(`spec.aws.launchTemplate.id: ${aws.launchTemplate.id} is not a launch template id (lt-…)`);
  if (aws.ami && !!aws.ami.id === !!aws.ami.ssmParameter)
    out.push('spec.aws.ami: set exactly one of id or ssmParameter');
  if (aws.ami?.id && !/^ami-[0-9a-f]+$/.test(aws.ami.id))
    out.push(`spec.aws.ami.id: ${aws.ami.id} is not an AMI id (ami-…)`);
  if (aws.ami?.ssmParameter && !aws.ami.ssmParameter.startsWith('/'))
    out.push(`spec.aws.ami.ssmParameter: ${aws.ami.ssmParameter} must be a parameter path starting with /`);
  if (aws.subnets && !aws.subnets.ids?.length && !Object.keys(aws.subnets.tags ?? {}).length)
    out.push('spec.aws.subnets: set ids or tags');
  for (const id of aws.subnets?.ids ?? [])
    if (!/^subnet-[0-9a-f]+$/.test(id)) out.push(`spec.aws.subnets.ids: ${id} is not a subnet id (subnet-…)`);
  for (const id of aws.securityGroupIds ?? [])
    if (!/^sg-[0-9a-f]+$/.test(id)) out.push(`spec.aws.securityGroupIds: ${id} is not a security group id (sg-…)`);
  if (aws.capacityType && aws.capacityType !== 'on-demand' && aws.capacityType !== 'spot')
    out.push(`spec.aws.capacityType: ${String(aws.capacityType)} is neither on-demand nor spot`);
  for (const k of Object.keys(aws.tags ?? {})) {
    if (k.startsWith('ipp.dev/') || k.startsWith('kubernetes.io/cluster/') || k.startsWith('aws:'))
      out.push(`spec.aws.tags: ${k} is reserved (ipp and AWS own ipp.dev/*, kubernetes.io/cluster/*, aws:*)`);
  }
  if (aws.userData !== undefined && Buffer.byteLength(aws.userData) > MAX_USER_DATA_BYTES)
    out.push(`spec.aws.userData: ${Buffer.byteLength(aws.userData)} bytes; EC2 accepts at most ${MAX_USER_DATA_BYTES}`);
  if (aws.rootVolume?.sizeGiB !== undefined && !(aws.rootVolume.sizeGiB >= 1))
    out.push('spec.aws.rootVolume.sizeGiB: must be at least 1');
  return out;
}

/** What differs between the launches of one class only by Instance: everything else must match to share a RunInstances. */
function sharedIdentity(node: NodeIdentity): NodeIdentity {
  const labels = { ...node.labels };
  delete labels[NODE_INSTANCE_LABEL];
  return { labels, taints: node.taints };
}

export class AwsProvider implements CloudProvider {
  readonly name = 'aws';
  private readonly opts: AwsProviderOptions;
  private readonly ec2: EC2Client;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly limits: RateLimits;
  private readonly unavailable: UnavailableOfferings;
  private readonly maxGroupSize: number;
  private readonly placements = new Map<string, { at: number; placement: Promise<Placement> }>();
  private readonly launches: Coalescer<Member, CloudInstance>;
  private readonly lookups: Coalescer<string, { instance?: CloudInstance }>;

  constructor(opts: AwsProviderOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger.child({ provider: 'aws', cluster: opts.clusterName });
    this.limits = new RateLimits(opts.rates, this.clock);
    this.unavailable = new UnavailableOfferings(opts.unavailableTtlMs, () => this.clock.now());
    this.maxGroupSize = Math.max(1, opts.maxGroupSize ?? 20);
    this.ec2 = new EC2Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      // Retries are ours, each through the API family's token bucket (see call()).
      maxAttempts: 1,
    });
    this.launches = new Coalescer<Member, CloudInstance>({
      gate: (fn) => this.limits.schedule('run', fn),
      take: (waiting) => this.groupSize(waiting),
      serve: (members) => this.runInstances(members),
      retry: (members, e) =>
        this.retryAfter(
          e,
          `RunInstances for ${this.describeMembers(members)}`,
          () => this.limits.schedule('run', () => this.runInstances(members)),
          members[0]?.offering,
        ),
    });
    this.lookups = new Coalescer<string, { instance?: CloudInstance }>({
      gate: (fn) => this.limits.schedule('describe', fn),
      take: () => 50,
      serve: (names) => this.findOwned(names),
      retry: (names, e) =>
        this.retryAfter(e, `DescribeInstances for Instances ${names.join(', ')}`, () =>
          this.limits.schedule('describe', () => this.findOwned(names)),
        ),
    });
  }

  validate(cls: InstanceClass): string[] {
    return validateAwsSettings(cls);
  }

  capacity(instanceType: string): Resources | undefined {
    return allocatable(instanceType);
  }

  async create(req: LaunchRequest): Promise<CloudInstance> {
    const problems = this.validate(req.class);
    if (problems.length)
      throw new InvalidConfigError(`InstanceClass ${req.class.metadata.name}: ${problems.join('; ')}`);
    const log = this.log.child({ instance: req.instance.name, class: req.class.metadata.name });
    const existing = (await this.lookups.submit('owned', req.instance.name)).instance;
    if (existing) {
      log.info({ providerID: existing.providerID }, 'instance already launched; reusing it');
      return existing;
    }
    const placement = await this.placement(req.class);
    const all = offerings(req.class, placement.zones).filter(
      (o) => !o.zone || !placement.subnetByZone.size || placement.subnetByZone.has(o.zone),
    );
    if (!all.length) {
      throw new InvalidConfigError(
        `InstanceClass ${req.class.metadata.name}: spec.zones ${JSON.stringify(req.class.spec.zones)} has no subnet of spec.aws.subnets (zones with subnets: ${placement.zones.join(', ')})`,
      );
    }
    const launched = await launchFirstAvailable(all, this.unavailable, (offering) => {
      const member: Member = {
        req,
        offering,
        subnetId: offering.zone ? placement.subnetByZone.get(offering.zone) : undefined,
      };
      return this.launches.submit(this.groupKey(member), member);
    });
    log.info({ providerID: launched.providerID, instanceType: launched.instanceType }, 'instance launched');
    return launched;
  }

  async get(providerID: string): Promise<CloudInstance> {
    const { instanceId } = parseProviderId(providerID);
    const found = await this.describeById(instanceId);
    if (!found || found.state === 'terminated' || found.state === 'terminating')
      throw new NotFoundError(`EC2 instance ${instanceId} (${providerID}) is gone`);
    return found;
  }

  async delete(providerID: string): Promise<void> {
    const { instanceId } = parseProviderId(providerID);
    // Never terminate what another cluster owns, even when asked to by a stale providerID.
    await this.get(providerID);
    await this.call('terminate', `TerminateInstances ${instanceId}`, () =>
      this.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })),
    );
    this.log.info({ providerID }, 'instance terminating');
  }

  async list(): Promise<CloudInstance[]> {
    const out: CloudInstance[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.call('describe', `DescribeInstances of cluster ${this.opts.clusterName}`, () =>
        this.ec2.send(
          new DescribeInstancesCommand({
            Filters: [
              { Name: `tag:${TAG_CLUSTER}`, Values: [this.opts.clusterName] },
              { Name: 'instance-state-name', Values: LIVE_STATES },
            ],
            MaxResults: this.opts.pageSize ?? 500,
            NextToken,
          }),
        ),
      );
      for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) out.push(toCloudInstance(i));
      NextToken = page.NextToken;
    } while (NextToken);
    return out;
  }

  // ---- lookups ---------------------------------------------------------------------------------

  private async describeById(instanceId: string): Promise<CloudInstance | undefined> {
    try {
      const r = await this.call('describe', `DescribeInstances ${instanceId}`, () =>
        this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })),
      );
      const i = r.Reservations?.flatMap((x) => x.Instances ?? [])[0];
      if (!i) return undefined;
      const ci = toCloudInstance(i);
      if (ci.tags[TAG_CLUSTER] !== this.opts.clusterName) {
        throw new NotFoundError(
          `EC2 instance ${instanceId} is not tagged ${TAG_CLUSTER}=${this.opts.clusterName}; ipp leaves it alone`,
        );
      }
      return ci;
    } catch (e) {
      if (e instanceof NotFoundError && /InvalidInstanceID/.test(e.message)) return undefined;
      throw e;
    }
  }

  /**
   * Live instances of this cluster launched for `names`, one DescribeInstances for all of them.
   * A grouped launch whose per-instance tags were never written (controller killed in between) is
   * adopted here: launch index k of the group belongs to its k-th member, whose boot script already
   * registers it with that Instance's label.
   */
  private async findOwned(names: string[]): Promise<{ instance?: CloudInstance }[]> {
    const filters: Filter[] = [
      { Name: `tag:${TAG_CLUSTER}`, Values: [this.opts.clusterName] },
      { Name: `tag:${TAG_LAUNCH_GROUP}`, Values: names.map((n) => `*/${n}/*`) },
      { Name: 'instance-state-name', Values: LIVE_STATES },
    ];
    const owned = new Map<string, Ec2Instance[]>();
    let NextToken: string | undefined;
    do {
      const page = await this.ec2.send(
        new DescribeInstancesCommand({ Filters: filters, MaxResults: this.opts.pageSize ?? 500, NextToken }),
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
          this.log.warn(
            { instance: name, ids: candidates.map((c) => c.InstanceId) },
            'several live EC2 instances for one Instance; using the oldest, garbage collection terminates the rest',
          );
        }
        const ci = toCloudInstance(first);
        if (ci.tags[TAG_INSTANCE] !== name) {
          await this.tagInstance(first.InstanceId!, name);
          ci.tags[TAG_INSTANCE] = name;
          ci.tags.Name = name;
          this.log.info(
            { instance: name, providerID: ci.providerID },
            'adopted an instance of an interrupted grouped launch',
          );
        }
        return { instance: ci };
      }),
    );
  }

  /** The class's subnets by zone; one DescribeSubnets per class and 5 minutes, however many creates ask at once. */
  private placement(cls: InstanceClass): Promise<Placement> {
    const subnets = cls.spec.aws?.subnets;
    if (!subnets) return Promise.resolve({ zones: [], subnetByZone: new Map() });
    const key = JSON.stringify(subnets);
    const cached = this.placements.get(key);
    if (cached && this.clock.now() - cached.at < 5 * 60_000) return cached.placement;
    const placement = this.describePlacement(cls, subnets);
    this.placements.set(key, { at: this.clock.now(), placement });
    // A failed lookup is not cached: the next create asks again.
    placement.catch(() => this.placements.get(key)?.placement === placement && this.placements.delete(key));
    return placement;
  }

  private async describePlacement(
    cls: InstanceClass,
    subnets: NonNullable<AwsSettings['subnets']>,
  ): Promise<Placement> {
    const r = await this.call('describe', `DescribeSubnets for InstanceClass ${cls.metadata.name}`, () =>
      this.ec2.send(
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
    // Keep the class's order of ids; among tag matches, the one with most free addresses first.
    const ordered = subnets.ids?.length
      ? subnets.ids.map((id) => found.find((s) => s.SubnetId === id)).filter((s) => s !== undefined)
      : [...found].sort((a, b) => (b.AvailableIpAddressCount ?? 0) - (a.AvailableIpAddressCount ?? 0));
    const subnetByZone = new Map<string, string>();
    for (const s of ordered)
      if (s.AvailabilityZone && s.SubnetId && !subnetByZone.has(s.AvailabilityZone))
        subnetByZone.set(s.AvailabilityZone, s.SubnetId);
    return { zones: [...subnetByZone.keys()], subnetByZone };
  }

  // ---- launches --------------------------------------------------------------------------------

  private userDataTemplate(aws: AwsSettings, node: NodeIdentity): { perInstance: boolean; shared: string | undefined } {
    if (aws.userData === undefined) return { perInstance: true, shared: undefined };
    if (customUserDataIsPerInstance(aws.userData)) return { perInstance: true, shared: undefined };
    return { perInstance: false, shared: customUserData(aws.userData, node) };
  }

  /** Launch parameters shared by every member of a group (everything but per-Instance tags and user data). */
  private baseInput(m: Member): RunInstancesCommandInput {
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
  private sharedTags(req: LaunchRequest): Record<string, string> {
    const tags: Record<string, string> = {
      ...req.class.spec.aws?.tags,
      ...req.tags,
      [TAG_CLUSTER]: this.opts.clusterName,
      [TAG_CLASS]: req.class.metadata.name ?? '',
      [`kubernetes.io/cluster/${this.opts.eks.clusterName}`]: 'owned',
    };
    delete tags[TAG_INSTANCE];
    delete tags.Name;
    return tags;
  }

  /** Members with equal keys can share one RunInstances; a key per Instance when they cannot. */
  private groupKey(m: Member): string {
    const aws = m.req.class.spec.aws!;
    const node = m.req.node;
    const shareable =
      this.maxGroupSize > 1 && (aws.userData === undefined || !this.userDataTemplate(aws, node).perInstance);
    return paramsDigest({
      input: this.baseInput(m),
      tags: this.sharedTags(m.req),
      node: sharedIdentity(node),
      userData: aws.userData ?? null,
      solo: shareable ? null : m.req.instance.uid,
    });
  }

  private groupSize(waiting: Member[]): number {
    let n = 0;
    let length = 1;
    for (const m of waiting) {
      length += m.req.instance.name.length + 1;
      if (n >= this.maxGroupSize || (n > 0 && length > MAX_TAG_VALUE)) break;
      n++;
    }
    return n;
  }

  private describeMembers(members: Member[]): string {
    const o = members[0]!.offering;
    return `${o.instanceType}${o.zone ? ` in ${o.zone}` : ''} for Instance${members.length > 1 ? 's' : ''} ${members.map((m) => m.req.instance.name).join(', ')}`;
  }

  /** The launch input of `members` (one or several) and the token that makes it idempotent. */
  launchInput(members: Member[], tokenAttempt = 0): RunInstancesCommandInput {
    const first = members[0]!;
    const aws = first.req.class.spec.aws!;
    const input = this.baseInput(first);
    const shared = this.sharedTags(first.req);
    const names = members.map((m) => m.req.instance.name);
    let userData: string;
    let instanceTags: Record<string, string>;
    if (members.length === 1) {
      userData =
        aws.userData !== undefined
          ? customUserData(aws.userData, first.req.node)
          : instanceUserData(this.opts.eks, first.req.node);
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
              this.opts.eks,
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

  /** One RunInstances for `members` (raw EC2 errors escape for retryAfter to classify). */
  private async runInstances(members: Member[]): Promise<(CloudInstance | Error)[]> {
    let instances: Ec2Instance[] = [];
    for (let tokenAttempt = 0; ; tokenAttempt++) {
      const input = this.launchInput(members, tokenAttempt);
      const out = await this.ec2.send(new RunInstancesCommand(input));
      instances = [...(out.Instances ?? [])].sort((a, b) => (a.AmiLaunchIndex ?? 0) - (b.AmiLaunchIndex ?? 0));
      // EC2 remembers a token for at least 24 h after the instance terminated and answers with the
      // dead instance: such a token is spent, the next attempt number makes a fresh one.
      const dead = instances.some((i) => i.State?.Name === 'terminated' || i.State?.Name === 'shutting-down');
      if (!dead || tokenAttempt >= 3) break;
      this.log.info(
        { clientToken: input.ClientToken },
        'ClientToken already used by a terminated instance; launching with the next token',
      );
    }
    const byIndex = new Map(instances.map((i) => [i.AmiLaunchIndex ?? 0, i]));
    return Promise.all(
      members.map(async (m, k) => {
        const i = byIndex.get(k);
        if (!i?.InstanceId) {
          // MinCount 1: EC2 launched fewer than asked, which it does only for lack of capacity.
          return new InsufficientCapacityError(
            `RunInstances ${m.offering.instanceType}${m.offering.zone ? ` in ${m.offering.zone}` : ''} launched ${instances.length} of ${members.length} instances; none for Instance ${m.req.instance.name}`,
            [m.offering],
          );
        }
        const ci = toCloudInstance(i);
        if (members.length > 1) {
          try {
            await this.tagInstance(i.InstanceId, m.req.instance.name);
            ci.tags[TAG_INSTANCE] = m.req.instance.name;
            ci.tags.Name = m.req.instance.name;
          } catch (e) {
            // The instance is still this member's (launch index); its next create() adopts and tags it.
            this.log.warn(
              { err: e, instance: m.req.instance.name, providerID: ci.providerID },
              'tagging a grouped launch failed; the next reconcile adopts it',
            );
            return e instanceof Error ? e : new Error(String(e));
          }
        }
        return ci;
      }),
    );
  }

  private async tagInstance(instanceId: string, name: string): Promise<void> {
    await this.call('tags', `CreateTags ${instanceId} for Instance ${name}`, () =>
      this.ec2.send(
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

  // ---- retries ---------------------------------------------------------------------------------

  private backoff(attempt: number): number {
    const base = this.opts.retry?.baseMs ?? 200;
    const max = this.opts.retry?.maxMs ?? 20_000;
    return Math.random() * Math.min(max, base * 2 ** attempt);
  }

  /** Continues after a failed first attempt: throttling and transient failures are tried again. */
  private async retryAfter<T>(first: unknown, what: string, again: () => Promise<T>, offering?: Offering): Promise<T> {
    const attempts = this.opts.retry?.attempts ?? 6;
    let last = first;
    for (let attempt = 1; attempt < attempts; attempt++) {
      const kind = classify(last);
      if (kind !== 'throttled' && kind !== 'transient') break;
      this.log.debug({ err: last, attempt, what }, 'retrying');
      await this.clock.sleep(this.backoff(attempt));
      try {
        return await again();
      } catch (e) {
        last = e;
      }
    }
    throw toProviderError(last, what, offering);
  }

  /** One EC2 call through its family's token bucket, retried on throttling and transient failures. */
  private async call<T>(family: ApiFamily, what: string, send: () => Promise<T>): Promise<T> {
    const attempt = () => this.limits.schedule(family, send);
    try {
      return await attempt();
    } catch (e) {
      return this.retryAfter(e, what, attempt);
    }
  }
}

export function createAwsProvider(opts: AwsProviderOptions): AwsProvider {
  return new AwsProvider(opts);
}
