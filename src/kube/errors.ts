// client-node throws ApiException with the Status as a raw JSON string in `body`; this reads it once.

export interface KubeError {
  code: number;
  reason: string;
  message: string;
}

export function kubeError(e: unknown): KubeError | undefined {
  if (typeof e !== 'object' || e === null || !('code' in e) || typeof (e as { code: unknown }).code !== 'number')
    return undefined;
  const code = (e as { code: number }).code;
  const raw = (e as { body?: unknown }).body;
  let status: { reason?: string; message?: string } = {};
  if (typeof raw === 'string') {
    try {
      status = JSON.parse(raw) as typeof status;
    } catch {
      status = { message: raw };
    }
  } else if (typeof raw === 'object' && raw !== null) {
    status = raw as typeof status;
  }
  return {
    code,
    reason: status.reason ?? '',
    message: status.message ?? String((e as { message?: unknown }).message ?? ''),
  };
}

export const isNotFound = (e: unknown) => kubeError(e)?.code === 404;
export const isConflict = (e: unknown) => kubeError(e)?.code === 409 && kubeError(e)?.reason !== 'AlreadyExists';
export const isAlreadyExists = (e: unknown) => kubeError(e)?.code === 409 && kubeError(e)?.reason === 'AlreadyExists';
/**
 * The object changed since we read it: a 409 Conflict, or a JSON Patch whose `test` of
 * resourceVersion failed (the API server answers those with 422). Either way: re-read and retry.
 */
export const isStale = (e: unknown) => isConflict(e) || kubeError(e)?.code === 422;

/** One line for logs and Events: "HTTP 409 Conflict: the object has been modified". */
export function describeError(e: unknown): string {
  const k = kubeError(e);
  if (k) return `HTTP ${k.code}${k.reason ? ` ${k.reason}` : ''}: ${k.message}`;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Awaits a request whose target may already be gone (deleting twice, patching a deleted object):
 * a 404 resolves to undefined, anything else is thrown.
 */
export async function ignoreNotFound<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}
