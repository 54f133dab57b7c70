// Proves the EC2 API in tests is moto's real Query API server, reached through @aws-sdk/client-ec2.
import {
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it, inject } from 'vitest';
import { suffix } from './support/cluster.ts';

describe('moto EC2', () => {
  const ec2 = new EC2Client({
    region: 'us-east-1',
    endpoint: inject('motoEndpoint'),
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });

  it('runs, finds by tag and terminates instances', async () => {
    const cluster = `smoke-${suffix()}`;
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        InstanceType: 'm5.large',
        MinCount: 2,
        MaxCount: 2,
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'ipp.dev/cluster', Value: cluster }] }],
      }),
    );
    const ids = run.Instances!.map((i) => i.InstanceId!);
    expect(ids).toHaveLength(2);
    await ec2.send(
      new RunInstancesCommand({ ImageId: 'ami-12c6146b', InstanceType: 'm5.large', MinCount: 1, MaxCount: 1 }),
    );

    const found = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'tag:ipp.dev/cluster', Values: [cluster] }] }),
    );
    expect(
      found
        .Reservations!.flatMap((r) => r.Instances!)
        .map((i) => i.InstanceId)
        .sort(),
    ).toEqual([...ids].sort());

    await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    const after = await ec2.send(new DescribeInstancesCommand({ InstanceIds: ids }));
    expect(after.Reservations!.flatMap((r) => r.Instances!).map((i) => i.State?.Name)).toEqual([
      'terminated',
      'terminated',
    ]);
  });

  it('rejects an instance type EC2 does not have', async () => {
    await expect(
      ec2.send(
        new RunInstancesCommand({
          ImageId: 'ami-12c6146b',
          InstanceType: 'x9.nonsense' as never,
          MinCount: 1,
          MaxCount: 1,
        }),
      ),
    ).rejects.toThrow(/InvalidInstanceType|does not exist|not supported/i);
  });
});
