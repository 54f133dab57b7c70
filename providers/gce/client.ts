// The Compute Engine clients ipp uses, over the REST transport, behind client-side rate limits and
// one retry policy. Credentials are Application Default Credentials from the metadata server only
// (GKE Workload Identity): a key file is refused, since a key in a pod outlives every rotation.
import compute from '@google-cloud/compute';
import { GoogleAuth, type CallOptions } from 'google-gax';
import PQueue from 'p-queue';
import { TokenBucket, realClock, type BucketShape, type Clock } from '../aws/ratelimit.ts';
import { classifyCallError, toProviderError } from './errors.ts';
import { recheckFence } from '../../src/kube/fence.ts';

export type ApiFamily = 'read' | 'write' | 'poll';

/**
 * Compute Engine's default per-project quotas are per minute and shared with every other caller
 * in the project (gcloud, GKE itself); ipp stays well inside them instead of discovering them by 429.
 */
export const GCE_BUCKETS: Record<ApiFamily, BucketShape> = {
  read: { burst: 20, perSecond: 10 },
  write: { burst: 10, perSecond: 5 },
  poll: { burst: 20, perSecond: 10 },
};

export interface ComputeOptions {
  /** The default project, when known: spares the auth library its own search for one. */
  project?: string;
  /** Tests only: http://127.0.0.1:port of the local fake. Production: Compute Engine's REST endpoint. */
  endpoint?: string;
  clock?: Clock;
  rates?: Partial<Record<ApiFamily, BucketShape>>;
  /** Attempts per call for throttling and transient failures (exponential backoff with full jitter). */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
  env?: NodeJS.ProcessEnv;
}

/** Refuses every way of handing the Google auth library a key: Workload Identity only. */
export function credentialProblem(env: NodeJS.ProcessEnv): string | undefined {
  if (env.GOOGLE_APPLICATION_CREDENTIALS)
    return 'GOOGLE_APPLICATION_CREDENTIALS is set: ipp uses Workload Identity (the metadata server) only and never a key file; unset it and bind the Kubernetes ServiceAccount to a Google service account (docs/install-gke.md)';
  return undefined;
}

function clientOptions(endpoint: string | undefined): {
  fallback: true;
  apiEndpoint?: string;
  port?: number;
  protocol?: string;
} {
  if (!endpoint) return { fallback: true };
  const u = new URL(endpoint);
  return {
    fallback: true,
    apiEndpoint: u.hostname,
    port: Number(u.port || (u.protocol === 'http:' ? 80 : 443)),
    protocol: u.protocol.replace(':', ''),
  };
}

/** Our retries only (each through the rate limit); gax must not retry behind our back. */
export const NO_GAX_RETRY: CallOptions = { retry: { retryCodes: [] }, timeout: 60_000 };

export class Compute {
  readonly migs: InstanceType<typeof compute.InstanceGroupManagersClient>;
  readonly templates: InstanceType<typeof compute.InstanceTemplatesClient>;
  readonly regionTemplates: InstanceType<typeof compute.RegionInstanceTemplatesClient>;
  readonly instances: InstanceType<typeof compute.InstancesClient>;
  readonly operations: InstanceType<typeof compute.ZoneOperationsClient>;
  private readonly clock: Clock;
  private readonly opts: ComputeOptions;
  private readonly gates = new Map<ApiFamily, { queue: PQueue; bucket: TokenBucket }>();

  constructor(opts: ComputeOptions = {}) {
    const problem = credentialProblem(opts.env ?? process.env);
    if (problem) throw new Error(problem);
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    // One credential for every client: the metadata server is asked once per token, not per client.
    const auth = new GoogleAuth({
      scopes: ['https://www.googleapis.com/auth/compute'],
      ...(opts.project ? { projectId: opts.project } : {}),
    });
    const o = { ...clientOptions(opts.endpoint), auth };
    this.migs = new compute.InstanceGroupManagersClient({ ...o });
    this.templates = new compute.InstanceTemplatesClient({ ...o });
    this.regionTemplates = new compute.RegionInstanceTemplatesClient({ ...o });
    this.instances = new compute.InstancesClient({ ...o });
    this.operations = new compute.ZoneOperationsClient({ ...o });
    for (const family of Object.keys(GCE_BUCKETS) as ApiFamily[]) {
      const shape = opts.rates?.[family] ?? GCE_BUCKETS[family];
      this.gates.set(family, {
        queue: new PQueue({ concurrency: Math.max(1, Math.min(8, shape.burst)) }),
        bucket: new TokenBucket(shape, this.clock),
      });
    }
  }

  /** The project of the Application Default Credentials (the metadata server's). */
  projectId(): Promise<string> {
    return this.instances.getProjectId();
  }

  private gate<T>(family: ApiFamily, send: () => Promise<T>): Promise<T> {
    const g = this.gates.get(family)!;
    return g.queue.add(async () => {
      await g.bucket.take();
      return send();
    });
  }

  private backoff(attempt: number): number {
    const base = this.opts.retry?.baseMs ?? 250;
    const max = this.opts.retry?.maxMs ?? 20_000;
    return Math.random() * Math.min(max, base * 2 ** attempt);
  }

  /**
   * One call through its family's rate limit, retried on throttling (429, 403 rateLimitExceeded) and
   * transient failures (5xx, dropped connections). Mutations carry a requestId, so a retry after a
   * lost answer is the same request to GCE. Other errors are mapped to the provider's typed errors.
   */
  async call<T>(
    family: ApiFamily,
    what: string,
    send: () => Promise<T>,
    offering?: { instanceType: string; zone?: string },
  ): Promise<T> {
    const attempts = this.opts.retry?.attempts ?? 6;
    for (let attempt = 0; ; attempt++) {
      try {
        // As for EC2 (providers/aws/provider.ts): no write after the leadership term it serves.
        return await this.gate(family, () => {
          if (family === 'write') recheckFence(what);
          return send();
        });
      } catch (e) {
        const kind = classifyCallError(e);
        if ((kind === 'throttled' || kind === 'transient') && attempt + 1 < attempts) {
          await this.clock.sleep(this.backoff(attempt + 1));
          continue;
        }
        throw toProviderError(e, what, offering);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([
      this.migs.close(),
      this.templates.close(),
      this.regionTemplates.close(),
      this.instances.close(),
      this.operations.close(),
    ]);
  }
}
