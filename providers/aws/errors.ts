// EC2 error codes → the provider error taxonomy (providers/errors.ts). Controllers never see an EC2
// code: capacity codes fall through to the next offering, throttling backs off, configuration codes
// wait for the class to change, a vanished instance is NotFound.
import {
  InsufficientCapacityError,
  InvalidConfigError,
  NotFoundError,
  QuotaExceededError,
  ThrottledError,
} from '../errors.ts';

/** No capacity for this offering right now; another instance type or zone may have some. */
const CAPACITY = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientHostCapacity',
  'InsufficientReservedInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientFreeAddressesInSubnet',
  'Unsupported',
  'UnfulfillableCapacity',
  'SpotMaxPriceTooLow',
  'ReservationCapacityExceeded',
]);

/** An account quota: like capacity, another family may fit, but the user must raise the quota. */
const QUOTA = new Set(['InstanceLimitExceeded', 'VcpuLimitExceeded', 'MaxSpotInstanceCountExceeded']);

const THROTTLING = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'EC2ThrottledException',
]);

/**
 * Prefixes: InvalidAMIID.NotFound / .Malformed, InvalidSubnetID.NotFound, InvalidLaunchTemplateName.NotFoundException,
 * InvalidInstanceType.NotFound (a type the Region does not have, as moto answers) …
 */
const CONFIG_PREFIXES = [
  'InvalidAMIID.',
  'InvalidSubnetID.',
  'InvalidSubnet',
  'InvalidLaunchTemplate',
  'InvalidGroup.',
  'InvalidSecurityGroupID.',
  'InvalidKeyPair.',
  'InvalidBlockDeviceMapping',
  'InvalidUserData.',
  'InvalidInstanceType.',
];
const CONFIG = new Set([
  'InvalidParameterValue',
  'InvalidParameter',
  'InvalidParameterCombination',
  'MissingParameter',
  'InvalidInstanceType',
  'UnauthorizedOperation',
  'IdempotentParameterMismatch',
  'InvalidIAMInstanceProfile.NotFound',
  'OptInRequired',
  'InvalidAMIName.Malformed',
  'InvalidSnapshot.NotFound',
  'InvalidParameterValue.Malformed',
]);

const NOT_FOUND = new Set(['InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed']);

/** Transient server or network failures: safe to retry (RunInstances carries a ClientToken). */
const TRANSIENT = new Set([
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'Unavailable',
  'RequestTimeout',
  'RequestExpired',
]);
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'TimeoutError', 'RequestTimeout']);

/** The EC2 error code of an SDK error (`err.name` for modelled and unmodelled service errors alike). */
export function ec2Code(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  const code = (e as { Code?: unknown }).Code;
  return typeof code === 'string' ? code : e.name;
}

export type ErrorClass = 'capacity' | 'quota' | 'throttled' | 'config' | 'not-found' | 'transient' | 'other';

export function classify(e: unknown): ErrorClass {
  const code = ec2Code(e);
  if (code === undefined) return 'other';
  if (CAPACITY.has(code)) return 'capacity';
  if (QUOTA.has(code)) return 'quota';
  if (THROTTLING.has(code)) return 'throttled';
  if (NOT_FOUND.has(code)) return 'not-found';
  if (CONFIG.has(code) || CONFIG_PREFIXES.some((p) => code.startsWith(p))) return 'config';
  if (TRANSIENT.has(code)) return 'transient';
  const net = (e as { code?: unknown }).code;
  if (NETWORK.has(code) || (typeof net === 'string' && NETWORK.has(net))) return 'transient';
  const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return 'transient';
  // The SDK reports a dropped connection without status as a plain Error ("socket hang up").
  if (
    status === undefined &&
    /socket hang up|ECONNRESET|other side closed|fetch failed/i.test(e instanceof Error ? e.message : '')
  )
    return 'transient';
  return 'other';
}

/**
 * Maps an EC2 error to the typed error controllers act on. `what` names the call and the object
 * ("RunInstances m5.large in us-east-1a for Instance web-x"), so the message says what failed.
 * Unknown errors come back unchanged: they are bugs or outages, not decisions.
 */
export function toProviderError(e: unknown, what: string, offering?: { instanceType: string; zone?: string }): unknown {
  const code = ec2Code(e) ?? 'unknown';
  const msg = `${what}: ${code}: ${e instanceof Error ? e.message : String(e)}`;
  switch (classify(e)) {
    case 'quota':
      return new QuotaExceededError(
        `${msg} (raise the account's EC2 quota for this family: Service Quotas)`,
        offering ? [offering] : [],
        {
          cause: e,
        },
      );
    case 'capacity':
      return new InsufficientCapacityError(msg, offering ? [offering] : [], { cause: e });
    case 'throttled':
      return new ThrottledError(
        `${msg} (EC2 request tokens exhausted; ipp backs off, lower the rates in the Helm values if this persists)`,
        undefined,
        { cause: e },
      );
    case 'config':
      return new InvalidConfigError(
        `${msg} (fix the InstanceClass spec.aws settings or the controller's IAM permissions)`,
        { cause: e },
      );
    case 'not-found':
      return new NotFoundError(msg, { cause: e });
    default:
      return e;
  }
}
