import { describe, expect, it } from 'vitest';
import {
  InsufficientCapacityError,
  InvalidConfigError,
  NotFoundError,
  ThrottledError,
} from '../../../../providers/errors.ts';
import { classify, toProviderError } from '../../../../providers/aws/errors.ts';

/** The shape @aws-sdk/client-ec2 gives an EC2 error: name = Code, HTTP status in $metadata. */
function ec2Error(code: string, status = 400): Error {
  return Object.assign(new Error(`message of ${code}`), {
    name: code,
    Code: code,
    $metadata: { httpStatusCode: status },
  });
}

describe('toProviderError', () => {
  it.each([
    'InsufficientInstanceCapacity',
    'Unsupported',
    'InstanceLimitExceeded',
    'InsufficientCapacity',
    'MaxSpotInstanceCountExceeded',
    'UnfulfillableCapacity',
    'VcpuLimitExceeded',
    'InsufficientFreeAddressesInSubnet',
  ])('%s → InsufficientCapacityError naming the offering', (code) => {
    const e = toProviderError(ec2Error(code, 500), 'RunInstances i3.metal for Instance a', {
      instanceType: 'i3.metal',
      zone: 'us-east-1a',
    });
    expect(e).toBeInstanceOf(InsufficientCapacityError);
    expect((e as InsufficientCapacityError).offerings).toEqual([{ instanceType: 'i3.metal', zone: 'us-east-1a' }]);
    expect((e as Error).message).toContain('RunInstances i3.metal for Instance a');
    expect((e as Error).message).toContain(code);
  });

  it.each(['RequestLimitExceeded', 'Throttling', 'ThrottlingException'])('%s → ThrottledError', (code) => {
    expect(toProviderError(ec2Error(code, 503), 'x')).toBeInstanceOf(ThrottledError);
  });

  it.each([
    'InvalidAMIID.NotFound',
    'InvalidAMIID.Malformed',
    'InvalidSubnetID.NotFound',
    'InvalidParameterValue',
    'InvalidLaunchTemplateName.NotFoundException',
    'InvalidLaunchTemplateId.Malformed',
    'UnauthorizedOperation',
    'IdempotentParameterMismatch',
    'InvalidInstanceType',
    'InvalidInstanceType.NotFound',
  ])('%s → InvalidConfigError telling what to fix', (code) => {
    const e = toProviderError(ec2Error(code), 'RunInstances');
    expect(e).toBeInstanceOf(InvalidConfigError);
    expect((e as Error).message).toMatch(/spec\.aws|IAM/);
  });

  it('InvalidInstanceID.NotFound → NotFoundError', () => {
    expect(toProviderError(ec2Error('InvalidInstanceID.NotFound'), 'TerminateInstances i-1')).toBeInstanceOf(
      NotFoundError,
    );
  });

  it('leaves unknown errors unchanged', () => {
    const e = ec2Error('AuthFailure', 401);
    expect(toProviderError(e, 'x')).toBe(e);
  });
});

describe('classify', () => {
  it('treats server errors and dropped connections as transient, client errors not', () => {
    expect(classify(ec2Error('InternalError', 500))).toBe('transient');
    expect(classify(ec2Error('SomethingNew', 503))).toBe('transient');
    expect(classify(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe('transient');
    expect(classify(ec2Error('AuthFailure', 401))).toBe('other');
    expect(classify('a string')).toBe('other');
  });
});
