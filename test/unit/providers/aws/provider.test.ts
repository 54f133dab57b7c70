import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { InstanceClass } from '../../../../src/api/types.ts';
import { InsufficientCapacityError, NotFoundError } from '../../../../providers/errors.ts';
import { launchFirstAvailable, offerings, UnavailableOfferings } from '../../../../providers/offerings.ts';
import { toProviderError } from '../../../../providers/aws/errors.ts';
import { registration } from '../../../../providers/aws/bootstrap.ts';
import {
  AwsProvider,
  groupMember,
  launchGroupValue,
  parseProviderId,
  TAG_LAUNCH_GROUP,
  validateAwsSettings,
} from '../../../../providers/aws/provider.ts';
import { toCloudInstance } from '../../../../providers/aws/instances.ts';

const cls = (aws: InstanceClass['spec']['aws'], extra: Partial<InstanceClass['spec']> = {}): InstanceClass => ({
  metadata: { name: 'mail' },
  spec: { instanceTypes: ['i3.metal', 'm5.metal'], aws, ...extra },
});

const provider = (maxGroupSize = 20) =>
  new AwsProvider({
    clusterName: 'prod',
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    eks: {
      clusterName: 'prod-eks',
      apiServerEndpoint: 'https://k8s',
      certificateAuthority: 'Q0E=',
      serviceCidr: '10.100.0.0/16',
    },
    logger: pino({ level: 'silent' }),
    maxGroupSize,
  });

const member = (name: string, c: InstanceClass, zone = 'us-east-1a') => ({
  req: {
    instance: { name, uid: `uid-${name}` },
    class: c,
    tags: { 'ipp.dev/cluster': 'prod', 'ipp.dev/class': 'mail', 'ipp.dev/instance': name },
    node: {
      labels: { 'ipp.dev/class': 'mail', 'ipp.dev/instance': name },
      taints: [{ key: 'ipp.dev/class', value: 'mail', effect: 'NoSchedule' as const }],
    },
  },
  offering: { instanceType: 'i3.metal', zone },
  subnetId: 'subnet-0a',
});

const tagsOf = (input: ReturnType<AwsProvider['launchInput']>, type = 'instance') =>
  Object.fromEntries(input.TagSpecifications!.find((t) => t.ResourceType === type)!.Tags!.map((t) => [t.Key, t.Value]));

describe('validateAwsSettings', () => {
  it('accepts a complete class', () => {
    expect(
      validateAwsSettings(
        cls({
          ami: { ssmParameter: '/aws/service/eks/x' },
          subnets: { ids: ['subnet-0a1b'] },
          securityGroupIds: ['sg-01'],
        }),
      ),
    ).toEqual([]);
  });

  it('names the field of every problem', () => {
    const msgs = validateAwsSettings(
      cls({
        ami: { id: 'ami-zz', ssmParameter: '/x' },
        subnets: { ids: ['sub-1'] },
        tags: { 'ipp.dev/x': 'y' },
        userData: 'x'.repeat(20_000),
      }),
    );
    expect(msgs.map((m) => m.split(':')[0])).toEqual([
      'spec.aws.ami',
      'spec.aws.ami.id',
      'spec.aws.subnets.ids',
      'spec.aws.tags',
      'spec.aws.userData',
    ]);
    expect(validateAwsSettings(cls(undefined))).toEqual(['spec.aws: required for the aws provider']);
    expect(validateAwsSettings(cls({}))[0]).toMatch(/^spec\.aws: set launchTemplate or ami/);
  });
});

describe('launchInput', () => {
  const c = cls({
    ami: { ssmParameter: '/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id' },
    tags: { team: 'mail' },
    capacityType: 'spot',
    rootVolume: { sizeGiB: 100, type: 'gp3' },
  });

  it('one Instance: all tags at launch, its own user data, a token from its UID and the offering', () => {
    const p = provider();
    const input = p.launchInput([member('mail-a', c)]);
    expect(input.MaxCount).toBe(1);
    expect(input.ImageId).toBe(
      'resolve:ssm:/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id',
    );
    expect(input.SubnetId).toBe('subnet-0a');
    expect(input.InstanceMarketOptions?.MarketType).toBe('spot');
    expect(input.MetadataOptions).toMatchObject({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
    expect(tagsOf(input)).toEqual({
      'ipp.dev/cluster': 'prod',
      'ipp.dev/class': 'mail',
      'ipp.dev/instance': 'mail-a',
      'kubernetes.io/cluster/prod-eks': 'owned',
      Name: 'mail-a',
      team: 'mail',
      [TAG_LAUNCH_GROUP]: '/mail-a/',
    });
    expect(tagsOf(input, 'volume')['ipp.dev/instance']).toBeUndefined();
    expect(input.ClientToken).toMatch(/^ipp-uid-mail-a-[0-9a-f]{16}$/);
    expect(input.ClientToken).not.toBe(
      p.launchInput([{ ...member('mail-a', c), offering: { instanceType: 'm5.metal', zone: 'us-east-1a' } }])
        .ClientToken,
    );
    expect(registration(Buffer.from(input.UserData!, 'base64').toString()).node.labels['ipp.dev/instance']).toBe(
      'mail-a',
    );
  });

  it('several Instances: one call for all, per-Instance identity chosen by launch index', () => {
    const input = provider().launchInput([member('mail-a', c), member('mail-b', c)]);
    expect(input.MinCount).toBe(1);
    expect(input.MaxCount).toBe(2);
    expect(tagsOf(input)['ipp.dev/instance']).toBeUndefined();
    expect(tagsOf(input)[TAG_LAUNCH_GROUP]).toBe('/mail-a/mail-b/');
    const ud = Buffer.from(input.UserData!, 'base64').toString();
    expect(registration(ud, 1).node.labels['ipp.dev/instance']).toBe('mail-b');
    expect(input.ClientToken!.length).toBeLessThanOrEqual(64);
  });
});

describe('launch groups', () => {
  it('map a launch index to its Instance', () => {
    const v = launchGroupValue(['a', 'b', 'c']);
    expect([0, 1, 2, 3].map((i) => groupMember(v, i))).toEqual(['a', 'b', 'c', undefined]);
  });

  it('name the Instance of a member not tagged yet (a restart between RunInstances and CreateTags), never over its tag', () => {
    const member = (index: number, tags: Record<string, string>) =>
      toCloudInstance({
        InstanceId: `i-${index}`,
        AmiLaunchIndex: index,
        Placement: { AvailabilityZone: 'us-east-1a' },
        Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      });
    const group = { 'ipp.dev/cluster': 'c', [TAG_LAUNCH_GROUP]: launchGroupValue(['a', 'b']) };
    expect(member(1, group).tags['ipp.dev/instance']).toBe('b');
    expect(member(1, { ...group, 'ipp.dev/instance': 'x' }).tags['ipp.dev/instance']).toBe('x');
    expect(member(0, { 'ipp.dev/cluster': 'c' }).tags['ipp.dev/instance']).toBeUndefined();
  });
});

describe('parseProviderId', () => {
  it('reads aws:///<zone>/<id> and refuses anything else', () => {
    expect(parseProviderId('aws:///us-east-1a/i-0123abcd')).toEqual({ zone: 'us-east-1a', instanceId: 'i-0123abcd' });
    expect(() => parseProviderId('gce://p/z/n')).toThrow(NotFoundError);
  });
});

describe('capacity', () => {
  it('knows i3.metal and leaves unknown types to the caller', () => {
    const r = provider().capacity('i3.metal')!;
    expect(r.pods).toBe(737);
    expect(r.cpu).toBeGreaterThan(71_000);
    expect(r.cpu).toBeLessThan(72_000);
    expect(r.memory).toBeLessThan(512 * 1024 ** 3);
    expect(provider().capacity('x9.huge')).toBeUndefined();
  });
});

describe('offering fallback with EC2 capacity errors', () => {
  it('moves to the next offering on InsufficientInstanceCapacity and remembers the first as unavailable', async () => {
    const c = cls({ ami: { id: 'ami-0abc' } }, { zones: ['us-east-1a'] });
    const unavailable = new UnavailableOfferings(60_000, () => 0);
    const tried: string[] = [];
    const launch = async (o: { instanceType: string; zone?: string }) => {
      tried.push(o.instanceType);
      if (o.instanceType === 'i3.metal') {
        const e = Object.assign(new Error('no capacity'), {
          name: 'InsufficientInstanceCapacity',
          $metadata: { httpStatusCode: 500 },
        });
        throw toProviderError(e, 'RunInstances', o);
      }
      return o.instanceType;
    };
    expect(await launchFirstAvailable(offerings(c), unavailable, launch)).toBe('m5.metal');
    expect(await launchFirstAvailable(offerings(c), unavailable, launch)).toBe('m5.metal');
    expect(tried).toEqual(['i3.metal', 'm5.metal', 'm5.metal']);
    const none = launchFirstAvailable([{ instanceType: 'i3.metal', zone: 'us-east-1a' }], unavailable, launch);
    await expect(none).rejects.toBeInstanceOf(InsufficientCapacityError);
  });
});
