// The controller on its own (no webhook: pods arrive already gated, as admission would leave them):
// it is killed with SIGKILL at several points of provisioning and must lose nothing and duplicate
// nothing; a class that appears late is picked up; bind mode places pods through pods/binding.
import type { V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, suffix, type Clients } from './support/cluster.ts';
import { createClass, listInstances, useIppEnvironment, type Ipp } from './support/ipp.ts';
import {
  GATE,
  NODE_INSTANCE_LABEL,
  POD_INSTANCE_ANNOTATION,
  SCHEDULER_NAME,
  TAG_INSTANCE,
  TAINT_KEY,
} from '../../src/api/names.ts';

/** A pod as the webhook leaves it in pin mode (gate + toleration), or in bind mode (scheduler name). */
const admitted = (name: string, cls: string, mode: 'pin' | 'bind' = 'pin'): V1Pod => ({
  metadata: { name, labels: { 'ipp-class': cls } },
  spec: {
    containers: [{ name: 'main', image: 'busybox' }],
    tolerations: [
      { key: TAINT_KEY, operator: 'Equal', value: cls, effect: 'NoSchedule' },
      { key: TAINT_KEY, operator: 'Equal', value: cls, effect: 'NoExecute' },
    ],
    ...(mode === 'pin' ? { schedulingGates: [{ name: GATE }] } : { schedulerName: SCHEDULER_NAME }),
  },
});

describe('controller recovery and late classes', () => {
  const env = useIppEnvironment('rec');
  let c: Clients;
  let ns: string;
  let system: string;
  let ipp: Ipp | undefined;
  const { cluster, classes } = env;
  const start = async (extra: string[] = []) => (ipp = await env.start({ webhook: false, extraArgs: extra }));

  beforeAll(() => {
    ({ c, ns, system } = env);
  });

  const cloudInstances = async () =>
    (await c.core.listNamespacedConfigMap({ namespace: system, labelSelector: `ipp.dev/cluster=${cluster}` })).items;

  it('provisions nothing for an unknown class, and places the pod once the class exists', async () => {
    ipp = await start();
    const cls = `late-${suffix()}`;
    classes.push(cls);
    await c.core.createNamespacedPod({ namespace: ns, body: admitted('early', cls) });
    await eventually('an UnknownClass Warning on the pod', async () => {
      const events = await c.kc
        .makeApiClient((await import('@kubernetes/client-node')).EventsV1Api)
        .listNamespacedEvent({ namespace: ns });
      expect(
        events.items.some((e) => e.regarding?.name === 'early' && e.reason === 'UnknownClass' && e.type === 'Warning'),
      ).toBe(true);
    });
    expect(await listInstances(c, cls)).toEqual([]);
    await createClass(c, cls, { instanceTypes: ['sim.small'], simulated: { bootDelay: '500ms' } });
    await eventually(
      'the pod running once the class exists',
      async () => {
        const p = await c.core.readNamespacedPod({ name: 'early', namespace: ns });
        expect(p.status?.phase).toBe('Running');
      },
      60_000,
    );
  });

  it('survives SIGKILL at every step of provisioning: no duplicate, no leak, every pod placed', async () => {
    const cls = `crash-${suffix()}`;
    classes.push(cls);
    // A slow boot widens the launched-but-not-registered window the test aims at.
    await createClass(c, cls, { instanceTypes: ['sim.small'], idleTimeout: '10m', simulated: { bootDelay: '3s' } });
    ipp ??= await start();

    const points: [string, (pod: string) => Promise<boolean>][] = [
      [
        'claimed',
        async (pod) =>
          !!(await c.core.readNamespacedPod({ name: pod, namespace: ns })).metadata?.annotations?.[
            POD_INSTANCE_ANNOTATION
          ],
      ],
      [
        'Instance written',
        async (pod) => {
          const claim = (await c.core.readNamespacedPod({ name: pod, namespace: ns })).metadata?.annotations?.[
            POD_INSTANCE_ANNOTATION
          ];
          return !!claim && (await listInstances(c, cls)).some((i) => i.metadata.name === claim);
        },
      ],
      [
        'cloud instance launched',
        async (pod) => {
          const claim = (await c.core.readNamespacedPod({ name: pod, namespace: ns })).metadata?.annotations?.[
            POD_INSTANCE_ANNOTATION
          ];
          return (
            !!claim &&
            (await cloudInstances()).some((cm) => JSON.parse(cm.data!.instance!).tags[TAG_INSTANCE] === claim)
          );
        },
      ],
      [
        'node registered',
        async (pod) => {
          const claim = (await c.core.readNamespacedPod({ name: pod, namespace: ns })).metadata?.annotations?.[
            POD_INSTANCE_ANNOTATION
          ];
          return (
            !!claim && (await c.core.listNode({ labelSelector: `${NODE_INSTANCE_LABEL}=${claim}` })).items.length > 0
          );
        },
      ],
    ];
    for (const [i, [point, reached]] of points.entries()) {
      const pod = `crash-${i}`;
      await c.core.createNamespacedPod({ namespace: ns, body: admitted(pod, cls) });
      await eventually(`${pod}: ${point}`, async () => expect(await reached(pod)).toBe(true), 60_000, 20);
      await ipp!.kill();
      ipp = await start();
    }

    const pods = await eventually(
      'every pod running on a node of its own',
      async () => {
        const list = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `ipp-class=${cls}` })).items;
        expect(list).toHaveLength(points.length);
        for (const p of list) expect(p.status?.phase, p.metadata?.name).toBe('Running');
        return list;
      },
      90_000,
    );
    expect(new Set(pods.map((p) => p.spec!.nodeName)).size).toBe(points.length);

    // Exactly one Instance, one cloud instance and one node per pod; nothing else tagged for the class.
    const instances = await listInstances(c, cls);
    expect(instances).toHaveLength(points.length);
    const names = new Set(instances.map((i) => i.metadata.name));
    const cloud = (await cloudInstances())
      .map((cm) => JSON.parse(cm.data!.instance!) as { tags: Record<string, string> })
      .filter((r) => r.tags['ipp.dev/class'] === cls);
    expect(cloud).toHaveLength(points.length);
    for (const r of cloud) expect(names.has(r.tags[TAG_INSTANCE]!)).toBe(true);
    for (const p of pods) expect(names.has(p.metadata!.annotations![POD_INSTANCE_ANNOTATION]!)).toBe(true);
  });

  it('bind mode: pods with schedulerName ipp are bound by the controller to their dedicated node', async () => {
    await ipp?.stop();
    ipp = await start(['--placement=bind']);
    const cls = `bind-${suffix()}`;
    classes.push(cls);
    await createClass(c, cls, { instanceTypes: ['sim.small'], simulated: { bootDelay: '500ms' } });
    await c.core.createNamespacedPod({ namespace: ns, body: admitted('bound-1', cls, 'bind') });
    await c.core.createNamespacedPod({ namespace: ns, body: admitted('bound-2', cls, 'bind') });
    const pods = await eventually(
      'both pods running',
      async () => {
        const list = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `ipp-class=${cls}` })).items;
        for (const p of list) expect(p.status?.phase).toBe('Running');
        expect(list).toHaveLength(2);
        return list;
      },
      60_000,
    );
    expect(pods[0]!.spec!.nodeName).not.toBe(pods[1]!.spec!.nodeName);
    for (const p of pods) {
      const node = await c.core.readNode({ name: p.spec!.nodeName! });
      expect(node.metadata!.labels![NODE_INSTANCE_LABEL]).toBe(p.metadata!.annotations![POD_INSTANCE_ANNOTATION]);
      // Bound, not pinned: no nodeSelector was needed.
      expect(p.spec!.nodeSelector?.[NODE_INSTANCE_LABEL]).toBeUndefined();
    }
  });
});
