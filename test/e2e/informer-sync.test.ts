// Caches that never lie, against the real apiserver through a proxy that can refuse requests and
// expire a watch (410 Gone, as the apiserver's watch cache says it):
// - an informer whose first LIST fails is not synced, says why, and syncs once the LIST succeeds;
// - a watch that expires (410) relists, and the caches and every index ClusterState reads equal
//   what the apiserver holds, including what changed while the watch was down;
// - a relist that fails keeps the previous cache instead of emptying it.
import type { KubeConfig, V1ConfigMap, V1Node, V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  API_VERSION,
  CLASS_LABEL,
  GROUP,
  NODE_CLASS_LABEL,
  POD_INSTANCE_ANNOTATION,
  VERSION,
} from '../../src/api/names.ts';
import { claimOf } from '../../src/api/pods.ts';
import type { Instance } from '../../src/api/types.ts';
import { Informer } from '../../src/kube/informer.ts';
import { ClusterState } from '../../src/state/cluster.ts';
import { ApiProxy, type ProxiedRequest } from './support/api-proxy.ts';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import { installCrds } from './support/ipp.ts';

const silent = pino({ level: 'silent' });
const fast = { baseMs: 100, maxMs: 500 };
const isWatch = (r: ProxiedRequest) => r.url.searchParams.get('watch') === 'true';

describe('an informer whose first LIST fails', () => {
  let c: Clients;
  let ns: string;
  let proxy: ApiProxy;
  let informer: Informer<V1ConfigMap> | undefined;

  beforeAll(async () => {
    c = clients();
    ns = await namespace(c, 'informer-sync');
    proxy = new ApiProxy(c.kc.getCurrentCluster()!.server, inject('testbedDir') + '/pki/ca.crt', inject('testbedDir'));
    await proxy.start();
  });
  afterAll(async () => {
    await informer?.stop();
    await proxy?.stop();
    await c.core.deleteNamespace({ name: ns }).catch(() => {});
  });

  it('is not synced, keeps the error for /readyz, and syncs once the LIST succeeds', async () => {
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'before' } } });
    proxy.refuse = (r) => (r.url.pathname.endsWith(`/namespaces/${ns}/configmaps`) ? 503 : undefined);
    informer = new Informer<V1ConfigMap>({
      kubeconfig: proxy.kubeconfig(c.kc),
      resource: 'configmaps',
      path: `/api/v1/namespaces/${ns}/configmaps`,
      logger: silent,
      backoff: fast,
      onChange: () => {},
    });
    let started = false;
    const start = informer.start().then(() => (started = true));
    await eventually('a few refused lists', async () =>
      expect(proxy.seen.filter((r) => r.url.pathname.endsWith('/configmaps')).length).toBeGreaterThan(2),
    );
    expect(started).toBe(false);
    expect(informer.hasSynced()).toBe(false);
    expect(informer.status()).toMatchObject({ synced: false, objects: 0 });
    expect(informer.status().lastError).toMatch(/listing configmaps: HTTP 503 InjectedByTestProxy/);

    proxy.refuse = () => undefined;
    await start;
    expect(informer.hasSynced()).toBe(true);
    expect(informer.status().lastError).toBeUndefined();
    expect(informer.get('before', ns)?.metadata?.name).toBe('before');
  });

  it('counts as silent while it hears nothing, a watch opened only to be told 410 included', async () => {
    // Synced above; nothing happens in its namespace from here on.
    await new Promise((r) => setTimeout(r, 1_500));
    const quietSince = Date.now() - 1_500;
    proxy.refuse = (r) =>
      r.url.pathname.endsWith(`/namespaces/${ns}/configmaps`) ? (isWatch(r) ? 410 : 500) : undefined;
    proxy.cut();
    await eventually('a refused relist after a 410', async () =>
      expect(informer!.status().lastError).toMatch(/listing configmaps: HTTP 500/),
    );
    // The watch was accepted again (then expired): the cache took nothing, so claims and creates the
    // controllers wait for must not be given up on as if it had.
    expect(informer!.silentForMs()).toBeGreaterThanOrEqual(Date.now() - quietSince - 100);
    proxy.refuse = () => undefined;
  });
});

describe('ClusterState through expired watches and failed relists', () => {
  let c: Clients;
  let ns: string;
  let proxy: ApiProxy;
  let state: ClusterState;
  let proxied: KubeConfig;
  /** Every pod change ClusterState told, with what it replaced, and in which turn of the event loop. */
  const told: { now: V1Pod; old?: V1Pod; turn: number }[] = [];
  let turn = 0;
  let turnEnding = false;
  /** While set, each pod change holds the thread past a time slice, so the informer yields wherever it may. */
  let slow = false;
  const cls = `idx-${suffix()}`;
  const nodeNames = ['n1', 'n2', 'n3', 'n4'].map((n) => `${cls}-${n}`);

  const node = (name: string): V1Node => ({
    metadata: { name, labels: { [NODE_CLASS_LABEL]: cls } },
    spec: { providerID: `sim://${name}` },
  });
  const pod = (name: string, nodeName: string | undefined, claim: string | undefined): V1Pod => ({
    metadata: {
      name,
      labels: { [CLASS_LABEL]: cls },
      ...(claim ? { annotations: { [POD_INSTANCE_ANNOTATION]: claim } } : {}),
    },
    spec: { ...(nodeName ? { nodeName } : {}), containers: [{ name: 'c', image: 'none' }] },
  });
  const instance = (name: string) =>
    c.custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'instances',
      body: { apiVersion: API_VERSION, kind: 'Instance', metadata: { name }, spec: { class: cls } },
    });
  const deleteInstance = (name: string) =>
    c.custom.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instances', name });
  const setClaim = (name: string, claim: string) =>
    c.core.patchNamespacedPod({
      name,
      namespace: ns,
      body: [{ op: 'add', path: `/metadata/annotations`, value: { [POD_INSTANCE_ANNOTATION]: claim } }],
    });

  /** Every lookup ClusterState offers, for this test's objects, against a fresh read of the apiserver. */
  async function expectConsistent(): Promise<void> {
    const pods = (await c.core.listNamespacedPod({ namespace: ns })).items;
    const nodes = (await c.core.listNode({ labelSelector: `${NODE_CLASS_LABEL}=${cls}` })).items;
    const instances = (
      (await c.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instances' })) as {
        items: Instance[];
      }
    ).items.filter((i) => i.spec.class === cls);
    const names = (xs: { metadata?: { name?: string } }[]) => xs.map((x) => x.metadata!.name!).sort();
    const ours = (xs: V1Pod[]) => xs.filter((p) => p.metadata!.namespace === ns);

    expect(names(ours(state.podsOfClass(cls))), 'pods of the class').toEqual(names(pods));
    for (const n of nodeNames) {
      expect(names(state.podsOnNode(n)), `pods on ${n}`).toEqual(names(pods.filter((p) => p.spec!.nodeName === n)));
      const live = nodes.find((x) => x.metadata!.name === n);
      expect(state.nodeByProviderID(`sim://${n}`)?.metadata?.name, `node with providerID sim://${n}`).toBe(
        live?.metadata?.name,
      );
      expect(state.node(n)?.metadata?.resourceVersion, `cached node ${n}`).toBe(live?.metadata?.resourceVersion);
    }
    for (const claim of ['i1', 'i2', 'i3'].map((i) => `${cls}-${i}`))
      expect(names(state.podsClaiming(cls, claim)), `pods claiming ${claim}`).toEqual(
        names(pods.filter((p) => p.metadata!.annotations?.[POD_INSTANCE_ANNOTATION] === claim)),
      );
    for (const p of pods) {
      const cached = state.pods.get(p.metadata!.name!, p.metadata!.namespace!);
      expect(cached?.metadata?.uid, `cached ${p.metadata!.name}`).toBe(p.metadata!.uid);
      expect(cached?.metadata?.resourceVersion, `cached ${p.metadata!.name}`).toBe(p.metadata!.resourceVersion);
      expect(cached?.metadata?.managedFields, 'managedFields are not cached').toBeUndefined();
    }
    expect(names(state.instancesOfClass(cls)), 'instances of the class').toEqual(names(instances));
  }

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'state-relist');
    proxy = new ApiProxy(c.kc.getCurrentCluster()!.server, inject('testbedDir') + '/pki/ca.crt', inject('testbedDir'));
    await proxy.start();
    proxied = proxy.kubeconfig(c.kc);
    for (const n of nodeNames.slice(0, 3)) await c.core.createNode({ body: node(n) });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('a', nodeNames[0]!, `${cls}-i1`) });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('b', nodeNames[0]!, `${cls}-i1`) });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('c', nodeNames[2]!, undefined) });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('d', undefined, `${cls}-i2`) });
    await instance(`${cls}-i1`);
    await instance(`${cls}-i2`);
    const none = {
      pod: (p: V1Pod, old?: V1Pod) => {
        if (!turnEnding) {
          turnEnding = true;
          setImmediate(() => {
            turn++;
            turnEnding = false;
          });
        }
        told.push({ now: p, old, turn });
        const until = performance.now() + (slow ? 6 : 0);
        while (performance.now() < until);
      },
      node: () => {},
      instance: () => {},
      instanceClass: () => {},
    };
    // Pages of 2 objects, so every list here really pages.
    state = new ClusterState(proxied, silent, none, undefined, { pageSize: 2, backoff: fast });
    await state.start();
  });

  afterAll(async () => {
    await state?.stop();
    await proxy?.stop();
    for (const n of nodeNames) await c.core.deleteNode({ name: n }).catch(() => {});
    for (const i of ['i1', 'i2', 'i3']) await deleteInstance(`${cls}-${i}`).catch(() => {});
    await c.core.deleteNamespace({ name: ns }).catch(() => {});
  });

  it('lists in pages and indexes what it listed', async () => {
    expect(state.synced()).toBe(true);
    const pages = proxy.seen.filter((r) => !isWatch(r) && r.url.searchParams.get('continue'));
    expect(pages.length, 'list requests with a continue token').toBeGreaterThan(0);
    expect(proxy.seen.filter(isWatch).every((r) => r.url.searchParams.get('allowWatchBookmarks') === 'true')).toBe(
      true,
    );
    // kwok's heartbeats bump node versions at any moment: consistent once the watch has caught up.
    await eventually('caches and indexes consistent with the API', expectConsistent, 15_000);
  });

  it('relists on 410 Gone and catches up with what changed while its watches were down', async () => {
    await c.core.createNamespacedPod({ namespace: ns, body: pod('y', nodeNames[1]!, undefined) });
    await eventually('y cached', async () => expect(state.pods.get('y', ns)).toBeDefined());
    // Watches down: everything below happens unseen.
    const toldBefore = told.length;
    proxy.refuse = (r) => (isWatch(r) ? 503 : undefined);
    proxy.cut();
    await c.core.deleteNamespacedPod({ name: 'b', namespace: ns, gracePeriodSeconds: 0 });
    await c.core.deleteNamespacedPod({ name: 'y', namespace: ns, gracePeriodSeconds: 0 });
    await setClaim('a', `${cls}-i3`);
    // 'c' deleted and created again under its name: another pod, not an update of the first.
    const firstC = state.pods.get('c', ns)!.metadata!.uid!;
    await c.core.deleteNamespacedPod({ name: 'c', namespace: ns, gracePeriodSeconds: 0 });
    await eventually('c gone', async () =>
      expect((await c.core.listNamespacedPod({ namespace: ns })).items.map((p) => p.metadata!.name)).not.toContain('c'),
    );
    const secondC = (await c.core.createNamespacedPod({ namespace: ns, body: pod('c', nodeNames[2]!, undefined) }))
      .metadata!.uid!;
    await c.core.createNamespacedPod({ namespace: ns, body: pod('e', nodeNames[1]!, `${cls}-i2`) });
    await c.core.deleteNode({ name: nodeNames[2]! });
    await c.core.createNode({ body: node(nodeNames[3]!) });
    await deleteInstance(`${cls}-i1`);
    await instance(`${cls}-i3`);

    // Each watch resumes once more, and is told its resourceVersion has expired (410 Gone).
    const listsBefore = proxy.seen.filter((r) => !isWatch(r)).length;
    slow = true;
    const expired = new Set<string>();
    proxy.refuse = (r) => {
      if (!isWatch(r) || expired.has(r.url.pathname)) return undefined;
      expired.add(r.url.pathname);
      return 410;
    };
    await eventually('every cache relisted and consistent', async () => {
      expect(expired.size).toBe(4);
      await expectConsistent();
    });
    slow = false;
    expect(proxy.seen.filter((r) => !isWatch(r)).length - listsBefore, 'relists').toBeGreaterThanOrEqual(4);
    // The relist tells each change as a watch would: the claim moved with the claim it replaced (so the
    // Instance it left is woken too), the pod made again as its own delete and add.
    const ofPod = (name: string) => told.slice(toldBefore).filter((t) => t.now.metadata!.name === name);
    expect(
      ofPod('a').map((t) => [t.old && claimOf(t.old), claimOf(t.now)]),
      'pod a as the relist told it',
    ).toContainEqual([`${cls}-i1`, `${cls}-i3`]);
    const uidsOfC = ofPod('c').map((t) => t.now.metadata!.uid);
    expect(uidsOfC).toEqual(expect.arrayContaining([firstC, secondC]));
    // The old one's delete before the new one's add, as a watch tells them (and a pod gone is told
    // before anything the controllers could do with its node).
    expect(uidsOfC.indexOf(firstC), 'the delete told first').toBeLessThan(uidsOfC.indexOf(secondC));
    // Every delete before the informer lets anything else run, however long telling takes: a controller
    // running in between would find a force-deleted pod's node empty before its departure is noted.
    const deletes = told
      .slice(toldBefore)
      .filter((t) => ['b', 'y'].includes(t.now.metadata!.name!) || t.now.metadata!.uid === firstC)
      .map((t) => t.turn);
    expect(deletes).toHaveLength(3);
    expect(new Set(deletes).size, 'turns of the event loop the deletes were told in').toBe(1);
  });

  it('starts a paged list over when its continue token expires, never listing everything in one response', async () => {
    await c.core.createNamespacedPod({ namespace: ns, body: pod('g', nodeNames[3]!, `${cls}-i3`) });
    const from = proxy.seen.length;
    // The pods watch expires; the relist's first continuation is older than compaction (410).
    let watchExpired = false;
    let continueExpired = false;
    proxy.refuse = (r) => {
      if (r.url.pathname !== '/api/v1/pods') return undefined;
      if (isWatch(r)) {
        if (watchExpired) return undefined;
        watchExpired = true;
        return 410;
      }
      if (!r.url.searchParams.get('continue') || continueExpired) return undefined;
      continueExpired = true;
      return 410;
    };
    proxy.cut();
    await eventually('the pods relisted after the expired continuation, and consistent', async () => {
      expect(continueExpired).toBe(true);
      await expectConsistent();
    });
    const lists = proxy.seen.slice(from).filter((r) => r.url.pathname === '/api/v1/pods' && !isWatch(r));
    expect(lists.length).toBeGreaterThan(2);
    expect(lists.map((r) => r.url.searchParams.get('limit'))).toEqual(lists.map(() => '2'));
    proxy.refuse = () => undefined;
  });

  it('keeps its cache when a relist fails, and says so', async () => {
    const before = state.podsOfClass(cls).length;
    // The pods watch expires, and the relist it needs is refused.
    let expired = false;
    proxy.refuse = (r) => {
      if (r.url.pathname !== '/api/v1/pods') return undefined;
      if (!isWatch(r)) return 500;
      if (expired) return undefined;
      expired = true;
      return 410;
    };
    proxy.cut();
    await eventually('a failed pods relist', async () =>
      expect(state.pods.status().lastError).toMatch(/listing pods: HTTP 500/),
    );
    expect(state.synced()).toBe(true);
    expect(state.podsOfClass(cls).length).toBe(before);
    expect(state.notSyncedReason()).toBeUndefined();

    await c.core.createNamespacedPod({ namespace: ns, body: pod('f', nodeNames[3]!, `${cls}-i3`) });
    proxy.refuse = () => undefined;
    await eventually('the cache consistent again', async () => {
      expect(state.pods.status().lastError).toBeUndefined();
      await expectConsistent();
    });
  });

  it('remembers a pod force-deleted from a machine through its Node deleted and registered again, until its Instance goes', async () => {
    const blip = `${cls}-blip`;
    const inst = `${cls}-blip`;
    await c.core.createNode({ body: node(blip) });
    await eventually('node cached', async () => expect(state.node(blip)).toBeDefined());
    await c.core.createNamespacedPod({ namespace: ns, body: pod('fd', blip, inst) });
    await eventually('pod cached', async () => expect(state.pods.get('fd', ns)).toBeDefined());
    await c.core.deleteNamespacedPod({ name: 'fd', namespace: ns, gracePeriodSeconds: 0 });
    await eventually('departure noted', async () => expect(state.unconfirmedExit(blip)).toBe(`${ns}/fd`));
    // The same machine's kubelet registers its Node again (deleted meanwhile): what it ran may run on.
    await c.core.deleteNode({ name: blip });
    await eventually('node gone', async () => expect(state.node(blip)).toBeUndefined());
    await c.core.createNode({ body: node(blip) });
    await eventually('node back', async () => expect(state.node(blip)).toBeDefined());
    expect(state.unconfirmedExit(blip)).toBe(`${ns}/fd`);
    // Its Instance deleted: the machine is terminated, and a later one of that name is another.
    await instance(inst);
    await c.custom.patchClusterCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural: 'instances',
      name: inst,
      body: [{ op: 'add', path: '/status', value: { providerID: `sim://${blip}` } }],
    });
    await eventually('instance cached', async () =>
      expect(state.instance(inst)?.status?.providerID).toBe(`sim://${blip}`),
    );
    await deleteInstance(inst);
    await eventually('departure forgotten', async () => expect(state.unconfirmedExit(blip)).toBeUndefined());
    await c.core.deleteNode({ name: blip });
  });
});
