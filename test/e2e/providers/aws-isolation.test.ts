// Host isolation levels on EC2, against moto through the fault proxy, which records the parameters
// of every RunInstances: each level must produce the right tenancy, CPU options and types, a
// capacity fallback must keep the level, and impossible classes must be refused before any launch.
// (moto accepts Placement.Tenancy and CpuOptions but does not echo them back, so the launch
// parameters are what these tests read; moto's DescribeInstanceTypes carries EC2's real table.)
import { DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { InstanceClass, InstanceClassSpec } from '../../../src/api/types.ts';
import { InvalidConfigError } from '../../../providers/errors.ts';
import { AwsProvider } from '../../../providers/aws/provider.ts';
import type { LaunchRequest } from '../../../providers/types.ts';
import { startEc2FaultProxy, type Ec2FaultProxy } from '../../testbed/ec2-fault-proxy.ts';
import { suffix } from '../support/cluster.ts';

const region = 'us-east-1';
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
let proxy: Ec2FaultProxy;
let subnet: string;

beforeAll(async () => {
  proxy = await startEc2FaultProxy({ target: inject('motoEndpoint') });
  const moto = new EC2Client({ region, endpoint: inject('motoEndpoint'), credentials });
  const r = await moto.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }));
  subnet = r.Subnets![0]!.SubnetId!;
});
afterAll(() => proxy.close());
afterEach(() => proxy.clear());
/** Requests before this index belong to earlier tests. */
let mark = 0;
beforeEach(() => {
  mark = proxy.requests.length;
});
const count = (action: string) => proxy.requests.slice(mark).filter((r) => r.action === action).length;

function provider(clusterName: string): AwsProvider {
  return new AwsProvider({
    clusterName,
    region,
    endpoint: proxy.endpoint,
    credentials,
    eks: {
      clusterName: 'eks-test',
      apiServerEndpoint: 'https://eks.example.test',
      certificateAuthority: 'Q0E=',
      serviceCidr: '10.100.0.0/16',
    },
    logger: pino({ level: 'silent' }),
    retry: { attempts: 3, baseMs: 20, maxMs: 100 },
  });
}

function isolated(name: string, instanceTypes: string[], extra: Partial<InstanceClassSpec>): InstanceClass {
  return {
    metadata: { name },
    spec: { instanceTypes, aws: { ami: { id: 'ami-12c6146b' }, subnets: { ids: [subnet] } }, ...extra },
  };
}

function launch(cluster: string, cls: InstanceClass, name: string): LaunchRequest {
  const c = cls.metadata.name!;
  return {
    instance: { name, uid: `uid-${name}-${suffix()}` },
    class: cls,
    tags: { 'ipp.dev/cluster': cluster, 'ipp.dev/class': c, 'ipp.dev/instance': name },
    node: {
      labels: { 'ipp.dev/class': c, 'ipp.dev/instance': name },
      taints: [{ key: 'ipp.dev/class', value: c, effect: 'NoSchedule' }],
    },
  };
}

/** The isolation parameters of this test's RunInstances calls. */
const launches = () =>
  proxy
    .paramsOf('RunInstances')
    .slice(proxy.requests.slice(0, mark).filter((r) => r.action === 'RunInstances').length)
    .map((p) => ({
      InstanceType: p.InstanceType,
      Tenancy: p['Placement.Tenancy'],
      CoreCount: p['CpuOptions.CoreCount'],
      ThreadsPerCore: p['CpuOptions.ThreadsPerCore'],
      NestedVirtualization: p['CpuOptions.NestedVirtualization'],
    }));

describe('host isolation on EC2 (moto)', () => {
  it('VM (the default) launches with no tenancy or CPU options and asks DescribeInstanceTypes nothing', async () => {
    const cluster = `iso-${suffix()}`;
    const ci = await provider(cluster).create(launch(cluster, isolated('vm', ['m5.large'], {}), 'vm-a'));
    expect(launches()).toEqual([{ InstanceType: 'm5.large' }]);
    expect(count('DescribeInstanceTypes')).toBe(0);
    expect(ci.hostIsolation).toEqual({ level: 'VM', smt: 'On', nestedVirtualization: false });
  });

  it('DedicatedHardware: Placement.Tenancy dedicated, also after a capacity fallback to the next type', async () => {
    const cluster = `iso-${suffix()}`;
    proxy.inject({ action: 'RunInstances', when: { InstanceType: 'm5.large' }, code: 'InsufficientInstanceCapacity' });
    const cls = isolated('dedicated', ['m5.large', 'm5.xlarge'], { hostIsolation: 'DedicatedHardware' });
    const ci = await provider(cluster).create(launch(cluster, cls, 'dedicated-a'));
    expect(launches()).toEqual([
      { InstanceType: 'm5.large', Tenancy: 'dedicated' },
      { InstanceType: 'm5.xlarge', Tenancy: 'dedicated' },
    ]);
    expect(ci.instanceType).toBe('m5.xlarge');
    expect(ci.hostIsolation).toEqual({ level: 'DedicatedHardware', smt: 'On', nestedVirtualization: false });
  });

  it('DedicatedHardware on a Dedicated Host: Placement.Tenancy host', async () => {
    const cluster = `iso-${suffix()}`;
    const cls = isolated('onhost', ['m5.large'], { hostIsolation: 'DedicatedHardware' });
    cls.spec.aws!.tenancy = 'host';
    const ci = await provider(cluster).create(launch(cluster, cls, 'onhost-a'));
    expect(launches()).toEqual([{ InstanceType: 'm5.large', Tenancy: 'host' }]);
    expect(ci.hostIsolation?.level).toBe('DedicatedHardware');
  });

  it('BareMetal: only the metal type, no tenancy or CPU options needed', async () => {
    const cluster = `iso-${suffix()}`;
    const cls = isolated('metal', ['m5.metal'], { hostIsolation: 'BareMetal' });
    const ci = await provider(cluster).create(launch(cluster, cls, 'metal-a'));
    expect(launches()).toEqual([{ InstanceType: 'm5.metal' }]);
    expect(ci.hostIsolation).toEqual({ level: 'BareMetal', smt: 'On', nestedVirtualization: true });
  });

  it("smt Off: ThreadsPerCore 1 with the type's core count from DescribeInstanceTypes", async () => {
    const cluster = `iso-${suffix()}`;
    const cls = isolated('nosmt', ['m5.2xlarge'], { hostIsolation: 'DedicatedHardware', smt: 'Off' });
    const ci = await provider(cluster).create(launch(cluster, cls, 'nosmt-a'));
    expect(count('DescribeInstanceTypes')).toBe(1);
    expect(launches()).toEqual([
      { InstanceType: 'm5.2xlarge', Tenancy: 'dedicated', CoreCount: '4', ThreadsPerCore: '1' },
    ]);
    expect(ci.hostIsolation).toEqual({ level: 'DedicatedHardware', smt: 'Off', nestedVirtualization: false });
  });

  it('nested virtualization on c8i: CpuOptions.NestedVirtualization enabled', async () => {
    const cluster = `iso-${suffix()}`;
    const cls = isolated('kata', ['c8i.large'], { nestedVirtualization: true });
    const ci = await provider(cluster).create(launch(cluster, cls, 'kata-a'));
    expect(launches()).toEqual([{ InstanceType: 'c8i.large', NestedVirtualization: 'enabled' }]);
    expect(ci.hostIsolation).toEqual({ level: 'VM', smt: 'On', nestedVirtualization: true });
  });

  it('refuses impossible classes at validation, naming the field, and launches nothing', async () => {
    const cluster = `iso-${suffix()}`;
    const p = provider(cluster);
    const cases: [InstanceClass, RegExp][] = [
      [
        isolated('bm', ['m5.metal', 'm5.large'], { hostIsolation: 'BareMetal' }),
        /spec\.hostIsolation: BareMetal needs bare-metal instance types, and spec\.instanceTypes\[1\] m5\.large is a VM/,
      ],
      [
        isolated('bmsmt', ['m5.metal'], { hostIsolation: 'BareMetal', smt: 'Off' }),
        /spec\.smt: Off cannot be delivered/,
      ],
      [isolated('nv', ['m5.large'], { nestedVirtualization: true }), /spec\.nestedVirtualization: .* m5\.large cannot/],
    ];
    for (const [cls, why] of cases) {
      expect(p.validate(cls).join('; ')).toMatch(why);
      const err = await p.create(launch(cluster, cls, `${cls.metadata.name}-a`)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidConfigError);
      expect((err as Error).message).toMatch(why);
    }
    expect(count('RunInstances')).toBe(0);
  });

  it('refuses a type EC2 cannot describe before launching when the level needs CPU facts', async () => {
    const cluster = `iso-${suffix()}`;
    const cls = isolated('unknown', ['m5.large', 'x9.huge'], { smt: 'Off' });
    const err = await provider(cluster)
      .create(launch(cluster, cls, 'unknown-a'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect((err as Error).message).toMatch(/x9\.huge/);
    expect(count('RunInstances')).toBe(0);
  });
});
