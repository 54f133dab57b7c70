// The AWS provider against moto's real EC2 Query API, through our fault proxy (capacity errors,
// throttling, lost responses, ClientToken idempotency, which moto lacks). One moto serves the whole
// run, so every test owns a cluster name of its own.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  RunInstancesCommand,
  type Instance as Ec2Instance,
} from '@aws-sdk/client-ec2';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { InstanceClass } from '../../../src/api/types.ts';
import { LeadershipFence } from '../../../src/kube/fence.ts';
import {
  InsufficientCapacityError,
  QuotaExceededError,
  NotFoundError,
  NotOwnedError,
} from '../../../providers/errors.ts';
import { registration } from '../../../providers/aws/bootstrap.ts';
import { AwsProvider, groupMember, type AwsProviderOptions } from '../../../providers/aws/provider.ts';
import type { LaunchRequest } from '../../../providers/types.ts';
import { startEc2FaultProxy, type Ec2FaultProxy } from '../../testbed/ec2-fault-proxy.ts';
import { suffix } from '../support/cluster.ts';

const region = 'us-east-1';
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const eks = {
  clusterName: 'eks-test',
  apiServerEndpoint: 'https://eks.example.test',
  certificateAuthority: 'Q0E=',
  serviceCidr: '10.100.0.0/16',
};

let proxy: Ec2FaultProxy;
let moto: EC2Client;
let subnets: { id: string; zone: string }[];

beforeAll(async () => {
  proxy = await startEc2FaultProxy({ target: inject('motoEndpoint') });
  moto = new EC2Client({ region, endpoint: inject('motoEndpoint'), credentials });
  const r = await moto.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }));
  subnets = (r.Subnets ?? [])
    .map((s) => ({ id: s.SubnetId!, zone: s.AvailabilityZone! }))
    .sort((a, b) => a.zone.localeCompare(b.zone));
  expect(subnets.length).toBeGreaterThanOrEqual(2);
});
afterAll(async () => {
  await proxy.close();
});
afterEach(() => proxy.clear());

function provider(clusterName: string, extra: Partial<AwsProviderOptions> = {}): AwsProvider {
  return new AwsProvider({
    clusterName,
    region,
    endpoint: proxy.endpoint,
    credentials,
    eks,
    logger: pino({ level: 'silent' }),
    retry: { attempts: 5, baseMs: 20, maxMs: 200 },
    ...extra,
  });
}

function instanceClass(name: string, instanceTypes = ['m5.large']): InstanceClass {
  return {
    metadata: { name },
    spec: {
      instanceTypes,
      aws: {
        ami: { id: 'ami-12c6146b' },
        subnets: { ids: subnets.slice(0, 2).map((s) => s.id) },
        tags: { team: 'mail' },
      },
    },
  };
}

function launch(cluster: string, cls: InstanceClass, name: string, uid = `uid-${name}-${suffix()}`): LaunchRequest {
  const c = cls.metadata.name!;
  return {
    instance: { name, uid },
    class: cls,
    tags: { 'ipp.dev/cluster': cluster, 'ipp.dev/class': c, 'ipp.dev/instance': name },
    node: {
      labels: { 'ipp.dev/class': c, 'ipp.dev/instance': name },
      taints: [{ key: 'ipp.dev/class', value: c, effect: 'NoSchedule' }],
    },
  };
}

/** Every instance moto holds for a cluster, terminated ones included. */
async function inMoto(cluster: string, live = true): Promise<Ec2Instance[]> {
  const r = await moto.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: 'tag:ipp.dev/cluster', Values: [cluster] },
        ...(live ? [{ Name: 'instance-state-name', Values: ['pending', 'running'] }] : []),
      ],
    }),
  );
  return (r.Reservations ?? []).flatMap((x) => x.Instances ?? []);
}

const tagsOf = (i: Ec2Instance) => Object.fromEntries((i.Tags ?? []).map((t) => [t.Key, t.Value]));
const runs = (outcome?: Parameters<Ec2FaultProxy['count']>[1]) => proxy.count('RunInstances', outcome);

async function userDataOf(instanceId: string): Promise<string> {
  const r = await moto.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: 'userData' }));
  return Buffer.from(r.UserData?.Value ?? '', 'base64').toString('utf8');
}

describe('AwsProvider on moto', () => {
  it('launches with every tag, the providerID of its zone and a bootstrap that registers the node as ipp needs', async () => {
    const cluster = `aws-${suffix()}`;
    const p = provider(cluster);
    const ci = await p.create(launch(cluster, instanceClass('mail'), 'mail-a'));

    const [i, ...more] = await inMoto(cluster);
    expect(more).toEqual([]);
    expect(ci.providerID).toBe(`aws:///${i!.Placement!.AvailabilityZone}/${i!.InstanceId}`);
    expect(ci.zone).toBe(subnets[0]!.zone);
    expect(i!.SubnetId).toBe(subnets[0]!.id);
    expect(i!.InstanceType).toBe('m5.large');
    expect(tagsOf(i!)).toMatchObject({
      'ipp.dev/cluster': cluster,
      'ipp.dev/class': 'mail',
      'ipp.dev/instance': 'mail-a',
      'kubernetes.io/cluster/eks-test': 'owned',
      Name: 'mail-a',
      team: 'mail',
    });
    const r = registration(await userDataOf(i!.InstanceId!));
    expect(r.cluster).toEqual({
      name: 'eks-test',
      apiServerEndpoint: eks.apiServerEndpoint,
      certificateAuthority: 'Q0E=',
      cidr: '10.100.0.0/16',
    });
    expect(r.node).toEqual({
      labels: { 'ipp.dev/class': 'mail', 'ipp.dev/instance': 'mail-a' },
      taints: [{ key: 'ipp.dev/class', value: 'mail', effect: 'NoSchedule' }],
    });
    expect(await p.get(ci.providerID)).toMatchObject({
      providerID: ci.providerID,
      state: 'running',
      instanceType: 'm5.large',
    });
  });

  it('create twice for the same Instance: one instance, and the second call launches nothing', async () => {
    const cluster = `aws-${suffix()}`;
    const req = launch(cluster, instanceClass('mail'), 'mail-twice');
    const first = await provider(cluster).create(req);
    const before = runs();
    // A fresh provider: nothing remembered in memory, as after a controller restart.
    const second = await provider(cluster).create(req);
    expect(second.providerID).toBe(first.providerID);
    expect(runs()).toBe(before);
    expect(await inMoto(cluster)).toHaveLength(1);
  });

  it('sends no RunInstances that waited in its bucket past the end of the leadership term', async () => {
    const cluster = `aws-${suffix()}`;
    // One launch request every 2 s: the second waits in the bucket.
    const p = provider(cluster, { rates: { run: { burst: 1, perSecond: 0.5 } }, maxGroupSize: 1 });
    const fence = new LeadershipFence();
    const term = new AbortController();
    fence.begin(term.signal);
    const guarded = fence.guard(p, 'provider aws', ['create', 'delete']);
    await guarded.create(launch(cluster, instanceClass('mail'), 'fenced-a'));
    const before = runs();
    const waiting = guarded.create(launch(cluster, instanceClass('mail'), 'fenced-b'));
    term.abort(); // the lease is lost while the launch waits for its token
    await expect(waiting).rejects.toThrow(/not the leader/);
    expect(runs()).toBe(before);
    expect(await inMoto(cluster)).toHaveLength(1);
  });

  it('findByInstance asks EC2 for one Instance by tag: no listing of the cluster', async () => {
    const cluster = `aws-${suffix()}`;
    const p = provider(cluster);
    const a = await p.create(launch(cluster, instanceClass('mail'), 'find-a'));
    await p.create(launch(cluster, instanceClass('mail'), 'find-b'));
    const describesBefore = proxy.requests.filter((r) => r.action === 'DescribeInstances').length;
    expect((await p.findByInstance!('find-a')).map((c) => c.providerID)).toEqual([a.providerID]);
    const describes = proxy.requests.filter((r) => r.action === 'DescribeInstances').slice(describesBefore);
    expect(describes).toHaveLength(1);
    expect(await p.findByInstance!('find-none')).toEqual([]);
  });

  it('a quota error is reported as quota, not capacity', async () => {
    const cluster = `aws-${suffix()}`;
    proxy.inject({ action: 'RunInstances', code: 'VcpuLimitExceeded' });
    await expect(provider(cluster).create(launch(cluster, instanceClass('mail'), 'quota'))).rejects.toBeInstanceOf(
      QuotaExceededError,
    );
  });

  it('capacity error on the first type: launched as the second, and the offering is remembered as unavailable', async () => {
    const cluster = `aws-${suffix()}`;
    const p = provider(cluster);
    const cls = instanceClass('metal', ['i3.metal', 'm5.metal']);
    proxy.inject({
      action: 'RunInstances',
      when: { InstanceType: 'i3.metal' },
      code: 'InsufficientInstanceCapacity',
      message: 'We currently do not have sufficient i3.metal capacity.',
    });
    const injectedBefore = runs('injected');
    const a = await p.create(launch(cluster, cls, 'metal-a'));
    expect(a.instanceType).toBe('m5.metal');
    // Both zones of i3.metal were tried, each once (capacity errors are not retried).
    expect(runs('injected') - injectedBefore).toBe(2);
    const b = await p.create(launch(cluster, cls, 'metal-b'));
    expect(b.instanceType).toBe('m5.metal');
    expect(runs('injected') - injectedBefore).toBe(2);
    expect((await inMoto(cluster)).map((i) => i.InstanceType)).toEqual(['m5.metal', 'm5.metal']);

    proxy.inject({ action: 'RunInstances', code: 'InsufficientInstanceCapacity' });
    await expect(p.create(launch(cluster, cls, 'metal-c'))).rejects.toBeInstanceOf(InsufficientCapacityError);
  });

  it('throttling: retried with backoff, and the proxy counts no duplicate launch', async () => {
    const cluster = `aws-${suffix()}`;
    proxy.inject({ action: 'RunInstances', code: 'RequestLimitExceeded', times: 3 });
    const before = { all: runs(), forwarded: runs('forwarded') };
    const ci = await provider(cluster).create(launch(cluster, instanceClass('mail'), 'mail-throttled'));
    expect(runs() - before.all).toBe(4);
    expect(runs('forwarded') - before.forwarded).toBe(1);
    expect((await inMoto(cluster)).map((i) => i.InstanceId)).toEqual([ci.providerID.split('/').pop()]);
  });

  it.each(['reset', 'error'] as const)(
    'response lost after RunInstances (%s): the retry gets the same instance through its ClientToken',
    async (lose) => {
      const cluster = `aws-${suffix()}`;
      proxy.inject({ action: 'RunInstances', lose, times: 1 });
      const before = { lost: runs('lost'), replayed: runs('replayed') };
      const ci = await provider(cluster).create(launch(cluster, instanceClass('mail'), 'mail-lost'));
      expect(runs('lost') - before.lost).toBe(1);
      expect(runs('replayed') - before.replayed).toBe(1);
      expect((await inMoto(cluster)).map((i) => i.InstanceId)).toEqual([ci.providerID.split('/').pop()]);
    },
  );

  it('controller killed between RunInstances and the status write: after restart still exactly one instance', async () => {
    const cluster = `aws-${suffix()}`;
    const req = launch(cluster, instanceClass('mail'), 'mail-killed');
    proxy.inject({ action: 'RunInstances', lose: 'reset', times: 1 });
    // The first process never learns the outcome (no retries: it "dies" with the lost answer).
    await expect(provider(cluster, { retry: { attempts: 1 } }).create(req)).rejects.toThrow();
    expect(await inMoto(cluster)).toHaveLength(1);
    const forwarded = runs('forwarded') + runs('replayed');
    const ci = await provider(cluster).create(req);
    expect(runs('forwarded') + runs('replayed')).toBe(forwarded);
    expect((await inMoto(cluster)).map((i) => i.InstanceId)).toEqual([ci.providerID.split('/').pop()]);
  });

  it("sees and touches only its own cluster's instances", async () => {
    const mine = `aws-${suffix()}`;
    const other = `aws-${suffix()}`;
    const theirs = await moto.send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        InstanceType: 'm5.large',
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'ipp.dev/cluster', Value: other },
              { Key: 'ipp.dev/class', Value: 'mail' },
              { Key: 'ipp.dev/instance', Value: 'mail-same-name' },
              { Key: 'ipp.dev/launch-group', Value: '/mail-same-name/' },
            ],
          },
        ],
      }),
    );
    const theirId = theirs.Instances![0]!.InstanceId!;
    const p = provider(mine);
    const ci = await p.create(launch(mine, instanceClass('mail'), 'mail-same-name'));
    expect(ci.providerID).not.toContain(theirId);
    expect((await p.list()).map((i) => i.providerID)).toEqual([ci.providerID]);
    const theirProviderId = `aws:///${theirs.Instances![0]!.Placement!.AvailabilityZone}/${theirId}`;
    // Not "gone" (which would delete its Instance): there, and not ours.
    await expect(p.delete(theirProviderId)).rejects.toBeInstanceOf(NotOwnedError);
    await expect(p.get(theirProviderId)).rejects.toBeInstanceOf(NotOwnedError);
    expect((await inMoto(other)).map((i) => i.InstanceId)).toEqual([theirId]);
  });

  it('list pages through every live instance of the cluster', async () => {
    const cluster = `aws-${suffix()}`;
    // Seven reservations: EC2 (and moto) page DescribeInstances by reservation.
    for (let k = 0; k < 7; k++) {
      await moto.send(
        new RunInstancesCommand({
          ImageId: 'ami-12c6146b',
          InstanceType: 'm5.large',
          MinCount: 1,
          MaxCount: 1,
          TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'ipp.dev/cluster', Value: cluster }] }],
        }),
      );
    }
    const before = proxy.count('DescribeInstances');
    expect(await provider(cluster, { pageSize: 5 }).list()).toHaveLength(7);
    expect(proxy.count('DescribeInstances') - before).toBe(2);
  });

  it('delete is idempotent: terminated, then NotFoundError, and no longer listed', async () => {
    const cluster = `aws-${suffix()}`;
    const p = provider(cluster);
    const ci = await p.create(launch(cluster, instanceClass('mail'), 'mail-del'));
    await p.delete(ci.providerID);
    const [i] = await inMoto(cluster, false);
    expect(i!.State!.Name).toBe('terminated');
    // Shown terminated: gone for sure. Not shown at all (EC2 moments after a launch answers so too):
    // gone for the cloud, and termination asks again while the launch is young.
    await expect(p.delete(ci.providerID)).rejects.toMatchObject({ name: 'NotFoundError', unseen: false });
    await expect(p.get(ci.providerID)).rejects.toBeInstanceOf(NotFoundError);
    expect(await p.list()).toEqual([]);
    await expect(p.delete('aws:///us-east-1a/i-0000000000deadbee')).rejects.toMatchObject({
      name: 'NotFoundError',
      unseen: true,
    });
  });

  it('a burst of one class shares RunInstances calls; each Instance gets exactly one instance that registers as itself', async () => {
    const cluster = `aws-${suffix()}`;
    // One RunInstances token per second: the burst queues behind the first call and is grouped.
    const p = provider(cluster, { rates: { run: { burst: 1, perSecond: 1 } } });
    const cls = instanceClass('burst');
    const names = Array.from({ length: 8 }, (_, k) => `burst-${k}`);
    const before = runs();
    const got = await Promise.all(names.map((n) => p.create(launch(cluster, cls, n))));
    expect(runs() - before).toBeLessThanOrEqual(3);
    const live = await inMoto(cluster);
    expect(live).toHaveLength(8);
    for (const [k, n] of names.entries()) {
      const i = live.find((x) => tagsOf(x)['ipp.dev/instance'] === n)!;
      expect(got[k]!.providerID).toContain(i.InstanceId!);
      expect(tagsOf(i).Name).toBe(n);
      expect(registration(await userDataOf(i.InstanceId!), i.AmiLaunchIndex).node.labels['ipp.dev/instance']).toBe(n);
    }
  });

  it('a group EC2 can only partly launch: the rest fall through to the next instance type', async () => {
    const cluster = `aws-${suffix()}`;
    const p = provider(cluster, { rates: { run: { burst: 1, perSecond: 1 } } });
    const cls = instanceClass('partial', ['m5.large', 'm5.xlarge']);
    cls.spec.aws!.subnets = { ids: [subnets[0]!.id] };
    await p.create(launch(cluster, cls, 'partial-first'));
    proxy.inject({ action: 'RunInstances', when: { InstanceType: 'm5.large' }, capacity: 2, times: 1 });
    const got = await Promise.all(
      ['partial-a', 'partial-b', 'partial-c'].map((n) => p.create(launch(cluster, cls, n))),
    );
    expect(got.map((g) => g.instanceType)).toEqual(['m5.large', 'm5.large', 'm5.xlarge']);
    expect(await inMoto(cluster)).toHaveLength(4);
  });

  it('a grouped launch whose per-instance tags fail keeps its instances; a restarted controller adopts and tags them, launching none', async () => {
    const cluster = `aws-${suffix()}`;
    const cls = instanceClass('group');
    const reqs = ['group-a', 'group-b', 'group-c'].map((n) => launch(cluster, cls, n));
    // Refused for good here (a policy without CreateTags); a controller killed before the tags leaves the same.
    proxy.inject({ action: 'CreateTags', code: 'UnauthorizedOperation' });
    const p = provider(cluster, { rates: { run: { burst: 1, perSecond: 1 } } });
    // A first lone launch takes the only token, so the three queue behind it and share one call.
    await p.create(launch(cluster, cls, 'group-first'));
    // Each member's instance is its own by launch index, tags or not: an error would have its Instance
    // launch again (and a second instance, if DescribeInstances did not show the first one yet).
    const launched = await Promise.all(reqs.map((r) => p.create(r)));
    const untagged = (await inMoto(cluster)).filter((i) => !tagsOf(i)['ipp.dev/instance']);
    expect(untagged).toHaveLength(3);

    proxy.clear();
    // A teardown of a member before any create adopts it still finds its machine, and only its own.
    for (const r of reqs) {
      const found = await provider(cluster).findByInstance(r.instance.name);
      const member = untagged.find(
        (i) => groupMember(tagsOf(i)['ipp.dev/launch-group'], i.AmiLaunchIndex ?? 0) === r.instance.name,
      )!;
      expect(found.map((c) => c.providerID)).toEqual([expect.stringMatching(new RegExp(`/${member.InstanceId}$`))]);
    }
    const before = runs();
    const adopted = await Promise.all(reqs.map((r) => provider(cluster).create(r)));
    expect(runs()).toBe(before);
    expect(adopted.map((a) => a.providerID)).toEqual(launched.map((l) => l.providerID));
    const live = await inMoto(cluster);
    expect(live).toHaveLength(4);
    for (const [k, r] of reqs.entries()) {
      const i = live.find((x) => adopted[k]!.providerID.endsWith(x.InstanceId!))!;
      expect(tagsOf(i)['ipp.dev/instance']).toBe(r.instance.name);
      expect(registration(await userDataOf(i.InstanceId!), i.AmiLaunchIndex).node.labels['ipp.dev/instance']).toBe(
        r.instance.name,
      );
    }
  });

  it('a grouped launch EC2 does not show yet to CreateTags (InvalidInstanceID.NotFound) is tagged on a retry, launched once', async () => {
    const cluster = `aws-${suffix()}`;
    const cls = instanceClass('lagging');
    const reqs = ['lag-a', 'lag-b', 'lag-c'].map((n) => launch(cluster, cls, n));
    const p = provider(cluster, { rates: { run: { burst: 1, perSecond: 1 } } });
    await p.create(launch(cluster, cls, 'lag-first'));
    const before = runs();
    proxy.inject({
      action: 'CreateTags',
      code: 'InvalidInstanceID.NotFound',
      message: 'The instance ID does not exist',
      times: 2,
    });
    const launched = await Promise.all(reqs.map((r) => p.create(r)));
    expect(runs() - before, 'one RunInstances for the three').toBe(1);
    const live = await inMoto(cluster);
    expect(live).toHaveLength(4);
    for (const [k, r] of reqs.entries()) {
      const i = live.find((x) => launched[k]!.providerID.endsWith(x.InstanceId!))!;
      expect(tagsOf(i)['ipp.dev/instance']).toBe(r.instance.name);
    }
  });

  it('IRSA: without static keys the SDK default chain assumes the role with the web identity token', async () => {
    const cluster = `aws-${suffix()}`;
    const dir = mkdtempSync(join(tmpdir(), 'ipp-irsa-'));
    const tokenFile = join(dir, 'token');
    // moto does not verify the token's signature; its shape is an EKS-issued JWT.
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    writeFileSync(
      tokenFile,
      `${b64({ alg: 'RS256', kid: 'k' })}.${b64({ iss: 'https://oidc.eks.us-east-1.amazonaws.com/id/X', sub: 'system:serviceaccount:ipp-system:ipp', aud: ['sts.amazonaws.com'] })}.c2ln`,
    );
    const saved = { ...process.env };
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'])
      delete process.env[k];
    Object.assign(process.env, {
      AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/ipp-controller',
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ROLE_SESSION_NAME: 'ipp',
      AWS_ENDPOINT_URL_STS: proxy.endpoint,
      AWS_CONFIG_FILE: join(dir, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    try {
      const before = proxy.count('AssumeRoleWithWebIdentity');
      const p = provider(cluster, { credentials: undefined });
      await p.create(launch(cluster, instanceClass('irsa'), 'irsa-a'));
      expect(proxy.count('AssumeRoleWithWebIdentity') - before).toBe(1);
      const sts = proxy.requests.filter((r) => r.action === 'AssumeRoleWithWebIdentity').at(-1)!;
      expect(sts.params.get('RoleArn')).toBe('arn:aws:iam::123456789012:role/ipp-controller');
      const run = proxy.requests.filter((r) => r.action === 'RunInstances').at(-1)!;
      // Signed with the temporary key STS issued, not with any static one.
      expect(run.accessKeyId).toBeDefined();
      expect(run.accessKeyId).not.toBe('testing');
      expect(await inMoto(cluster)).toHaveLength(1);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});
