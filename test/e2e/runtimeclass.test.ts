// RuntimeClass opt-in on the real apiserver, with the simulated provider: ipp keeps a RuntimeClass
// ipp-<class> per InstanceClass, and a pod that names it is opted in exactly as one labelled
// ipp-class. The apiserver's RuntimeClass admission plugin runs before ipp's webhook, so the pod
// reaches ipp already carrying the class toleration and the handler's overhead; these tests prove
// that order works end to end. Also: host isolation levels of the simulated provider.
import { NodeV1Api, type V1Pod, type V1RuntimeClass } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, suffix, type Clients } from './support/cluster.ts';
import { createClass, getClass, useIppEnvironment } from './support/ipp.ts';
import { CLASS_LABEL, GATE, GROUP, NODE_CLASS_LABEL, VERSION } from '../../src/api/names.ts';
import { kubeError } from '../../src/kube/errors.ts';
import { mergePatch } from '../../src/kube/patch.ts';

const container = [{ name: 'c', image: 'postfix' }];
/** The class's tolerations: its NoSchedule taint keeps the scheduler off, its NoExecute one the kubelet. */
const toleration = (cls: string) => ({ key: 'ipp.dev/class', operator: 'Equal', value: cls, effect: 'NoSchedule' });
const tolerations = (cls: string) => [toleration(cls), { ...toleration(cls), effect: 'NoExecute' }];

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const k = kubeError(e);
    if (!k) throw e;
    return k.message;
  }
  throw new Error('the request was admitted');
}

describe('RuntimeClass opt-in', () => {
  const env = useIppEnvironment('rtc');
  let c: Clients;
  let ns: string;
  let node: NodeV1Api;
  const relay = `relay-${suffix()}`;
  const other = `other-${suffix()}`;

  const readRc = (cls: string) => node.readRuntimeClass({ name: `ipp-${cls}` });
  const podsOf = async (selector: string) =>
    (await c.core.listNamespacedPod({ namespace: ns, labelSelector: selector })).items;
  const running = (name: string) =>
    eventually(`pod ${name} running`, async () => {
      const p = await c.core.readNamespacedPod({ name, namespace: ns });
      expect(p.status?.phase).toBe('Running');
      return p;
    });

  beforeAll(async () => {
    ({ c, ns } = env);
    node = c.kc.makeApiClient(NodeV1Api);
    env.classes.push(relay, other);
    await createClass(c, relay, {
      instanceTypes: ['sim.small'],
      idleTimeout: '30s',
      reuse: false,
      runtimeClass: { overhead: { podFixed: { cpu: '250m', memory: '160Mi' } } },
      simulated: { bootDelay: '1s' },
    });
    await createClass(c, other, { instanceTypes: ['sim.small'], simulated: { bootDelay: '1s' } });
    await env.start();
    await eventually('RuntimeClasses of both classes', async () => {
      await readRc(relay);
      await readRc(other);
    });
  });

  it('keeps RuntimeClass ipp-<class>: handler runc, the class toleration, the overhead, owned by the class', async () => {
    const cls = await getClass(c, relay);
    const rc = await readRc(relay);
    expect(rc.handler).toBe('runc');
    expect(rc.scheduling?.tolerations).toEqual(tolerations(relay));
    expect(rc.overhead?.podFixed).toEqual({ cpu: '250m', memory: '160Mi' });
    expect(rc.metadata?.ownerReferences).toEqual([
      {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'InstanceClass',
        name: relay,
        uid: cls.metadata.uid,
        controller: true,
      },
    ]);
  });

  it("the seed's Deployment, whose only change is runtimeClassName, ends with each pod on its own node", async () => {
    await c.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'katademo' },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: 'katademo' } },
          template: {
            metadata: { labels: { app: 'katademo' } },
            spec: { runtimeClassName: `ipp-${relay}`, containers: container },
          },
        },
      },
    });
    const pods = await eventually(
      'three Running pods, each on a node of its own',
      async () => {
        const ps = (await podsOf('app=katademo')).filter((p) => !p.metadata?.deletionTimestamp);
        expect(ps).toHaveLength(3);
        for (const p of ps) expect(p.status?.phase).toBe('Running');
        expect(new Set(ps.map((p) => p.spec!.nodeName)).size).toBe(3);
        return ps;
      },
      120_000,
    );
    for (const p of pods) {
      // Labelled by ipp's webhook, so every later part treats it as any opted-in pod.
      expect(p.metadata?.labels?.[CLASS_LABEL]).toBe(relay);
      // Merged by the RuntimeClass plugin before ipp's webhook saw the pod: once, not twice.
      expect(p.spec?.tolerations?.filter((t) => t.key === 'ipp.dev/class')).toEqual(tolerations(relay));
      expect(p.spec?.overhead).toEqual({ cpu: '250m', memory: '160Mi' });
      expect(p.spec?.schedulingGates ?? []).not.toContainEqual({ name: GATE });
      const n = await c.core.readNode({ name: p.spec!.nodeName! });
      expect(n.metadata?.labels?.[NODE_CLASS_LABEL]).toBe(relay);
      const onNode = (await c.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${n.metadata!.name}` }))
        .items;
      expect(onNode.map((x) => x.metadata!.name)).toEqual([p.metadata!.name]);
    }
    await c.apps.deleteNamespacedDeployment({ name: 'katademo', namespace: ns });
  });

  it('opts in by label alone, by RuntimeClass alone, and by both agreeing; refuses both disagreeing', async () => {
    const pod = (name: string, labels: Record<string, string>, runtimeClassName?: string): V1Pod => ({
      metadata: { name, labels },
      spec: { containers: container, ...(runtimeClassName ? { runtimeClassName } : {}) },
    });
    const create = (p: V1Pod) => c.core.createNamespacedPod({ namespace: ns, body: p });
    await create(pod('by-label', { [CLASS_LABEL]: other }));
    await create(pod('by-runtime', {}, `ipp-${other}`));
    await create(pod('by-both', { [CLASS_LABEL]: other }, `ipp-${other}`));
    expect(await refusal(create(pod('disagree', { [CLASS_LABEL]: relay }, `ipp-${other}`)))).toContain(
      `the label ipp-class names InstanceClass "${relay}" but runtimeClassName ipp-${other} names InstanceClass "${other}"`,
    );
    const placed = await Promise.all(['by-label', 'by-runtime', 'by-both'].map((n) => running(n)));
    for (const p of placed) {
      expect(p.metadata?.labels?.[CLASS_LABEL]).toBe(other);
      expect(p.spec?.tolerations?.filter((t) => t.key === 'ipp.dev/class')).toEqual(tolerations(other));
      const n = await c.core.readNode({ name: p.spec!.nodeName! });
      expect(n.metadata?.labels?.[NODE_CLASS_LABEL]).toBe(other);
    }
    expect(new Set(placed.map((p) => p.spec!.nodeName)).size).toBe(3);
    await expect(c.core.readNamespacedPod({ name: 'disagree', namespace: ns })).rejects.toMatchObject({ code: 404 });
  });

  it('follows its class: a new handler replaces it, a hand-deleted one comes back, the class takes it along', async () => {
    const cls = `follow-${suffix()}`;
    env.classes.push(cls);
    await createClass(c, cls, { instanceTypes: ['sim.small'], simulated: {} });
    const first = await eventually('RuntimeClass created', () => readRc(cls));
    expect(first.handler).toBe('runc');

    await c.custom.patchClusterCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: 'instanceclasses',
        name: cls,
        body: { spec: { runtimeClass: { handler: 'kata' } } },
      },
      mergePatch,
    );
    const kata = await eventually('handler kata', async () => {
      const rc = await readRc(cls);
      expect(rc.handler).toBe('kata');
      return rc;
    });
    expect(kata.metadata!.uid).not.toBe(first.metadata!.uid);

    await node.deleteRuntimeClass({ name: `ipp-${cls}` });
    await eventually('RuntimeClass restored', async () => {
      const rc = await readRc(cls);
      expect(rc.metadata!.uid).not.toBe(kata.metadata!.uid);
      expect(rc.handler).toBe('kata');
    });

    await c.custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instanceclasses', name: cls });
    await eventually('RuntimeClass deleted with the class', async () => {
      await expect(readRc(cls)).rejects.toMatchObject({ code: 404 });
    });
  });

  it("leaves someone else's ipp-<class> RuntimeClass alone and says so on the class", async () => {
    const cls = `taken-${suffix()}`;
    env.classes.push(cls);
    const foreign: V1RuntimeClass = { metadata: { name: `ipp-${cls}` }, handler: 'gvisor' };
    await node.createRuntimeClass({ body: foreign });
    try {
      await createClass(c, cls, { instanceTypes: ['sim.small'], simulated: {} });
      await eventually('Warning Event RuntimeClassConflict', async () => {
        const events = await c.kc
          .makeApiClient((await import('@kubernetes/client-node')).EventsV1Api)
          .listEventForAllNamespaces({ fieldSelector: `regarding.name=${cls}` });
        expect(events.items.map((e) => e.reason)).toContain('RuntimeClassConflict');
      });
      const rc = await readRc(cls);
      expect(rc.handler).toBe('gvisor');
      expect(rc.metadata?.ownerReferences).toBeUndefined();
    } finally {
      await node.deleteRuntimeClass({ name: `ipp-${cls}` }).catch(() => {});
    }
  });

  it('simulated host isolation: a BareMetal class runs on sim.metal; a type that cannot switch SMT off is refused', async () => {
    const metal = `metal-${suffix()}`;
    const nosmt = `nosmt-${suffix()}`;
    env.classes.push(metal, nosmt);
    await createClass(c, metal, {
      instanceTypes: ['sim.metal'],
      hostIsolation: 'BareMetal',
      simulated: { bootDelay: '1s' },
    });
    await createClass(c, nosmt, { instanceTypes: ['sim.small'], smt: 'Off', simulated: {} });
    await c.core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'postfix', labels: { [CLASS_LABEL]: metal } }, spec: { containers: container } },
    });
    const p = await running('postfix');
    const n = await c.core.readNode({ name: p.spec!.nodeName! });
    expect(n.metadata!.labels!['node.kubernetes.io/instance-type']).toBe('sim.metal');
    await eventually('Ready=False naming spec.smt', async () => {
      const got = await getClass(c, nosmt);
      const ready = got.status?.conditions?.find((x) => x.type === 'Ready');
      expect(ready?.status).toBe('False');
      expect(ready?.message).toMatch(/spec\.smt: Off cannot be delivered by spec\.instanceTypes\[0\] sim\.small/);
    });
    // The CRD refuses a BareMetal class listing a VM type before any provider sees it.
    expect(
      await refusal(
        createClass(c, `bad-${suffix()}`, {
          instanceTypes: ['sim.metal', 'sim.small'],
          hostIsolation: 'BareMetal',
          simulated: {},
        }),
      ),
    ).toMatch(/spec\.instanceTypes: Invalid value.*BareMetal needs bare-metal instance types/);
  });
});
