// RunInstances ClientToken: EC2 answers a repeated token with the instances of the first call, so a
// retry after a lost response, a timeout or a controller restart never launches a second instance.
// The token must change whenever the parameters do (same token + other parameters =
// IdempotentParameterMismatch), hence the digest of the offering and the launch parameters.
import { createHash } from 'node:crypto';

/** EC2's limit: "a unique, case-sensitive string of up to 64 ASCII characters". */
export const MAX_TOKEN_LENGTH = 64;

const digest = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

/**
 * Token of a launch for one Instance. `params` is a stable digest of everything else in the call
 * (AMI, subnet, user data, tags…); `attempt` > 0 only after the earlier token returned an
 * instance that is already terminated (EC2 keeps tokens for at least 24 h after termination).
 */
export function clientToken(
  instanceUid: string,
  offering: { instanceType: string; zone?: string },
  params: string,
  attempt = 0,
): string {
  const d = digest(`${offering.instanceType}/${offering.zone ?? '*'}/${params}`, 16);
  const suffix = attempt > 0 ? `-r${attempt}` : '';
  const readable = `ipp-${instanceUid}-${d}${suffix}`;
  if (readable.length <= MAX_TOKEN_LENGTH && /^[\x21-\x7e]+$/.test(readable)) return readable;
  return `ipp-${digest(`${instanceUid}/${d}`, 48)}${suffix}`;
}

/** Token of one RunInstances that launches several Instances (in launch-index order). */
export function batchClientToken(
  instanceUids: string[],
  offering: { instanceType: string; zone?: string },
  params: string,
  attempt = 0,
): string {
  const suffix = attempt > 0 ? `-r${attempt}` : '';
  return `ipp-b-${digest(`${instanceUids.join(',')}/${offering.instanceType}/${offering.zone ?? '*'}/${params}`, 48)}${suffix}`;
}

/** Stable digest of launch parameters: key order must not change the token. */
export function paramsDigest(value: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return digest(JSON.stringify(canonical(value)), 32);
}
