// Problems with a class's spec.aws, as messages naming the field: what the InstanceClass status
// shows and what create() refuses to launch with.
import type { InstanceClass } from '../../src/api/types.ts';
import { MAX_USER_DATA_BYTES } from './bootstrap.ts';

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
