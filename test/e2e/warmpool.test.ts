// Warm pools and one-shot instances on the real testbed (simulated provider, kwok nodes, the real
// scheduler and Job controller): the pool fills and refills, bursts take warm instances first,
// maxInstances caps pool + busy, maxAge replaces one at a time, a burst larger than the pool launches one
// instance per pod and never overshoots the pool, a SIGKILL during a refill leaves no extra instance,
// and a one-shot instance goes as soon as its Job pod completes, never hosting another.
import { EventsV1Api, type V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, suffix, type Clients } from './support/cluster.ts';
import { createClass, getClass, listInstances, metric, useIppEnvironment } from './support/ipp.ts';
import { watchInstanceHistory } from '../testbed/instance-history.ts';
import {
  API_VERSION,
  GROUP,
  NODE_CLASS_LABEL,
  POD_INSTANCE_ANNOTATION,
  VERSION,
  WARM_LABEL,
} from '../../src/api/names.ts';
import type { Instance, InstanceClassSpec } from '../../src/api/types.ts';

const pod = (name: string, cls: string): V1Pod => ({
  metadata: { name, labels: { 'ipp-class': cls } },
  spec: { containers: [{ name: 'main', image: 'busybox' }] },
});

const live = (i: Instance) => !i.metadata.deletionTimestamp;
const warm = (i: Instance) => live(i) && i.metadata.labels?.[WARM_LABEL] === 'true';
const warmReady = (i: Instance) => warm(i) && i.status?.phase === 'Ready';

describe('warm pools and one-shot instances', () => {
  const env = useIppEnvironment('warm');
  let c: Clients;
  let ns: string;
  const newClass = async (prefix: string, spec: Partial<InstanceClassSpec>) => {
    const name = `${prefix}-${suffix()}`;
    await createClass(c, name, { instanceTypes: ['sim.small'], simulated: { bootDelay: '3s' }, ...spec });
    env.classes.push(name);
    return name;
  };
  const podsOf = async (cls: string) =>
    (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `ipp-class=${cls}` })).items;
  const cloudInstances = async (cls: string) =>
    (
      await c.core.listNamespacedConfigMap({ namespace: env.system, labelSelector: `ipp.dev/cluster=${env.cluster}` })
    ).items
      .map((cm) => JSON.parse(cm.data!.instance!) as { tags: Record<string, string> })
      .filter((r) => r.tags['ipp.dev/class'] === cls);
  const poolReady = (cls: string, size: number, timeoutMs = 60_000) =>
    eventually(
      `${size} warm Ready instances of ${cls}`,
      async () => {
        const all = await listInstances(c, cls);
        expect(all.filter(warmReady)).toHaveLength(size);
        expect(all.filter(warm)).toHaveLength(size);
        return all;
      },
      timeoutMs,
    );
  const allRunning = (cls: string, n: number, timeoutMs = 60_000) =>
    eventually(
      `${n} pods of ${cls} running`,
      async () => {
        const list = await podsOf(cls);
        expect(list.filter((p) => p.status?.phase === 'Running')).toHaveLength(n);
        return list;
      },
      timeoutMs,
    );
  /** The note of the pod's Provisioning Event: which instance it got, warm or new. */
  const provisioningNote = async (name: string) =>
    eventually(`the Provisioning Event of ${name}`, async () => {
      const events = await c.kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns });
      const e = events.items.find((x) => x.regarding?.name === name && x.reason === 'Provisioning');
      expect(e).toBeDefined();
      return e!.note!;
    });
  /** Isolation: every non-finished pod on a node of the class is of the class, one workload per node. */
  const isolationHolds = async (cls: string) => {
    const nodes = (await c.core.listNode({ labelSelector: `${NODE_CLASS_LABEL}=${cls}` })).items;
    const pods = (await c.core.listPodForAllNamespaces()).items.filter(
      (p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed',
    );
    for (const n of nodes) {
      const on = pods.filter((p) => p.spec?.nodeName === n.metadata!.name);
      expect(on.length, `pods on ${n.metadata!.name}`).toBeLessThanOrEqual(1);
      for (const p of on) expect(p.metadata?.labels?.['ipp-class']).toBe(cls);
    }
    expect(await metric(env.ipp!, 'ipp_isolation_violations_total', { class: cls })).toBeUndefined();
  };

  beforeAll(async () => {
    ({ c, ns } = env);
    await env.start();
  });

  it.each([
    [{ oneShot: true, isolation: 'Class' }, /spec.oneShot: true needs spec.isolation: Pod/],
    [{ warmPool: { size: 4 }, maxInstances: 3 }, /must not exceed spec.maxInstances/],
    [{ warmPool: { size: -1 } }, /spec.warmPool.size/],
    [{ warmPool: { size: 1, maxAge: 'a day' } }, /spec.warmPool.maxAge/],
    [{ warmPool: { size: 1, schedule: [{ cron: '0 8 * *', duration: '1h' }] } }, /cron needs five fields/],
    [{ warmPool: { size: 1, schedule: [{ cron: '0 8 * * mon', duration: '1h' }] } }, /cron needs five fields/],
    [{ warmPool: { size: 1, schedule: [{ cron: '0 8 * * *' }] } }, /duration/],
  ])('the API server refuses an invalid warm pool or one-shot setting %#', async (extra, message) => {
    const spec = { instanceTypes: ['sim.small'], namespaces: ['*'], simulated: {}, ...extra };
    const err = await c.custom
      .createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'instanceclasses',
        body: { apiVersion: API_VERSION, kind: 'InstanceClass', metadata: { name: `bad-${suffix()}` }, spec },
      })
      .then(
        () => undefined,
        (e: { code?: number; body?: string }) => e,
      );
    expect(err?.code).toBe(422);
    expect(String(err?.body)).toMatch(message);
  });

  it('fills the pool, gives a pod a warm instance at once, refills, and serves a burst warm first', async () => {
    const cls = await newClass('fill', { warmPool: { size: 2 }, idleTimeout: '10m' });
    await poolReady(cls, 2);
    await eventually('class status counts the warm instances', async () => {
      expect((await getClass(c, cls)).status).toMatchObject({ warmReady: 2, warmLaunching: 0 });
    });

    // A hit: the pod runs well within the 3 s boot it would otherwise wait for.
    const t0 = Date.now();
    await c.core.createNamespacedPod({ namespace: ns, body: pod('hit', cls) });
    const [hit] = await allRunning(cls, 1);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(await provisioningNote('hit')).toMatch(/took warm Instance .* no boot wait/);
    const taken = hit!.metadata!.annotations![POD_INSTANCE_ANNOTATION]!;
    const refilled = await poolReady(cls, 2);
    expect(refilled.find((i) => i.metadata.name === taken)!.metadata.labels?.[WARM_LABEL]).toBeUndefined();
    expect(refilled.filter(live)).toHaveLength(3);

    // A burst of four: the two warm Ready ones first; the rest wait for a boot, on a new instance or
    // on a refill already launching (taken rather than launching yet another).
    for (let i = 0; i < 4; i++) await c.core.createNamespacedPod({ namespace: ns, body: pod(`burst-${i}`, cls) });
    const pods = await allRunning(cls, 5);
    const notes = await Promise.all([0, 1, 2, 3].map((i) => provisioningNote(`burst-${i}`)));
    expect(notes.filter((n) => n.includes('(Ready, never used): no boot wait'))).toHaveLength(2);
    expect(
      notes.filter((n) => n.startsWith('creating dedicated Instance') || n.endsWith('(never used, still booting)')),
    ).toHaveLength(2);
    expect(new Set(pods.map((p) => p.spec!.nodeName)).size).toBe(5);
    await poolReady(cls, 2);
    expect(await metric(env.ipp!, 'ipp_warm_hits_total', { class: cls })).toBe(3);
    expect(await metric(env.ipp!, 'ipp_warm_misses_total', { class: cls })).toBe(2);
    // A gauge refreshed every few seconds from the caches: it may still show the pool of a moment ago.
    await eventually('ipp_warm_instances to show the refilled pool', async () =>
      expect(await metric(env.ipp!, 'ipp_warm_instances', { class: cls, state: 'ready' })).toBe(2),
    );
    await isolationHolds(cls);
  });

  it('launches exactly one instance per pod of a burst larger than the pool, and never a surplus', async () => {
    const size = 5;
    const burst = 20;
    const cls = await newClass('surge', { warmPool: { size }, idleTimeout: '10m' });
    const history = await watchInstanceHistory(c.kc, cls);
    const { written: created, removed: deleted } = history;
    try {
      await poolReady(cls, size);
      expect(created.size).toBe(size);
      await Promise.all(
        Array.from({ length: burst }, (_, i) =>
          c.core.createNamespacedPod({ namespace: ns, body: pod(`surge-${i}`, cls) }),
        ),
      );
      const pods = await allRunning(cls, burst, 120_000);
      expect(new Set(pods.map((p) => p.spec!.nodeName)).size).toBe(burst);
      await poolReady(cls, size, 90_000);
      await new Promise((r) => setTimeout(r, 3_000)); // anything extra would be written by now
      // One instance per pod, and the pool refilled to its size: nothing launched only to be removed.
      expect(created.size).toBe(burst + size);
      expect((await listInstances(c, cls)).filter(live)).toHaveLength(burst + size);
      expect(await cloudInstances(cls)).toHaveLength(burst + size);
      expect([...deleted]).toEqual([]);
      const events = await c.kc.makeApiClient(EventsV1Api).listEventForAllNamespaces();
      expect(events.items.filter((e) => e.reason === 'WarmSurplus' && created.has(e.regarding?.name ?? ''))).toEqual(
        [],
      );
      await isolationHolds(cls);
    } finally {
      history.stop();
    }
  });

  it('caps pool + busy at maxInstances', async () => {
    const cls = await newClass('cap', { warmPool: { size: 2 }, maxInstances: 3, idleTimeout: '2s' });
    let most = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        most = Math.max(most, (await listInstances(c, cls)).filter(live).length);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    await poolReady(cls, 2);
    for (let i = 0; i < 3; i++) await c.core.createNamespacedPod({ namespace: ns, body: pod(`cap-${i}`, cls) });
    await allRunning(cls, 3);
    // Three busy instances: no room for the pool.
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await listInstances(c, cls)).filter(warm)).toHaveLength(0);
    // A pod ends: its instance goes after idleTimeout, and the pool takes the room.
    await c.core.deleteNamespacedPod({ name: 'cap-0', namespace: ns, gracePeriodSeconds: 0 });
    await poolReady(cls, 1, 60_000);
    watching = false;
    await watch;
    expect(most).toBeLessThanOrEqual(3);
    await isolationHolds(cls);
  });

  it('replaces aged warm instances one at a time, each new one Ready before the old one goes', async () => {
    const cls = await newClass('age', { warmPool: { size: 2, maxAge: '15s' }, simulated: { bootDelay: '2s' } });
    const first = new Set((await poolReady(cls, 2)).filter(warm).map((i) => i.metadata.name!));
    let fewestReady = Infinity;
    let mostWarm = 0;
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline) {
      const all = await listInstances(c, cls);
      fewestReady = Math.min(fewestReady, all.filter(warmReady).length);
      mostWarm = Math.max(mostWarm, all.filter(warm).length);
      if (![...first].some((n) => all.some((i) => i.metadata.name === n))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const now = (await listInstances(c, cls)).filter(warm).map((i) => i.metadata.name!);
    expect(now.some((n) => first.has(n))).toBe(false); // both replaced
    expect(fewestReady).toBeGreaterThanOrEqual(2); // never fewer Ready than the pool's size
    expect(mostWarm).toBeLessThanOrEqual(3); // one replacement at a time
  });

  it('leaves no extra instance when the controller is SIGKILLed while refilling', async () => {
    const cls = await newClass('kill', { warmPool: { size: 3 }, idleTimeout: '10m' });
    // Killed as soon as the first warm Instance of the fill is written.
    await eventually(
      'the fill under way',
      async () => expect((await listInstances(c, cls)).filter(warm).length).toBeGreaterThan(0),
      30_000,
      20,
    );
    await env.ipp!.kill();
    await env.start();
    await poolReady(cls, 3);
    // A pod takes one; killed as soon as its claim is written, while the pool refills.
    await c.core.createNamespacedPod({ namespace: ns, body: pod('kill-hit', cls) });
    await eventually(
      'the hit claimed',
      async () => {
        const p = await c.core.readNamespacedPod({ name: 'kill-hit', namespace: ns });
        expect(p.metadata?.annotations?.[POD_INSTANCE_ANNOTATION]).toBeDefined();
      },
      30_000,
      20,
    );
    await env.ipp!.kill();
    await env.start();
    await allRunning(cls, 1);
    await poolReady(cls, 3);
    await new Promise((r) => setTimeout(r, 3_000)); // anything extra would be written by now
    expect((await listInstances(c, cls)).filter(live)).toHaveLength(4);
    expect((await listInstances(c, cls)).filter(warm)).toHaveLength(3);
    expect(await cloudInstances(cls)).toHaveLength(4);
    expect((await c.core.listNode({ labelSelector: `${NODE_CLASS_LABEL}=${cls}` })).items).toHaveLength(4);
    await isolationHolds(cls);
  });

  it('one-shot: each Job pod gets a fresh warm instance, terminated within seconds of the pod completing', async () => {
    const cls = await newClass('once', { oneShot: true, warmPool: { size: 1 }, idleTimeout: '10m' });
    await poolReady(cls, 1);
    const batch = c.kc.makeApiClient((await import('@kubernetes/client-node')).BatchV1Api);
    await batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: `job-${cls}` },
        spec: {
          completions: 3,
          parallelism: 1,
          backoffLimit: 0,
          template: {
            metadata: { labels: { 'ipp-class': cls } },
            spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
          },
        },
      },
    });
    const ended = new Map<string, number>(); // instance → when its pod finished (kwok's clock: this machine's)
    const gone = new Map<string, number>(); // instance → when it was seen deleting or gone
    const seen = new Map<string, string>(); // instance → the one pod it served
    await eventually(
      'three completed pods, each instance gone after its pod',
      async () => {
        const pods = await podsOf(cls);
        const instances = await listInstances(c, cls);
        for (const p of pods) {
          const inst = p.metadata?.annotations?.[POD_INSTANCE_ANNOTATION];
          if (!inst || !p.spec?.nodeName) continue;
          expect(seen.get(inst) ?? p.metadata!.name, `pods on instance ${inst}`).toBe(p.metadata!.name);
          seen.set(inst, p.metadata!.name!);
          const finished = p.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt;
          if (p.status?.phase === 'Succeeded' && finished) ended.set(inst, new Date(finished).getTime());
        }
        for (const inst of seen.keys()) {
          const i = instances.find((x) => x.metadata.name === inst);
          if ((!i || i.metadata.deletionTimestamp) && !gone.has(inst)) gone.set(inst, Date.now());
        }
        expect(pods.filter((p) => p.status?.phase === 'Succeeded')).toHaveLength(3);
        expect(gone.size).toBe(3);
      },
      90_000,
      100,
    );
    expect(seen.size).toBe(3);
    for (const [inst, at] of gone) {
      // finishedAt has whole seconds: allow for the truncation.
      expect(at, `${inst} went before its pod completed`).toBeGreaterThanOrEqual(ended.get(inst)!);
      expect(at - ended.get(inst)!).toBeLessThan(6_000);
    }
    const notes = await Promise.all([...seen.values()].map((p) => provisioningNote(p)));
    expect(notes.filter((n) => n.startsWith('took warm Instance')).length).toBeGreaterThanOrEqual(1);
    await poolReady(cls, 1);
    await isolationHolds(cls);
  });
});
