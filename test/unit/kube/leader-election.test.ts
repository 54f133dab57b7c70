// LeaderElector's state machine on an in-memory Lease store that enforces resourceVersion like the
// apiserver, under fake time: acquisition rules, renewal, the renew deadline (also with a hung
// request), takeover detection, release on shutdown, and what run() does in each case; and, on a
// real HTTPS server, which connections a timed-out request drops. The real apiserver and real time
// are covered by test/e2e/leader-election.test.ts.
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ApiException, KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  LeaderElector,
  LeadershipLostError,
  ShutdownError,
  type LeaseApi,
  type LeaderElectorOptions,
} from '../../../src/kube/leader-election.ts';
import { ApiClientConfig } from '../../../src/kube/client.ts';
import { createLogger } from '../../../src/log.ts';
import { Metrics } from '../../../src/metrics/metrics.ts';
import { renewIfNeeded } from '../../../src/webhook/certificates.ts';
import { kubeconfigText } from './kubeconfig.ts';

const status = (code: number, reason: string) =>
  new ApiException(code, reason, JSON.stringify({ kind: 'Status', code, reason, message: reason }), {});

class FakeLeases implements LeaseApi {
  lease: V1Lease | undefined;
  private rv = 0;
  /** Every successful write, as stored (JSON, as on the wire). */
  writes: V1Lease[] = [];
  /** While set, every call fails with it. */
  failWith: unknown;
  /** While true, every call hangs until released. */
  hang = false;
  private hung: (() => void)[] = [];
  onWrite: ((l: V1Lease) => void) | undefined;

  private async gate() {
    if (this.hang) await new Promise<void>((r) => this.hung.push(r));
    if (this.failWith) throw this.failWith;
  }
  release() {
    this.hang = false;
    for (const r of this.hung.splice(0)) r();
  }
  private store(body: V1Lease): V1Lease {
    const stored = JSON.parse(JSON.stringify(body)) as V1Lease;
    stored.metadata = { ...stored.metadata, resourceVersion: String(++this.rv) };
    this.lease = stored;
    this.writes.push(stored);
    this.onWrite?.(stored);
    return JSON.parse(JSON.stringify(stored)) as V1Lease;
  }
  readNamespacedLease = async () => {
    await this.gate();
    if (!this.lease) throw status(404, 'NotFound');
    return JSON.parse(JSON.stringify(this.lease)) as V1Lease;
  };
  createNamespacedLease = async ({ body }: { body: V1Lease }) => {
    await this.gate();
    if (this.lease) throw status(409, 'AlreadyExists');
    return this.store(body);
  };
  replaceNamespacedLease = async ({ body }: { body: V1Lease }) => {
    await this.gate();
    if (!this.lease) throw status(404, 'NotFound');
    if (body.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion) throw status(409, 'Conflict');
    return this.store(body);
  };
  /** Another replica writes the lease directly. */
  foreign(holder: string, durationSeconds = 15) {
    const now = new Date().toISOString().replace('Z', '000Z');
    this.store({
      metadata: { ...this.lease?.metadata, name: 'ipp', namespace: 'ipp-system' },
      spec: {
        ...this.lease?.spec,
        holderIdentity: holder,
        leaseDurationSeconds: durationSeconds,
        renewTime: now as never,
        acquireTime: now as never,
      },
    });
  }
}

const LEASE = 15_000;
const DEADLINE = 10_000;
const RETRY = 2_000;

describe('LeaderElector', () => {
  let api: FakeLeases;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] });
    vi.spyOn(Math, 'random').mockReturnValue(0); // no jitter: retry exactly every 2 s
    api = new FakeLeases();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  const elector = (identity: string, opts: Partial<LeaderElectorOptions> = {}) =>
    new LeaderElector({
      kubeconfig: new KubeConfig(),
      namespace: 'ipp-system',
      name: 'ipp',
      identity,
      logger: createLogger('silent'),
      api,
      ...opts,
    });

  /** Runs an elector whose onLeading waits for leadership to end, then drains for `drainMs`. */
  const start = (e: LeaderElector, drainMs = 0) => {
    const stop = new AbortController();
    const seen: {
      lost?: AbortSignal;
      validUntil?: () => number;
      calls: number;
      settled: boolean;
      error?: unknown;
    } = { calls: 0, settled: false };
    const done = e.run(stop.signal, async (lost, validUntil) => {
      seen.calls++;
      seen.lost = lost;
      seen.validUntil = validUntil;
      await new Promise<void>((r) => lost.addEventListener('abort', () => r(), { once: true }));
      if (drainMs) await new Promise((r) => setTimeout(r, drainMs));
    });
    done.then(
      () => (seen.settled = true),
      (e: unknown) => {
        seen.settled = true;
        seen.error = e;
      },
    );
    return { stop, done, seen };
  };

  it('creates a missing Lease and renews it every retry period, with MicroTime timestamps', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const changes: boolean[] = [];
    const a = elector('a', { metrics, onChange: (l) => changes.push(l) });
    const run = start(a);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.isLeader()).toBe(true);
    expect(run.seen.calls).toBe(1);
    expect(api.lease!.spec).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(String(api.lease!.spec!.renewTime)).toMatch(/\.\d{6}Z$/);
    expect(String(api.lease!.spec!.acquireTime)).toMatch(/\.\d{6}Z$/);
    expect(await metrics.registry.getSingleMetricAsString('ipp_leader')).toContain('ipp_leader{identity="a"} 1');

    await vi.advanceTimersByTimeAsync(3 * RETRY);
    expect(api.writes).toHaveLength(4);
    expect(new Set(api.writes.map((w) => w.spec!.acquireTime)).size).toBe(1); // renewals keep acquireTime
    expect(changes).toEqual([true]);

    run.stop.abort();
    await vi.advanceTimersByTimeAsync(0);
    await run.done;
    expect(changes).toEqual([true, false]);
    expect(await metrics.registry.getSingleMetricAsString('ipp_leader')).toContain('ipp_leader{identity="a"} 0');
  });

  it('leaves a Lease held by a live replica alone, and takes it once it has not changed for the lease duration', async () => {
    api.foreign('b');
    const a = elector('a');
    const run = start(a);
    await vi.advanceTimersByTimeAsync(LEASE - RETRY);
    expect(a.isLeader()).toBe(false);
    api.foreign('b'); // b renews: the clock starts over
    await vi.advanceTimersByTimeAsync(LEASE - RETRY);
    expect(a.isLeader()).toBe(false);
    expect(api.lease!.spec!.holderIdentity).toBe('b');
    await vi.advanceTimersByTimeAsync(2 * RETRY + 1);
    expect(a.isLeader()).toBe(true);
    expect(api.lease!.spec).toMatchObject({ holderIdentity: 'a', leaseTransitions: 1 });
    run.stop.abort();
    await vi.advanceTimersByTimeAsync(0);
  });

  it("reports the Lease's leaseTransitions as ipp_leader_transitions_total, while standing by and after taking over", async () => {
    api.foreign('b');
    api.lease!.spec!.leaseTransitions = 4; // b took over from others four times before a started
    const metrics = new Metrics({ defaultMetrics: false });
    const transitions = async () =>
      (await metrics.leaderTransitions.get()).values.find((v) => v.labels.lease === 'ipp')?.value;
    const a = elector('a', { metrics });
    const run = start(a);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.isLeader()).toBe(false);
    expect(await transitions()).toBe(4);
    await vi.advanceTimersByTimeAsync(LEASE + RETRY + 1); // b stopped renewing: a takes over
    expect(a.isLeader()).toBe(true);
    expect(api.lease!.spec!.leaseTransitions).toBe(5);
    expect(await transitions()).toBe(5);
    await vi.advanceTimersByTimeAsync(3 * RETRY); // renewals are no transitions
    expect(await transitions()).toBe(5);
    run.stop.abort();
    await vi.advanceTimersByTimeAsync(0);
  });

  it('takes a released Lease (empty holder) at once', async () => {
    api.foreign('', 1);
    const a = elector('a');
    const run = start(a);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.isLeader()).toBe(true);
    run.stop.abort();
    await vi.advanceTimersByTimeAsync(0);
  });

  it('lets only one of two simultaneous candidates win (resourceVersion conflicts)', async () => {
    const a = elector('a');
    const b = elector('b');
    const ra = start(a);
    const rb = start(b);
    for (let i = 0; i < 20; i++) {
      await vi.advanceTimersByTimeAsync(RETRY / 2);
      expect(Number(a.isLeader()) + Number(b.isLeader())).toBe(1);
    }
    ra.stop.abort();
    rb.stop.abort();
    await vi.advanceTimersByTimeAsync(0);
  });

  it('gives up at the renew deadline when renewals fail, and run() rejects', async () => {
    const a = elector('a');
    const run = start(a);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.isLeader()).toBe(true);
    api.failWith = status(500, 'InternalError');
    await vi.advanceTimersByTimeAsync(DEADLINE - 1);
    expect(a.isLeader()).toBe(true);
    expect(run.seen.lost!.aborted).toBe(false);
    // The term's end, for writes to check themselves: the deadline, then past once lost.
    expect(run.seen.validUntil!() - performance.now()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(run.seen.validUntil!()).toBeLessThanOrEqual(performance.now());
    expect(a.isLeader()).toBe(false);
    expect(run.seen.lost!.aborted).toBe(true);
    expect(run.seen.lost!.reason).toBeInstanceOf(LeadershipLostError);
    await vi.advanceTimersByTimeAsync(0);
    expect(run.seen.error).toBeInstanceOf(LeadershipLostError);
    // No release after a loss: the lease may already be someone else's.
    expect(api.lease!.spec!.holderIdentity).toBe('a');
  });

  it('gives up at the renew deadline even while a renewal request hangs', async () => {
    const a = elector('a');
    const run = start(a);
    await vi.advanceTimersByTimeAsync(0);
    api.hang = true;
    await vi.advanceTimersByTimeAsync(DEADLINE);
    expect(a.isLeader()).toBe(false);
    expect(run.seen.lost!.aborted).toBe(true);
    api.release();
    await vi.advanceTimersByTimeAsync(0);
  });

  it('gives up at once when it finds another holder in the Lease', async () => {
    const a = elector('a');
    const run = start(a);
    await vi.advanceTimersByTimeAsync(0);
    api.foreign('b');
    await vi.advanceTimersByTimeAsync(RETRY);
    expect(a.isLeader()).toBe(false);
    expect(run.seen.lost!.reason).toBeInstanceOf(LeadershipLostError);
    await vi.advanceTimersByTimeAsync(0);
    expect(run.seen.error).toBeInstanceOf(LeadershipLostError);
    expect(api.lease!.spec!.holderIdentity).toBe('b');
  });

  it('campaigns again after a loss when reacquire is set', async () => {
    const a = elector('a', { reacquire: true });
    const run = start(a);
    await vi.advanceTimersByTimeAsync(0);
    api.failWith = status(503, 'ServiceUnavailable');
    await vi.advanceTimersByTimeAsync(DEADLINE + 1);
    expect(a.isLeader()).toBe(false);
    api.failWith = undefined;
    // Our own stale record: valid for another lease duration from when we last saw it change.
    await vi.advanceTimersByTimeAsync(LEASE);
    expect(a.isLeader()).toBe(true);
    expect(run.seen.calls).toBe(2);
    expect(run.seen.settled).toBe(false);
    run.stop.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(run.seen.error).toBeUndefined();
  });

  it('on shutdown: aborts leadershipLost, keeps renewing while work drains, then stops leading and releases', async () => {
    const a = elector('a');
    const run = start(a, 5_000);
    await vi.advanceTimersByTimeAsync(0);
    let leaderAtRelease: boolean | undefined;
    api.onWrite = (l) => {
      if (l.spec?.holderIdentity === '') leaderAtRelease = a.isLeader();
    };
    run.stop.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(run.seen.lost!.reason).toBeInstanceOf(ShutdownError);
    const writes = api.writes.length;
    await vi.advanceTimersByTimeAsync(4_500);
    expect(api.writes.length).toBeGreaterThan(writes); // still renewing during the drain
    expect(api.lease!.spec!.holderIdentity).toBe('a');
    expect(run.seen.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(600);
    await run.done;
    expect(api.lease!.spec).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
    expect(leaderAtRelease).toBe(false);
    expect(a.isLeader()).toBe(false);
  });

  it('releases and settles like onLeading when it returns or throws by itself', async () => {
    const a = elector('a');
    const boom = new Error('controller crashed');
    const done = a.run(new AbortController().signal, async () => {
      await new Promise((r) => setTimeout(r, 3_000));
      throw boom;
    });
    const outcome = done.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(await outcome).toBe(boom);
    expect(api.lease!.spec!.holderIdentity).toBe('');
    expect(a.isLeader()).toBe(false);
  });

  it('returns without leading when stopped while campaigning', async () => {
    api.foreign('b');
    const a = elector('a');
    const run = start(a);
    await vi.advanceTimersByTimeAsync(RETRY * 2);
    run.stop.abort();
    await vi.advanceTimersByTimeAsync(0);
    await run.done;
    expect(run.seen.calls).toBe(0);
    expect(api.lease!.spec!.holderIdentity).toBe('b');
  });

  it('rejects timings that would allow two leaders', () => {
    expect(() => elector('a', { leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(
      /greater than renewDeadline/,
    );
    expect(() => elector('a', { renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(/renewDeadlineMs/);
    expect(() => elector('')).toThrow(/identity/);
  });
});

describe("LeaderElector's connection", () => {
  /** An HTTPS API server whose every request `answer` handles, and a client of it. */
  async function apiServer(answer: Parameters<typeof createServer>[1]) {
    const server = (await renewIfNeeded(undefined, { dnsNames: [], ipAddresses: ['127.0.0.1'] }, new Date()))!;
    const https = createServer({ cert: server.cert, key: server.key }, answer);
    const open = new Set<unknown>();
    https.on('secureConnection', (socket) => {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
    });
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    const base = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
    const kc = new ApiClientConfig({ qps: 0, burst: 1 });
    kc.loadFromString(kubeconfigText({ server: base, ca: server.caBundle }));
    const close = async () => {
      await kc.close();
      https.closeAllConnections();
      await new Promise((r) => https.close(r));
    };
    return { base, kc, open, close };
  }

  const electorOf = (kc: KubeConfig, renewDeadlineMs: number) =>
    new LeaderElector({
      kubeconfig: kc,
      namespace: 'ipp-system',
      name: 'ipp',
      identity: 'a',
      leaseDurationMs: 2_000,
      renewDeadlineMs,
      retryPeriodMs: 100,
      logger: createLogger('silent'),
    });

  it("drops its own connection after a timed-out request, never the controller's shared pool", async () => {
    // Lease requests hang, as on a half-dead connection; everything else is answered.
    const leaseRequests: string[] = [];
    const api = await apiServer((req, res) => {
      if (req.url?.includes('/leases')) leaseRequests.push(req.url);
      else res.end('{}');
    });
    const stop = new AbortController();
    const run = electorOf(api.kc, 500).run(stop.signal, async () => {});
    try {
      // The first attempt timed out (500 ms) and the elector tried again on a new connection of its own.
      await vi.waitFor(() => expect(leaseRequests.length).toBeGreaterThanOrEqual(2), { timeout: 3_000 });
      const url = `${api.base}/api/v1/pods`;
      const { dispatcher } = await api.kc.credentials('GET', url);
      const res = await request(url, { dispatcher: dispatcher! });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    } finally {
      stop.abort();
      await run;
      await api.close();
    }
  });

  it('closes its own connections when run() ends, instead of leaving them open for the keep-alive time', async () => {
    // A Lease store of one: GET finds none, POST creates it, PUT (the release) replaces it.
    let stored: V1Lease | undefined;
    let rv = 0;
    const api = await apiServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.method === 'GET' && !stored) {
          res.statusCode = 404;
          res.end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound' }));
          return;
        }
        if (req.method === 'POST' || req.method === 'PUT') {
          stored = JSON.parse(body) as V1Lease;
          stored.metadata = { ...stored.metadata, resourceVersion: String(++rv) };
        }
        res.end(JSON.stringify(stored));
      });
    });
    try {
      await electorOf(api.kc, 1_000).run(new AbortController().signal, async () => {});
      // Acquired, led, released: its connection was used, and nothing else holds one.
      expect(stored?.spec?.holderIdentity).toBe('');
      await vi.waitFor(() => expect(api.open.size).toBe(0), { timeout: 3_000 });
    } finally {
      await api.close();
    }
  });
});
