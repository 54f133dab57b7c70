// Compute Engine errors → the provider error taxonomy (providers/errors.ts). Two sources: an HTTP
// error of a call (GoogleError: HTTP status, ErrorInfo reason), and an error *code* inside a
// finished operation or a managed instance's lastAttempt (ZONE_RESOURCE_POOL_EXHAUSTED, …), which
// is how GCE reports that a VM could not be made. Controllers never see either.
import {
  InsufficientCapacityError,
  InvalidConfigError,
  NotFoundError,
  QuotaExceededError,
  ThrottledError,
} from '../errors.ts';

export type ErrorClass = 'capacity' | 'quota' | 'throttled' | 'config' | 'not-found' | 'exists' | 'transient' | 'other';

const THROTTLED_CODES = new Set([
  'RATE_LIMIT_EXCEEDED',
  'rateLimitExceeded',
  'userRateLimitExceeded',
  // Too many operations on one resource at once (a teardown wave on one group).
  'RESOURCE_OPERATION_RATE_EXCEEDED',
]);
const TRANSIENT_CODES = new Set([
  'INTERNAL_ERROR',
  'SERVICE_UNAVAILABLE',
  'TIMEOUT',
  // The group is busy with another operation (GKE's own, say); it passes.
  'RESOURCE_NOT_READY',
]);

/** Codes of operation errors and of `lastAttempt.errors` (as Cluster Autoscaler reads them). */
export function classifyCode(code: string): ErrorClass {
  if (/^(ZONE_)?RESOURCE_POOL_EXHAUSTED/.test(code) || code === 'IP_SPACE_EXHAUSTED' || code === 'STOCKOUT')
    return 'capacity';
  if (code.includes('QUOTA')) return 'quota';
  if (THROTTLED_CODES.has(code)) return 'throttled';
  if (code === 'RESOURCE_NOT_FOUND' || code === 'NOT_FOUND') return 'not-found';
  if (code === 'RESOURCE_ALREADY_EXISTS' || code === 'ALREADY_EXISTS') return 'exists';
  if (TRANSIENT_CODES.has(code)) return 'transient';
  // CONDITION_NOT_MET (e.g. external IP forbidden by policy), INVALID_*, PERMISSIONS_ERROR …
  return 'config';
}

interface HttpErrorShape {
  /** HTTP status (gax keeps it as httpStatusCode on REST errors). */
  httpStatusCode?: number;
  /** gRPC code gax maps it to. */
  code?: number | string;
  /** google.rpc.ErrorInfo reason, when GCE sends one. */
  reason?: string;
  message?: string;
}

const NETWORK = /ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|socket hang up|other side closed|fetch failed/i;

/** Class of an error thrown by a client call. */
export function classifyCallError(e: unknown): ErrorClass {
  if (!(e instanceof Error)) return 'other';
  const g = e as Error & HttpErrorShape;
  const status = g.httpStatusCode;
  const reason = g.reason ?? '';
  const msg = g.message ?? '';
  if (status === 429 || /RATE_LIMIT_EXCEEDED|rateLimitExceeded/i.test(reason)) return 'throttled';
  if (/Operation rate exceeded for resource|RESOURCE_OPERATION_RATE_EXCEEDED/i.test(`${reason} ${msg}`))
    return 'throttled';
  // 400 resourceNotReady: the resource is busy with another operation, not misconfigured.
  if (/resourceNotReady|RESOURCE_NOT_READY|is not ready/i.test(`${reason} ${msg}`)) return 'transient';
  if (status === 403 && /rate ?limit exceeded|Quota exceeded for quota metric '.*(Queries|requests)/i.test(msg))
    return 'throttled';
  if (reason && reason !== 'RATE_LIMIT_EXCEEDED') {
    const byReason = classifyCode(reason);
    if (byReason === 'quota' || byReason === 'capacity') return byReason;
  }
  if (status === 404) return 'not-found';
  if (status === 409) return 'exists';
  if (status !== undefined && status >= 500) return 'transient';
  if (status === 400 || status === 401 || status === 403) return 'config';
  // gRPC codes gax uses when no HTTP answer came: 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED, 1 CANCELLED.
  if (status === undefined && (g.code === 14 || g.code === 4)) return 'transient';
  if (NETWORK.test(msg) || NETWORK.test(String((e as { code?: unknown }).code ?? ''))) return 'transient';
  return 'other';
}

export interface OperationErrorItem {
  code?: string | null;
  message?: string | null;
}

const describe = (items: OperationErrorItem[]) => items.map((i) => `${i.code ?? '?'}: ${i.message ?? ''}`).join('; ');

/** The most telling class of a list of error items (capacity and quota win: they decide fallback). */
export function classifyItems(items: OperationErrorItem[]): ErrorClass {
  const classes = items.map((i) => classifyCode(i.code ?? ''));
  for (const c of ['quota', 'capacity', 'throttled', 'exists', 'not-found', 'transient'] as const)
    if (classes.includes(c)) return c;
  return 'config';
}

/**
 * A typed error for error items of an operation or a lastAttempt. `what` names the call and the
 * object ("createInstances ipp-mail-… in MIG us-central1-a/pool-mail"), so the message says what failed.
 */
export function itemsError(
  items: OperationErrorItem[],
  what: string,
  offering?: { instanceType: string; zone?: string },
): Error {
  const msg = `${what}: ${describe(items)}`;
  const offerings = offering ? [offering] : [];
  switch (classifyItems(items)) {
    case 'capacity':
      return new InsufficientCapacityError(msg, offerings);
    case 'quota':
      return new QuotaExceededError(
        `${msg} (a project quota is used up; raise it in the Cloud console, Quotas page, or free some)`,
        offerings,
      );
    case 'throttled':
      return new ThrottledError(msg);
    case 'not-found':
      return new NotFoundError(msg);
    case 'transient':
      return new Error(msg);
    default:
      return new InvalidConfigError(`${msg} (fix the InstanceClass spec.gce settings or the node pool)`);
  }
}

/**
 * Maps an error thrown by a client call to the typed error controllers act on, keeping it as
 * `cause`. Unknown errors come back unchanged: they are bugs or outages, not decisions.
 */
export function toProviderError(e: unknown, what: string, offering?: { instanceType: string; zone?: string }): unknown {
  const msg = `${what}: ${e instanceof Error ? e.message : String(e)}`;
  const options = { cause: e };
  const offerings = offering ? [offering] : [];
  switch (classifyCallError(e)) {
    case 'capacity':
      return new InsufficientCapacityError(msg, offerings, options);
    case 'quota':
      return new QuotaExceededError(`${msg} (a project quota is used up; raise it or free some)`, offerings, options);
    case 'throttled':
      return new ThrottledError(
        `${msg} (Compute Engine API rate limit; ipp backs off, lower its request rates if this persists)`,
        undefined,
        options,
      );
    case 'not-found':
      return new NotFoundError(msg, options);
    case 'config':
      return new InvalidConfigError(
        `${msg} (fix the InstanceClass spec.gce settings or the controller's IAM role; see docs/install-gke.md)`,
        options,
      );
    default:
      return e;
  }
}
