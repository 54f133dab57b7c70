// Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics and defaults
// (15 s lease, 10 s renew deadline, 2 s retry period), so only one replica reconciles at a time.
//
// Safety rests on renewDeadline < leaseDuration: the leader gives up (aborts `leadershipLost`) at
// most renewDeadline after its last successful renewal began, while a candidate takes over only
// leaseDuration after it last saw the Lease change, on its own monotonic clock (as client-go does, so
// clock skew between nodes does not matter). The difference is the margin for a paused process.
//
// Renewals must not queue behind the controller's own traffic. The elector therefore builds its API
// client from the KubeConfig with its own configuration: credentials are still taken from the
// KubeConfig on every request (rotated service-account tokens keep working), but every request goes
// through one dedicated undici Agent (its own keep-alive connection, not the pool that watches and
// reconciles use), carries its own timeout bounded by the renew deadline, and passes through no
// client-side queue or rate limiter of the controller's.
import {
  CoordinationV1Api,
  createConfiguration,
  ServerConfiguration,
  V1MicroTime,
  type KubeConfig,
  type RequestContext,
  type SecurityAuthentication,
  type V1Lease,
} from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { ApiClientConfig } from './client.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { describeError, isAlreadyExists, isConflict, isNotFound } from './errors.ts';

export interface LeaderElectorOptions {
  kubeconfig: KubeConfig;
  namespace: string;
  name: string;
  /** Written as holderIdentity: the pod name (Downward API), unique per replica. */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  logger: Logger;
  onChange?: (leading: boolean) => void;
  /** Sets ipp_leader{identity} as leadership changes, ipp_leader_transitions_total at every Lease read. */
  metrics?: Pick<Metrics, 'leader' | 'observeLeaseTransitions'>;
  /**
   * After losing the lease (renew deadline passed), campaign again instead of rejecting run().
   * Default false: like client-go users, the process should exit and start clean, because its
   * caches and in-memory state belonged to a leadership that is over.
   */
  reacquire?: boolean;
  /** Replaces the dedicated API client (unit tests); the KubeConfig is then not used. */
  api?: LeaseApi;
}

/** The three Lease calls the elector makes. */
export type LeaseApi = Pick<
  CoordinationV1Api,
  'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'
>;

/** Why `leadershipLost` was aborted, or run() rejected, when the lease could not be kept. */
export class LeadershipLostError extends Error {
  override name = 'LeadershipLostError';
}

/** Reason of `leadershipLost` when it was aborted because run's own signal was (shutdown). */
export class ShutdownError extends Error {
  override name = 'ShutdownError';
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

const monotonic = () => performance.now();

/** Runs while this replica leads; `leadershipLost` aborts when it ends, `validUntil` says when it must at the latest. */
export type OnLeading = (leadershipLost: AbortSignal, validUntil: () => number) => Promise<void>;

/**
 * Applies the KubeConfig's credentials, then routes the request through the elector's own
 * connection and deadline, kept and reused so renewals ride one warm connection instead of a TLS
 * handshake every 2 s, and dropped after a timeout without touching anyone else's.
 */
class DedicatedConnection implements SecurityAuthentication {
  private readonly kc: KubeConfig;
  private dispatcher: unknown;
  /** The shared pool this.dispatcher was built from (ApiClientConfig). */
  private builtFrom: unknown;
  /** Deadline of the request being made; the elector makes one request at a time. */
  signal: AbortSignal | undefined;

  constructor(kc: KubeConfig) {
    this.kc = kc;
  }

  getName(): string {
    return 'ipp-leader-election';
  }

  async applySecurityAuthentication(ctx: RequestContext): Promise<void> {
    await this.kc.applySecurityAuthentication(ctx);
    ctx.setHeaderParam('User-Agent', 'ipp-controller/leader-election');
    const given = ctx.getDispatcher();
    if (this.kc instanceof ApiClientConfig) {
      // Its pool is every request's: the elector builds connections of its own from it, anew when
      // the pool is (rotated TLS material), so that reset() closes only the elector's.
      if (this.dispatcher === undefined || this.builtFrom !== given) {
        this.reset();
        this.builtFrom = given;
        this.dispatcher = this.kc.ownConnections(given);
      }
    } else if (this.dispatcher === undefined) {
      // client-node builds a dispatcher per request: the first is kept. undefined only for
      // plain-HTTP clusters without TLS options (local development).
      this.dispatcher = given;
    }
    if (this.dispatcher !== undefined)
      ctx.setDispatcher(this.dispatcher as Parameters<RequestContext['setDispatcher']>[0]);
    if (this.signal) ctx.setSignal(this.signal);
  }

  /** Forget the connection after a failure: it may be half-dead (e.g. after a network partition). */
  reset(): void {
    const d = this.dispatcher as { close?: () => Promise<void> } | undefined;
    this.dispatcher = undefined;
    d?.close?.().catch(() => {});
  }
}

export class LeaderElector {
  private readonly opts: Required<Pick<LeaderElectorOptions, 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'>> &
    LeaderElectorOptions;
  private readonly api: LeaseApi;
  private readonly conn: DedicatedConnection;
  private readonly log: Logger;
  private leading = false;
  /** The Lease as last read or written, and when (monotonic) its content last changed. */
  private observed: V1Lease | undefined;
  private observedAt = 0;

  constructor(opts: LeaderElectorOptions) {
    this.opts = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...opts };
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.opts;
    if (!(leaseDurationMs > renewDeadlineMs)) throw new Error('leaseDurationMs must be greater than renewDeadlineMs');
    if (!(renewDeadlineMs > retryPeriodMs * 1.2))
      throw new Error('renewDeadlineMs must be greater than 1.2 × retryPeriodMs');
    if (leaseDurationMs < 1000)
      throw new Error('leaseDurationMs must be at least 1000 (the Lease counts whole seconds)');
    if (!opts.identity) throw new Error('identity must not be empty');

    this.conn = new DedicatedConnection(opts.kubeconfig);
    if (opts.api) {
      this.api = opts.api;
    } else {
      const cluster = opts.kubeconfig.getCurrentCluster();
      if (!cluster) throw new Error('kubeconfig has no current cluster');
      this.api = new CoordinationV1Api(
        createConfiguration({
          baseServer: new ServerConfiguration(cluster.server, {}),
          authMethods: { default: this.conn },
        }),
      );
    }
    this.log = opts.logger.child({
      component: 'leader-election',
      lease: `${opts.namespace}/${opts.name}`,
      identity: opts.identity,
    });
    opts.metrics?.leader.set({ identity: opts.identity }, 0);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until this replica holds the lease, then runs `onLeading` with a signal that is
   * aborted the moment leadership ends: when a renewal has not succeeded within renewDeadline
   * (reason LeadershipLostError) or when `signal` is aborted (reason ShutdownError).
   *
   * On `signal` abort (SIGTERM): leadershipLost is aborted, run waits for onLeading to settle (still
   * renewing, so no other replica starts while in-flight work finishes), then releases the lease
   * (holderIdentity cleared, leaseDurationSeconds 1, as client-go's ReleaseOnCancel) so a standby
   * takes over within its next retry period, and resolves.
   *
   * On loss: rejects with LeadershipLostError once onLeading has settled (unless `reacquire`).
   * If onLeading settles by itself, the lease is released and run settles like it.
   *
   * `validUntil` is when (performance.now()) the term ends unless renewed. The signal's abort is a
   * timer's, and a process frozen past it (a paused VM, SIGSTOP) runs the I/O callbacks it thawed
   * with before any timer: a write must also check the clock.
   */
  async run(signal: AbortSignal, onLeading: OnLeading): Promise<void> {
    try {
      while (!signal.aborted) {
        if (!(await this.acquire(signal))) return;
        const outcome = await this.lead(signal, onLeading);
        // Losing the lease while shutting down anyway is not worth an error.
        if (outcome === 'lost' && signal.aborted) return;
        if (outcome === 'lost' && this.opts.reacquire) continue;
        if (outcome === 'lost') throw new LeadershipLostError(`lost lease ${this.opts.namespace}/${this.opts.name}`);
        return;
      }
    } finally {
      // The elector's connections are its own (not the shared pool kc.close() ends): left open, they
      // would hold sockets on the API server for the keep-alive time after the elector is done.
      this.conn.reset();
    }
  }

  /** Retries every retryPeriod (×1.2 jitter) until acquired (true) or aborted (false). */
  private async acquire(signal: AbortSignal): Promise<boolean> {
    this.log.info('campaigning for leadership');
    let lastHolder: string | undefined;
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew(signal, this.opts.renewDeadlineMs)) {
        this.log.info('acquired lease, now leading');
        return true;
      }
      const holder = this.observed?.spec?.holderIdentity;
      if (holder && holder !== lastHolder) this.log.info({ leader: holder }, 'another replica is leading');
      lastHolder = holder;
      await sleep(this.opts.retryPeriodMs * (1 + Math.random() * 0.2), signal);
    }
    return false;
  }

  private async lead(signal: AbortSignal, onLeading: OnLeading): Promise<'lost' | 'done'> {
    const { renewDeadlineMs, retryPeriodMs } = this.opts;
    const lost = new AbortController();
    const stopRenewing = new AbortController();
    let lastRenewStart = this.lastAttemptStart;
    let deadline: NodeJS.Timeout | undefined;

    // Set on loss even when `lost` was already aborted for shutdown: a drain that outlives the
    // renew deadline must not go on believing (or reporting) that it leads.
    let leaseLost = false;
    const lose = (why: string) => {
      if (leaseLost) return;
      leaseLost = true;
      this.setLeading(false);
      this.log.error({ why }, 'leadership lost: stopping reconciliation');
      if (!lost.signal.aborted) lost.abort(new LeadershipLostError(why));
    };
    // A timer rather than a check after each attempt, so a request hanging in the network cannot
    // postpone giving up past the deadline.
    const armDeadline = () => {
      clearTimeout(deadline);
      deadline = setTimeout(
        () => lose(`no successful renewal within ${renewDeadlineMs} ms`),
        lastRenewStart + renewDeadlineMs - monotonic(),
      );
    };
    armDeadline();
    this.setLeading(true);

    const onShutdown = () => {
      if (!lost.signal.aborted) lost.abort(new ShutdownError('shutting down'));
    };
    signal.addEventListener('abort', onShutdown, { once: true });
    if (signal.aborted) onShutdown();

    const renewing = (async () => {
      while (!stopRenewing.signal.aborted) {
        await sleep(retryPeriodMs, stopRenewing.signal);
        if (stopRenewing.signal.aborted) return;
        // After a loss nobody may write the lease as its holder any more.
        if (leaseLost) return;
        const start = monotonic();
        const remaining = lastRenewStart + renewDeadlineMs - start;
        if (remaining <= 0) return;
        if (await this.tryAcquireOrRenew(stopRenewing.signal, remaining)) {
          lastRenewStart = start;
          if (this.leading) armDeadline();
        } else if (this.observed?.spec?.holderIdentity && this.observed.spec.holderIdentity !== this.opts.identity) {
          // Someone else holds it (we were too slow once): waiting for the deadline would only add
          // time with two replicas believing they lead.
          lose(`lease taken over by ${this.observed.spec.holderIdentity}`);
          return;
        }
      }
    })();

    let result: { ok: true } | { ok: false; error: unknown };
    try {
      await onLeading(lost.signal, () => (leaseLost ? -Infinity : lastRenewStart + renewDeadlineMs));
      result = { ok: true };
    } catch (e) {
      result = { ok: false, error: e };
    }
    signal.removeEventListener('abort', onShutdown);
    stopRenewing.abort();
    await renewing;
    clearTimeout(deadline);

    if (leaseLost) {
      if (!result.ok) this.log.error({ err: result.error }, 'onLeading failed after leadership was lost');
      return 'lost';
    }
    // Stop believing we lead before the lease is released: from then on another replica may lead.
    this.setLeading(false);
    if (!lost.signal.aborted) lost.abort(new ShutdownError('onLeading returned'));
    await this.release();
    if (!result.ok) throw result.error;
    return 'done';
  }

  /** Monotonic start of the last tryAcquireOrRenew; a success counts from when it began. */
  private lastAttemptStart = 0;

  /** One read-modify-write of the Lease with optimistic concurrency; true when we hold it after. */
  private async tryAcquireOrRenew(signal: AbortSignal, timeoutMs: number): Promise<boolean> {
    const { namespace, name, identity, leaseDurationMs } = this.opts;
    const start = (this.lastAttemptStart = monotonic());
    const now = new V1MicroTime();
    const durationSeconds = Math.ceil(leaseDurationMs / 1000);
    const call = AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, Math.floor(timeoutMs)))]);
    this.conn.signal = call;
    try {
      let lease: V1Lease;
      try {
        lease = await this.api.readNamespacedLease({ name, namespace });
      } catch (e) {
        if (!isNotFound(e)) throw e;
        const created = await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        this.observe(created, start);
        return true;
      }
      this.observe(lease, start);

      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const heldByUs = holder === identity;
      // Judged against when *we* saw the record change, never against the holder's clock.
      const valid = this.observedAt + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 > monotonic();
      if (holder !== '' && !heldByUs && valid) return false;

      const body: V1Lease = {
        ...lease,
        spec: {
          ...spec,
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: now,
          acquireTime: heldByUs && spec.acquireTime ? spec.acquireTime : now,
          leaseTransitions: heldByUs ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
        },
      };
      // metadata.resourceVersion is carried over from the read: a concurrent writer makes this a 409.
      const updated = await this.api.replaceNamespacedLease({ name, namespace, body });
      this.observe(updated, start);
      return true;
    } catch (e) {
      if (signal.aborted) return false;
      const timedOut = call.aborted;
      if (timedOut) this.conn.reset();
      const msg = this.leading ? 'failed to renew lease' : 'failed to acquire lease';
      const err = timedOut ? `timed out after ${Math.floor(timeoutMs)} ms` : describeError(e);
      // Losing a write race to another candidate is routine, not worth a warning.
      if (!this.leading && (isConflict(e) || isAlreadyExists(e))) this.log.debug({ err }, msg);
      else this.log.warn({ err }, msg);
      return false;
    } finally {
      this.conn.signal = undefined;
    }
  }

  private observe(lease: V1Lease, at: number): void {
    if (lease.metadata?.resourceVersion !== this.observed?.metadata?.resourceVersion) this.observedAt = at;
    this.observed = lease;
    this.opts.metrics?.observeLeaseTransitions(this.opts.name, lease.spec?.leaseTransitions ?? 0);
  }

  /** Hands the lease over: holder cleared and 1 s duration, so standbys need not wait out 15 s. */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.opts;
    const lease = this.observed;
    if (!lease || lease.spec?.holderIdentity !== identity) return;
    const now = new V1MicroTime();
    this.conn.signal = AbortSignal.timeout(this.opts.renewDeadlineMs);
    try {
      const updated = await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
        },
      });
      this.observe(updated, monotonic());
      this.log.info('released lease');
    } catch (e) {
      // A conflict means someone else already wrote it; otherwise the lease simply expires.
      this.log.warn({ err: describeError(e) }, 'failed to release lease; standbys take over when it expires');
    } finally {
      this.conn.signal = undefined;
    }
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.opts.metrics?.leader.set({ identity: this.opts.identity }, leading ? 1 : 0);
    try {
      this.opts.onChange?.(leading);
    } catch (e) {
      this.log.error({ err: e }, 'onChange callback threw');
    }
  }
}
