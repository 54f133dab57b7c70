import { describe, expect, it } from 'vitest';
import {
  InsufficientCapacityError,
  InvalidConfigError,
  NotFoundError,
  QuotaExceededError,
  ThrottledError,
  errorKind,
} from '../../../../providers/errors.ts';
import { classifyCallError, classifyCode, itemsError, toProviderError } from '../../../../providers/gce/errors.ts';

/** The shape gax gives REST errors: HTTP status, gRPC code, ErrorInfo reason. */
const httpError = (httpStatusCode: number | undefined, message: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { httpStatusCode, ...extra });

describe('GCE error mapping', () => {
  it.each([
    ['ZONE_RESOURCE_POOL_EXHAUSTED', 'capacity'],
    ['ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS', 'capacity'],
    ['IP_SPACE_EXHAUSTED', 'capacity'],
    ['QUOTA_EXCEEDED', 'quota'],
    ['REGIONAL_QUOTA_EXCEEDED', 'quota'],
    ['RESOURCE_ALREADY_EXISTS', 'exists'],
    ['RESOURCE_NOT_FOUND', 'not-found'],
    ['CONDITION_NOT_MET', 'config'],
    ['INVALID_FIELD_VALUE', 'config'],
    ['RESOURCE_OPERATION_RATE_EXCEEDED', 'throttled'],
    ['RESOURCE_NOT_READY', 'transient'],
  ])('operation / lastAttempt code %s is %s', (code, kind) => {
    expect(classifyCode(code)).toBe(kind);
  });

  it('call errors: 429 and 403 rateLimitExceeded are throttling; 5xx and dropped connections transient', () => {
    expect(classifyCallError(httpError(429, 'Rate Limit Exceeded'))).toBe('throttled');
    expect(
      classifyCallError(
        httpError(403, "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'", {
          reason: 'RATE_LIMIT_EXCEEDED',
        }),
      ),
    ).toBe('throttled');
    expect(classifyCallError(httpError(403, 'Rate Limit Exceeded'))).toBe('throttled');
    expect(classifyCallError(httpError(503, 'backend error'))).toBe('transient');
    expect(classifyCallError(httpError(undefined, 'socket hang up', { code: 14 }))).toBe('transient');
    expect(classifyCallError(httpError(404, 'not found'))).toBe('not-found');
    expect(classifyCallError(httpError(403, 'Required permission compute.instanceGroupManagers.update'))).toBe(
      'config',
    );
    expect(classifyCallError('not an error')).toBe('other');
    // A group busy with another operation, or too many operations on it at once: neither is the class's fault.
    expect(
      classifyCallError(
        httpError(400, "The resource 'projects/p/zones/z/instanceGroupManagers/pool' is not ready", {
          reason: 'resourceNotReady',
        }),
      ),
    ).toBe('transient');
    expect(
      classifyCallError(
        httpError(403, "Operation rate exceeded for resource 'projects/p/zones/z/instanceGroupManagers/pool'"),
      ),
    ).toBe('throttled');
  });

  it('items of a failed create: capacity falls through, quota is capacity reported as quota', () => {
    const offering = { instanceType: 'c3-standard-192-metal', zone: 'us-central1-a' };
    const stockout = itemsError(
      [{ code: 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS', message: 'no resources' }],
      'MIG a/b could not create VM x',
      offering,
    );
    expect(stockout).toBeInstanceOf(InsufficientCapacityError);
    expect(stockout).not.toBeInstanceOf(QuotaExceededError);
    expect((stockout as InsufficientCapacityError).offerings).toEqual([offering]);
    expect(stockout.message).toContain('MIG a/b could not create VM x: ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS');

    const quota = itemsError([{ code: 'QUOTA_EXCEEDED', message: "Quota 'CPUS' exceeded" }], 'create', offering);
    expect(quota).toBeInstanceOf(QuotaExceededError);
    expect(quota).toBeInstanceOf(InsufficientCapacityError);
    expect(errorKind(quota)).toBe('quota_exceeded');
    expect(quota.message).toMatch(/quota/i);

    expect(itemsError([{ code: 'CONDITION_NOT_MET', message: 'external IP not allowed' }], 'create')).toBeInstanceOf(
      InvalidConfigError,
    );
  });

  it('typed call errors keep the original as cause; unknown ones come back unchanged', () => {
    const raw = httpError(429, 'Rate Limit Exceeded');
    const t = toProviderError(raw, 'createInstances x in MIG a/b');
    expect(t).toBeInstanceOf(ThrottledError);
    expect((t as Error).cause).toBe(raw);
    expect((t as Error).message).toContain('createInstances x in MIG a/b');
    expect(toProviderError(httpError(404, 'gone'), 'instances.get')).toBeInstanceOf(NotFoundError);
    const weird = new Error('weird');
    expect(toProviderError(weird, 'x')).toBe(weird);
  });
});
