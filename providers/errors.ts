// The provider error taxonomy (after Karpenter's cloudprovider errors). Controllers branch on these
// types only, never on a cloud's error codes, so every provider drives the same controller paths.
// Each keeps the cloud's own error as `cause`, for logs.

/** The instance does not exist (any more). delete() throws it once the instance is gone. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
  /**
   * The cloud shows no record of it at all, rather than one it reports terminated. A cloud with
   * eventually consistent reads (EC2) answers so for an instance it launched moments ago, too.
   */
  readonly unseen: boolean;
  constructor(message: string, options?: ErrorOptions & { unseen?: boolean }) {
    super(message, options);
    this.unseen = options?.unseen ?? false;
  }
}

/**
 * The instance exists but is not tagged (labelled) for this cluster: another cluster's, or this
 * cluster's under another --cluster-name. Never "gone": treating it so would delete the Instances
 * of every running machine after a change of the cluster's name. ipp neither terminates nor adopts it.
 */
export class NotOwnedError extends Error {
  override name = 'NotOwnedError';
}

/** No capacity for this offering (instance type in a zone); the next offering may have some. */
export class InsufficientCapacityError extends Error {
  override name = 'InsufficientCapacityError';
  readonly offerings: { instanceType: string; zone?: string }[];
  constructor(message: string, offerings: { instanceType: string; zone?: string }[] = [], options?: ErrorOptions) {
    super(message, options);
    this.offerings = offerings;
  }
}

/**
 * An account quota (instances, vCPUs per family, spot count) stops this offering. Another family may
 * still fit under its own quota, so it falls through like capacity; but the fix is the quota, and
 * the user is told so rather than "no capacity".
 */
export class QuotaExceededError extends InsufficientCapacityError {
  override name = 'QuotaExceededError';
}

/** The cloud API asked us to slow down. Retry after `retryAfterMs` or with the queue's backoff. */
export class ThrottledError extends Error {
  override name = 'ThrottledError';
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryAfterMs?: number, options?: ErrorOptions) {
    super(message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/** The class's provider settings cannot work (unknown AMI, missing subnet, bad field). Retrying won't help until the class changes. */
export class InvalidConfigError extends Error {
  override name = 'InvalidConfigError';
}

/** Short machine-readable name of an error, for metric labels and Event reasons. */
export function errorKind(e: unknown): string {
  if (e instanceof NotFoundError) return 'not_found';
  if (e instanceof NotOwnedError) return 'not_owned';
  if (e instanceof QuotaExceededError) return 'quota_exceeded';
  if (e instanceof InsufficientCapacityError) return 'insufficient_capacity';
  if (e instanceof ThrottledError) return 'throttled';
  if (e instanceof InvalidConfigError) return 'invalid_config';
  return 'other';
}

/** Awaits a cloud call on an instance that may be gone already: NotFoundError resolves to undefined. */
export async function ignoreCloudNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}
