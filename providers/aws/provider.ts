// The AWS provider: dedicated EC2 instances that join an EKS cluster by themselves.
//
// create() is idempotent three ways: (1) a live instance already tagged for the Instance (or, for
// grouped launches, listed for it in ipp.dev/launch-group) is returned; (2) RunInstances carries a
// ClientToken derived from the Instance UID, the offering and the parameters, so a retry after a lost
// response gets the same instance; (3) every call is retried only through the same token.
// Credentials come from the SDK's default chain (IRSA, EKS Pod Identity, instance profile) unless a
// test passes static ones. Launch parameters are built in launch.ts, reads live in lookup.ts.
import {
  DescribeInstanceTypesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type DescribeInstanceTypesCommandInput,
  type Instance as Ec2Instance,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import type { AwsSettings, InstanceClass } from '../../src/api/types.ts';
import { TAG_INSTANCE } from '../../src/api/names.ts';
import type { Logger } from '../../src/log.ts';
import { InsufficientCapacityError, InvalidConfigError, NotFoundError } from '../errors.ts';
import {
  launchFirstAvailable,
  noOfferingInZones,
  offerings,
  UnavailableOfferings,
  type Offering,
} from '../offerings.ts';
import type { CloudInstance, CloudProvider, LaunchRequest, Resources } from '../types.ts';
import { Coalescer } from './batch.ts';
import type { EksCluster } from './bootstrap.ts';
import { allocatable } from './capacity.ts';
import { classify, toProviderError } from './errors.ts';
import { parseProviderId, toCloudInstance } from './instances.ts';
import {
  cpuFactsOf,
  cpuProblems,
  needsCpuFacts,
  obtainedIsolation,
  validateAwsIsolation,
  type CpuFacts,
} from './isolation.ts';
import {
  baseInput,
  describeMembers,
  groupKey,
  groupSize,
  launchInput,
  type LaunchContext,
  type Member,
} from './launch.ts';
import {
  describeById,
  describePlacement,
  findOwned,
  listCluster,
  tagInstance,
  type Ec2Calls,
  type Placement,
} from './lookup.ts';
import { RateLimits, realClock, type ApiFamily, type BucketShape, type Clock } from './ratelimit.ts';
import { validateAwsSettings } from './validate.ts';
import { recheckFence } from '../../src/kube/fence.ts';

export {
  groupMember,
  launchGroupValue,
  parseProviderId,
  providerIdOf,
  TAG_LAUNCH_GROUP,
  toCloudInstance,
} from './instances.ts';
export { validateAwsSettings } from './validate.ts';

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

export class AwsProvider implements CloudProvider {
  readonly name = 'aws';
  private readonly opts: AwsProviderOptions;
  private readonly ec2: EC2Client;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly limits: RateLimits;
  private readonly unavailable: UnavailableOfferings;
  private readonly launchContext: LaunchContext;
  private readonly api: Ec2Calls;
  private readonly placements = new Map<string, { at: number; placement: Promise<Placement> }>();
  /** DescribeInstanceTypes answers by type; they change only when AWS changes a type, so an hour is fresh. */
  private readonly cpuFacts = new Map<string, { at: number; facts: CpuFacts }>();
  private readonly launches: Coalescer<Member, CloudInstance>;
  private readonly lookups: Coalescer<string, { instance?: CloudInstance }>;

  constructor(opts: AwsProviderOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger.child({ provider: 'aws', cluster: opts.clusterName });
    this.limits = new RateLimits(opts.rates, this.clock);
    this.unavailable = new UnavailableOfferings(opts.unavailableTtlMs, () => this.clock.now());
    this.launchContext = {
      clusterName: opts.clusterName,
      eks: opts.eks,
      maxGroupSize: Math.max(1, opts.maxGroupSize ?? 20),
    };
    this.ec2 = new EC2Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      // Retries are ours, each through the API family's token bucket (see call()).
      maxAttempts: 1,
    });
    this.api = {
      ec2: this.ec2,
      clusterName: opts.clusterName,
      log: this.log,
      pageSize: opts.pageSize ?? 500,
      call: (family, what, send) => this.call(family, what, send),
    };
    this.launches = new Coalescer<Member, CloudInstance>({
      gate: (fn) => this.limits.schedule('run', fn),
      take: (waiting) => groupSize(this.launchContext, waiting),
      serve: (members) => this.runInstances(members),
      retry: (members, e) =>
        this.retryAfter(
          e,
          `RunInstances for ${describeMembers(members)}`,
          () => this.limits.schedule('run', () => this.runInstances(members)),
          members[0]?.offering,
        ),
    });
    this.lookups = new Coalescer<string, { instance?: CloudInstance }>({
      gate: (fn) => this.limits.schedule('describe', fn),
      take: () => 50,
      serve: (names) => findOwned(this.api, names),
      retry: (names, e) =>
        this.retryAfter(e, `DescribeInstances for Instances ${names.join(', ')}`, () =>
          this.limits.schedule('describe', () => findOwned(this.api, names)),
        ),
    });
  }

  validate(cls: InstanceClass): string[] {
    return [...validateAwsSettings(cls), ...validateAwsIsolation(cls)];
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
    const cpu = needsCpuFacts(req.class) ? await this.describeTypes(req.class) : undefined;
    const placement = await this.placement(req.class);
    const all = offerings(req.class, placement.zones, req.zones).filter(
      (o) => !o.zone || !placement.subnetByZone.size || placement.subnetByZone.has(o.zone),
    );
    if (!all.length && req.zones) {
      throw new InvalidConfigError(
        noOfferingInZones(req.class, req.instance.name, req.zones, req.class.spec.zones ?? placement.zones),
      );
    }
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
        cpu: cpu?.get(offering.instanceType),
      };
      return this.launches.submit(groupKey(this.launchContext, member), member);
    });
    log.info({ providerID: launched.providerID, instanceType: launched.instanceType }, 'instance launched');
    return launched;
  }

  async get(providerID: string): Promise<CloudInstance> {
    const { instanceId } = parseProviderId(providerID);
    const found = await describeById(this.api, instanceId);
    if (!found)
      throw new NotFoundError(`EC2 instance ${instanceId} (${providerID}) is not shown by DescribeInstances`, {
        unseen: true,
      });
    if (found.state === 'terminated' || found.state === 'terminating')
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

  list(): Promise<CloudInstance[]> {
    return listCluster(this.api);
  }

  /** One filtered DescribeInstances: a teardown never lists the whole cluster's instances. */
  async findByInstance(instance: string): Promise<CloudInstance[]> {
    return listCluster(this.api, instance);
  }

  /** The launch input of `members` (one or several) and the token that makes it idempotent. */
  launchInput(members: Member[], tokenAttempt = 0): RunInstancesCommandInput {
    return launchInput(this.launchContext, members, tokenAttempt);
  }

  /** CPU facts of the class's types; InvalidConfigError naming the field when one cannot deliver the class's isolation. */
  private async describeTypes(cls: InstanceClass): Promise<Map<string, CpuFacts>> {
    const fresh = (t: string) => {
      const c = this.cpuFacts.get(t);
      return c && this.clock.now() - c.at < 60 * 60_000 ? c : undefined;
    };
    const missing = cls.spec.instanceTypes.filter((t) => !fresh(t));
    if (missing.length) {
      const r = await this.call('describe', `DescribeInstanceTypes ${missing.join(', ')}`, () =>
        this.ec2.send(
          new DescribeInstanceTypesCommand({
            InstanceTypes: missing as DescribeInstanceTypesCommandInput['InstanceTypes'],
          }),
        ),
      );
      for (const info of r.InstanceTypes ?? [])
        if (info.InstanceType) this.cpuFacts.set(info.InstanceType, { at: this.clock.now(), facts: cpuFactsOf(info) });
    }
    const facts = new Map<string, CpuFacts>();
    for (const t of cls.spec.instanceTypes) {
      const f = fresh(t);
      if (f) facts.set(t, f.facts);
    }
    const problems = cpuProblems(cls, facts);
    if (problems.length) throw new InvalidConfigError(`InstanceClass ${cls.metadata.name}: ${problems.join('; ')}`);
    return facts;
  }

  /** The class's subnets by zone; one DescribeSubnets per class and 5 minutes, however many creates ask at once. */
  private placement(cls: InstanceClass): Promise<Placement> {
    const subnets: AwsSettings['subnets'] = cls.spec.aws?.subnets;
    if (!subnets) return Promise.resolve({ zones: [], subnetByZone: new Map() });
    const key = JSON.stringify(subnets);
    const cached = this.placements.get(key);
    if (cached && this.clock.now() - cached.at < 5 * 60_000) return cached.placement;
    const placement = describePlacement(this.api, cls, subnets);
    this.placements.set(key, { at: this.clock.now(), placement });
    // A failed lookup is not cached: the next create asks again.
    placement.catch(() => this.placements.get(key)?.placement === placement && this.placements.delete(key));
    return placement;
  }

  /** One RunInstances for `members` (raw EC2 errors escape for retryAfter to classify). */
  private async runInstances(members: Member[]): Promise<(CloudInstance | Error)[]> {
    let instances: Ec2Instance[] = [];
    for (let tokenAttempt = 0; ; tokenAttempt++) {
      const input = this.launchInput(members, tokenAttempt);
      // The batch waited for its bucket: not sent if this replica stopped leading meanwhile.
      recheckFence(`RunInstances for ${describeMembers(members)}`);
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
        ci.hostIsolation = obtainedIsolation(m.offering.instanceType, baseInput(m), m.cpu);
        if (members.length > 1 && (await this.tagMember(i.InstanceId, m.req.instance.name, ci.providerID))) {
          ci.tags[TAG_INSTANCE] = m.req.instance.name;
          ci.tags.Name = m.req.instance.name;
        }
        return ci;
      }),
    );
  }

  /**
   * Tags a grouped launch's member with its Instance. Its launch index already makes it this member's
   * (its boot script registers it with the Instance's label; a teardown finds it by the group's tag), so
   * the instance is returned whether or not the tags land: an error instead had the Instance launch
   * again, and a DescribeInstances that did not show the new instance yet let that launch make a second
   * one. EC2 answers InvalidInstanceID.NotFound for an instance it has just launched: asked again.
   */
  private async tagMember(instanceId: string, instance: string, providerID: string): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await tagInstance(this.api, instanceId, instance);
        return true;
      } catch (e) {
        if (e instanceof NotFoundError && attempt < 5) {
          await this.clock.sleep(this.backoff(attempt + 1));
          continue;
        }
        this.log.warn(
          { err: e, instance, providerID },
          "tagging a grouped launch failed; the instance is the Instance's all the same (its launch index says so), without its Name and ipp.dev/instance tags",
        );
        return false;
      }
    }
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
    // A launch or termination that waited for its bucket (or a batch) past the leadership term of the
    // call it serves is not sent: another replica may lead, and launch the same Instance, by now.
    const fenced = () => {
      if (family !== 'describe') recheckFence(what);
      return send();
    };
    const attempt = () => this.limits.schedule(family, fenced);
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
