// Leader election against the testbed's real apiserver, with client-go's default timings
// (15 s / 10 s / 2 s): exactly one leader; SIGTERM hands over in seconds because the lease is
// released; a leader that vanishes without releasing (its connection cut) is replaced within the
// lease duration, and only after it has stopped believing it leads. Two electors run in-process,
// each with its own KubeConfig, while a sampler checks every 20 ms that they never both lead.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { LeaderElector, LeadershipLostError, ShutdownError } from '../../src/kube/leader-election.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';

const LEASE_MS = 15_000;
const RENEW_DEADLINE_MS = 10_000;
const RETRY_MS = 2_000;

function kubeconfig(server?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfig'));
  if (!server) return kc;
  const cfg = JSON.parse(kc.exportConfig()) as { clusters: { cluster: { server: string } }[] };
  for (const c of cfg.clusters) c.cluster.server = server;
  const moved = new KubeConfig();
  moved.loadFromString(JSON.stringify(cfg));
  return moved;
}

/** A TCP pass-through to the apiserver whose death looks, to the elector behind it, like a crashed network. */
async function proxy(target: URL): Promise<{ server: string; connections(): number; kill(): void }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const srv: Server = createServer((client) => {
    accepted++;
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  return {
    server: `https://127.0.0.1:${port}`,
    connections: () => accepted,
    kill() {
      srv.close();
      for (const s of sockets) s.destroy();
    },
  };
}

interface Candidate {
  elector: LeaderElector;
  stop: AbortController;
  done: Promise<void>;
  metrics: Metrics;
  /** Reason of the leadershipLost signal each time it was aborted. */
  lostReasons: unknown[];
  ledAt: number[];
  stoppedAt: number[];
}

describe('leader election on a real Lease', () => {
  let c: Clients;
  let ns: string;
  let leases: CoordinationV1Api;
  const log = createLogger('warn');
  const running: Candidate[] = [];
  let bothLed = 0;
  let sampler: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    c = clients();
    ns = await namespace(c, 'leader');
    leases = c.kc.makeApiClient(CoordinationV1Api);
  });
  afterAll(async () => {
    clearInterval(sampler);
    for (const r of running) r.stop.abort();
    await Promise.allSettled(running.map((r) => r.done));
    await c.core.deleteNamespace({ name: ns });
  });

  function sample(a: Candidate, b: Candidate) {
    clearInterval(sampler);
    bothLed = 0;
    sampler = setInterval(() => {
      if (a.elector.isLeader() && b.elector.isLeader()) bothLed++;
    }, 20);
  }

  /** Runs an elector whose onLeading works until leadership ends, then takes `drainMs` to finish. */
  function candidate(lease: string, identity: string, kc: KubeConfig, drainMs = 0): Candidate {
    const metrics = new Metrics({ defaultMetrics: false });
    const elector = new LeaderElector({
      kubeconfig: kc,
      namespace: ns,
      name: lease,
      identity,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: RENEW_DEADLINE_MS,
      retryPeriodMs: RETRY_MS,
      logger: log,
      metrics,
    });
    const stop = new AbortController();
    const cand: Candidate = {
      elector,
      metrics,
      stop,
      done: Promise.resolve(),
      lostReasons: [],
      ledAt: [],
      stoppedAt: [],
    };
    cand.done = elector.run(stop.signal, async (lost) => {
      cand.ledAt.push(Date.now());
      await new Promise<void>((r) => lost.addEventListener('abort', () => r(), { once: true }));
      cand.lostReasons.push(lost.reason);
      await new Promise((r) => setTimeout(r, drainMs));
      cand.stoppedAt.push(Date.now());
    });
    cand.done.catch(() => {}); // awaited by the tests; don't let an early rejection go unhandled
    running.push(cand);
    return cand;
  }

  /** ipp_leader_transitions_total{lease} as this candidate's registry holds it. */
  const transitions = async (cand: Candidate, lease: string) =>
    (await cand.metrics.leaderTransitions.get()).values.find((v) => v.labels.lease === lease)?.value;

  const holder = async (lease: string) =>
    (await leases.readNamespacedLease({ name: lease, namespace: ns })).spec?.holderIdentity;

  it('elects exactly one leader, and on SIGTERM releases the lease so the other leads within seconds', async () => {
    const lease = `sigterm-${suffix()}`;
    // Started together on a Lease that does not exist yet: both race to create it.
    const a = candidate(lease, 'replica-a', kubeconfig(), 1_000);
    const b = candidate(lease, 'replica-b', kubeconfig(), 1_000);
    sample(a, b);

    const [leader, standby] = await eventually(
      'one leader',
      async () => {
        const leading = [a, b].filter((x) => x.elector.isLeader());
        expect(leading).toHaveLength(1);
        return leading[0] === a ? [a, b] : [b, a];
      },
      30_000,
      100,
    );
    const leaderId = leader === a ? 'replica-a' : 'replica-b';
    expect(await holder(lease)).toBe(leaderId);

    // Several renew periods later the same replica still leads, alone, and has renewed the lease.
    const before = (await leases.readNamespacedLease({ name: lease, namespace: ns })).spec!;
    await new Promise((r) => setTimeout(r, 3 * RETRY_MS));
    const after = (await leases.readNamespacedLease({ name: lease, namespace: ns })).spec!;
    expect(leader.elector.isLeader()).toBe(true);
    expect(standby.elector.isLeader()).toBe(false);
    expect(standby.ledAt).toHaveLength(0);
    expect(after.holderIdentity).toBe(leaderId);
    expect(new Date(String(after.renewTime)).getTime()).toBeGreaterThan(new Date(String(before.renewTime)).getTime());
    // MicroTime round-trips with microsecond precision.
    expect(String(after.renewTime)).toMatch(/\.\d{6}Z$/);
    expect(after.leaseDurationSeconds).toBe(LEASE_MS / 1000);
    // Both read the new Lease's count: no transition yet.
    expect(await transitions(leader, lease)).toBe(0);
    expect(await transitions(standby, lease)).toBe(0);

    const sigterm = Date.now();
    leader.stop.abort();
    await leader.done; // resolves: a shutdown is not an error
    expect(leader.lostReasons[0]).toBeInstanceOf(ShutdownError);
    expect(leader.elector.isLeader()).toBe(false);

    // Without the release the standby would wait out the 15 s lease; with it, one retry period.
    await eventually(
      'the standby to take over',
      async () => expect(standby.elector.isLeader()).toBe(true),
      LEASE_MS,
      50,
    );
    const handover = Date.now() - sigterm;
    expect(handover).toBeLessThan(LEASE_MS - 5_000);
    // The old leader finished its in-flight work (1 s drain) before the new one started.
    expect(standby.ledAt[0]!).toBeGreaterThanOrEqual(leader.stoppedAt[0]!);
    expect(await holder(lease)).toBe(leader === a ? 'replica-b' : 'replica-a');
    const spec = (await leases.readNamespacedLease({ name: lease, namespace: ns })).spec!;
    expect(spec.leaseTransitions).toBe(1);
    expect(spec.leaseDurationSeconds).toBe(LEASE_MS / 1000);
    expect(bothLed).toBe(0);
    // The new leader's ipp_leader_transitions_total follows the Lease (IppLeaderFlapping reads it).
    expect(await transitions(standby, lease)).toBe(1);

    standby.stop.abort();
    await standby.done;
    // The last leader released too: holder cleared, 1 s duration, as client-go's ReleaseOnCancel.
    const released = (await leases.readNamespacedLease({ name: lease, namespace: ns })).spec!;
    expect(released.holderIdentity ?? '').toBe('');
    expect(released.leaseDurationSeconds).toBe(1);
    expect(bothLed).toBe(0);
  });

  it('replaces a leader that stops renewing without releasing, only after it has stopped leading', async () => {
    const lease = `crash-${suffix()}`;
    const link = await proxy(new URL(kubeconfig().getCurrentCluster()!.server));
    const doomed = candidate(lease, 'doomed', kubeconfig(link.server));
    await eventually(
      'the doomed replica to lead',
      async () => expect(doomed.elector.isLeader()).toBe(true),
      30_000,
      50,
    );
    const survivor = candidate(lease, 'survivor', kubeconfig());
    sample(doomed, survivor);

    // A live leader keeps the lease: the standby does not take it.
    await new Promise((r) => setTimeout(r, 3 * RETRY_MS));
    expect(survivor.elector.isLeader()).toBe(false);
    expect(await holder(lease)).toBe('doomed');

    // Every request of the elector rode one kept-alive connection of its own, not one per renewal.
    expect(link.connections()).toBe(1);

    const crash = Date.now();
    link.kill(); // from now on every renewal fails and the lease cannot be released

    await expect(doomed.done).rejects.toBeInstanceOf(LeadershipLostError);
    const lostAfter = Date.now() - crash;
    expect(doomed.lostReasons[0]).toBeInstanceOf(LeadershipLostError);
    expect(doomed.elector.isLeader()).toBe(false);
    // It gave up at its renew deadline, counted from its last renewal (at most one period before the cut).
    expect(lostAfter).toBeLessThanOrEqual(RENEW_DEADLINE_MS + 1_000);
    expect(lostAfter).toBeGreaterThanOrEqual(RENEW_DEADLINE_MS - RETRY_MS - 500);

    await eventually(
      'the survivor to take over',
      async () => expect(survivor.elector.isLeader()).toBe(true),
      LEASE_MS + 10_000,
      50,
    );
    const tookOverAfter = Date.now() - crash;
    // It waited for the lease to expire (nobody released it) but no longer than one more retry.
    expect(tookOverAfter).toBeGreaterThanOrEqual(LEASE_MS - 1.2 * RETRY_MS - 500);
    expect(tookOverAfter).toBeLessThanOrEqual(LEASE_MS + 1.2 * RETRY_MS + 2_000);
    expect(survivor.ledAt[0]!).toBeGreaterThan(doomed.stoppedAt[0]!);
    expect(await holder(lease)).toBe('survivor');
    expect(bothLed).toBe(0);
  });
});
