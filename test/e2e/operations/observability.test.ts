// What an operator sees of one controller on the real testbed: the Events of every step and every
// failure, on the object a user would `kubectl describe`; /metrics as Prometheus would scrape it
// (promtool clean, idle nodes by class through scale to zero); the auditor catching a pod that
// slipped past admission onto an ipp node; and the chart's dashboard and alert rules reading only
// metrics this controller really serves.
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  EventsV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, NODE_CLASS_LABEL, POD_INSTANCE_ANNOTATION, TAINT_KEY, VERSION } from '../../../src/api/names.ts';
import type { Instance } from '../../../src/api/types.ts';
import { render, type Manifest } from '../../testbed/chart.ts';
import { ensureHelm } from '../../testbed/helm.ts';
import { familiesOf, familyOf, metricNames } from '../../testbed/promql.ts';
import { checkMetrics } from '../../testbed/promtool.ts';
import { clients, eventually, namespace, suffix, type Clients } from '../support/cluster.ts';
import { allowIsolationViolations } from '../support/invariant.ts';
import {
  createClass,
  deleteClasses,
  installCrds,
  listInstances,
  metric,
  removeWebhookConfiguration,
  startIpp,
  type Ipp,
} from '../support/ipp.ts';
import { cloudInstances, expectEvent, ippEvents, ippPod, logLines } from './helpers.ts';

const deployment = (name: string, cls: string, replicas: number) => ({
  metadata: { name },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name, 'ipp-class': cls } },
      spec: { containers: [{ name: 'web', image: 'nginx:alpine' }] },
    },
  },
});

/** Every metric name the chart's Grafana dashboard and PrometheusRule query, with where each is used. */
function chartMetricNames(): Map<string, string> {
  const ms = render({
    clusterName: 'ops',
    providers: ['simulated'],
    prometheusRule: { enabled: true },
    grafanaDashboard: { enabled: true },
  });
  const used = new Map<string, string>();
  const dashboard = ms.find((m) => m.kind === 'ConfigMap' && m.metadata?.name === 'ipp-dashboard') as
    (Manifest & { data: Record<string, string> }) | undefined;
  const panels = (
    JSON.parse(dashboard!.data['ipp.json']!) as { panels: { title: string; targets?: { expr: string }[] }[] }
  ).panels;
  for (const p of panels)
    for (const t of p.targets ?? []) for (const n of metricNames(t.expr)) used.set(n, `dashboard panel "${p.title}"`);
  const rule = ms.find((m) => m.kind === 'PrometheusRule') as
    (Manifest & { spec: { groups: { rules: { alert: string; expr: string }[] }[] } }) | undefined;
  for (const r of rule!.spec.groups.flatMap((g) => g.rules))
    for (const n of metricNames(r.expr)) used.set(n, `alert ${r.alert}`);
  return used;
}

/** A client for a ServiceAccount of `ns` bound to the built-in `edit` ClusterRole there. */
async function editorOf(c: Clients, ns: string): Promise<CoreV1Api> {
  const name = 'deployer';
  await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
  await c.kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    },
  });
  const token = await c.core.createNamespacedServiceAccountToken({
    name,
    namespace: ns,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const cluster = c.kc.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster, name: 'testbed' }],
    users: [{ name, token: token.status!.token! }],
    contexts: [{ name, cluster: 'testbed', user: name }],
    currentContext: name,
  });
  const core = kc.makeApiClient(CoreV1Api);
  // RBAC is cached by the apiserver too: wait until the binding applies.
  await eventually(
    'the ServiceAccount to be able to list pods',
    () => core.listNamespacedPod({ namespace: ns }),
    20_000,
  );
  return core;
}

describe('operations: events, metrics, audit', () => {
  let c: Clients;
  let ns: string;
  let system: string;
  let ipp: Ipp;
  const cluster = `ops-${suffix()}`;
  /** The class that works; idleTimeout long enough for ipp_idle_nodes (refreshed every 5 s) to show. */
  const web = `web-${suffix()}`;
  const classes = [web];
  let webInstances: string[] = [];

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'ops');
    system = await namespace(c, 'ipp-ops');
    await createClass(c, web, { instanceTypes: ['sim.small'], idleTimeout: '15s', simulated: { bootDelay: '1s' } });
    ipp = await startIpp({ clients: c, clusterName: cluster, namespace: system });
    ensureHelm();
  });

  afterAll(async () => {
    await c.core.deleteCollectionNamespacedPod({ namespace: ns, gracePeriodSeconds: 0 }).catch(() => {});
    await eventually(
      'no Instance of this file left',
      async () => {
        expect((await listInstances(c)).filter((i) => classes.includes(i.spec.class))).toEqual([]);
      },
      60_000,
    ).catch(() => {});
    await ipp?.stop();
    await removeWebhookConfiguration(c, cluster);
    await c.core.deleteNamespace({ name: ns }).catch(() => {});
    await c.core.deleteNamespace({ name: system }).catch(() => {});
    await deleteClasses(c, classes);
  });

  it('reports every step of provisioning as Events, and /metrics passes promtool check metrics', async () => {
    await c.apps.createNamespacedDeployment({ namespace: ns, body: deployment('web', web, 2) });
    const pods = await eventually(
      '2 pods running on their own nodes',
      async () => {
        const list = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' })).items;
        expect(list).toHaveLength(2);
        for (const p of list) expect(p.status?.phase).toBe('Running');
        return list;
      },
      90_000,
    );
    webInstances = pods.map((p) => p.metadata!.annotations![POD_INSTANCE_ANNOTATION]!);
    expect(new Set(webInstances).size).toBe(2);

    for (const p of pods) {
      const name = p.metadata!.name!;
      const provisioning = await expectEvent(c, {
        namespace: ns,
        kind: 'Pod',
        name,
        reason: 'Provisioning',
        type: 'Normal',
      });
      expect(provisioning.note).toContain(p.metadata!.annotations![POD_INSTANCE_ANNOTATION]);
      expect(provisioning.regarding!.uid).toBe(p.metadata!.uid);
      // The pin has no Event of ipp's (a write per pod in a burst): kube-scheduler's names the node.
      const scheduled = await eventually(`kube-scheduler's Scheduled Event on ${name}`, async () => {
        const list = await c.kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns });
        const hit = list.items.find((e) => e.regarding?.name === name && e.reason === 'Scheduled');
        expect(hit).toBeDefined();
        return hit!;
      });
      expect(scheduled.note).toContain(p.spec!.nodeName);
    }
    for (const name of webInstances) {
      // A launch and a registration that went as planned are recorded in the Instance's status, not
      // as Events (two writes per pod in a burst).
      const inst = (await c.custom.getClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: 'instances',
        name,
      })) as Instance;
      expect(inst.status).toMatchObject({
        providerID: expect.stringMatching(/./),
        instanceType: expect.stringMatching(/./),
        zone: expect.stringMatching(/./),
        launchedAt: expect.stringMatching(/./),
        nodeName: expect.stringMatching(/./),
        registeredAt: expect.stringMatching(/./),
      });
    }

    // Metrics of the flow are there: gauges refreshed from the caches, histograms observed.
    await eventually(
      'ipp_instances shows 2 Ready',
      async () => expect(await metric(ipp, 'ipp_instances', { class: web, phase: 'Ready' })).toBe(2),
      20_000,
    );
    expect(await metric(ipp, 'ipp_pod_pin_duration_seconds_count', { class: web, mode: 'pin' })).toBe(2);
    expect(
      await metric(ipp, 'ipp_instance_registration_duration_seconds_count', { class: web, provider: 'simulated' }),
    ).toBe(2);
    expect(
      await metric(ipp, 'ipp_provider_calls_total', { provider: 'simulated', operation: 'create', error: '' }),
    ).toBeGreaterThanOrEqual(2);
    expect(await metric(ipp, 'ipp_leader', { identity: 'ipp-a' })).toBe(1);

    const res = await fetch(`${ipp.metricsUrl}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const exposition = await res.text();
    const lint = checkMetrics(exposition);
    expect(lint.problems).toBe('');
    expect(lint.ok).toBe(true);
  });

  it('the audit reports a pod without ipp-class that slipped onto an ipp node: Warning Event and metric', async () => {
    const node = (await c.core.listNode({ labelSelector: `${NODE_CLASS_LABEL}=${web}` })).items[0]!.metadata!.name!;
    allowIsolationViolations(ns); // the intruder below is the point of this test
    const intruder = {
      metadata: { name: `intruder-${suffix()}` },
      spec: {
        nodeName: node,
        // Every effect: ipp nodes' NoExecute taint would have the taint manager evict it otherwise.
        tolerations: [{ key: TAINT_KEY, operator: 'Exists' }],
        containers: [{ name: 'c', image: 'busybox' }],
      },
    };
    // A user who may create pods in the namespace (edit), but is not the controller: admission
    // refuses to let them name an ipp node, so the only way there is past a webhook outage.
    const user = await editorOf(c, ns);
    await expect(user.createNamespacedPod({ namespace: ns, body: intruder })).rejects.toMatchObject({ code: 403 });
    expect(await metric(ipp, 'ipp_isolation_violations_total', { node })).toBeUndefined();

    const admission = c.kc.makeApiClient(AdmissionregistrationV1Api);
    const name = `ipp-${cluster}`;
    const saved = await admission.readMutatingWebhookConfiguration({ name });
    await admission.deleteMutatingWebhookConfiguration({ name });
    try {
      // The apiserver caches webhook configurations: retry until it has forgotten ours.
      await eventually(
        'the pod admitted while the webhook is gone',
        () => user.createNamespacedPod({ namespace: ns, body: intruder }),
        30_000,
        500,
      );
    } finally {
      const body: V1MutatingWebhookConfiguration = { ...saved, metadata: { name, labels: saved.metadata!.labels } };
      await admission.createMutatingWebhookConfiguration({ body });
    }
    const placedAt = Date.now();

    const event = await expectEvent(
      c,
      { namespace: ns, kind: 'Pod', name: intruder.metadata.name, reason: 'IsolationViolation', type: 'Warning' },
      15_000,
    );
    expect(event.note).toContain(node);
    expect(event.note).toContain('without ipp-class');
    await expectEvent(
      c,
      { namespace: 'default', kind: 'Node', name: node, reason: 'IsolationViolation', type: 'Warning' },
      15_000,
    );
    await eventually(
      'ipp_isolation_violations_total to count it',
      async () => {
        expect(await metric(ipp, 'ipp_isolation_violations_total', { class: web, node })).toBe(1);
        expect(await metric(ipp, 'ipp_isolation_violations', { node })).toBe(1);
      },
      15_000,
    );
    console.log(`isolation violation reported ${Date.now() - placedAt} ms after the pod was created`);
    expect(
      logLines(ipp).some((l) => l.level === 50 && l.node === node && String(l.msg).startsWith('isolation violation')),
    ).toBe(true);

    // Reported once, not once per audit pass.
    await new Promise((r) => setTimeout(r, 4_500));
    expect(await metric(ipp, 'ipp_isolation_violations_total', { class: web, node })).toBe(1);

    // Gone: the current-violations gauge clears; the counter keeps the history.
    // Deleted as an operator would (force-deleted, it would also cost the node its reuse: T9).
    await c.core.deleteNamespacedPod({ namespace: ns, name: intruder.metadata.name });
    await eventually(
      'ipp_isolation_violations to clear',
      async () => expect(await metric(ipp, 'ipp_isolation_violations', { node })).toBeUndefined(),
      15_000,
    );
    expect(await metric(ipp, 'ipp_isolation_violations_total', { class: web, node })).toBe(1);
  });

  it('scale to zero: ipp_idle_nodes shows the idle nodes until teardown, then 0; BecameIdle, Idle, Terminated on the Instances', async () => {
    expect(webInstances).toHaveLength(2);
    await eventually(
      'no idle node while the pods run',
      async () => expect(await metric(ipp, 'ipp_idle_nodes', { class: web })).toBe(0),
      20_000,
    );
    await c.apps.patchNamespacedDeploymentScale({
      name: 'web',
      namespace: ns,
      body: [{ op: 'replace', path: '/spec/replicas', value: 0 }],
    });

    await eventually(
      'ipp_idle_nodes to show both nodes',
      async () => expect(await metric(ipp, 'ipp_idle_nodes', { class: web })).toBe(2),
      30_000,
    );
    // Until teardown starts (an Instance marked for deletion), every scrape shows both.
    let samples = 0;
    for (;;) {
      const idle = await metric(ipp, 'ipp_idle_nodes', { class: web });
      const seconds = await metric(ipp, 'ipp_node_idle_seconds', { class: web });
      const live = await listInstances(c, web);
      if (live.length < 2 || live.some((i) => i.metadata.deletionTimestamp)) break;
      expect(idle).toBe(2);
      expect(seconds).toBeGreaterThanOrEqual(0);
      samples++;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(samples).toBeGreaterThan(0);

    await eventually(
      'both Instances, their nodes and cloud instances gone',
      async () => {
        expect(await listInstances(c, web)).toEqual([]);
        expect((await c.core.listNode({ labelSelector: `${NODE_CLASS_LABEL}=${web}` })).items).toEqual([]);
        expect(await cloudInstances(c, system, cluster, web)).toEqual([]);
      },
      60_000,
    );
    await eventually(
      'ipp_idle_nodes back to 0',
      async () => {
        expect(await metric(ipp, 'ipp_idle_nodes', { class: web })).toBe(0);
        expect(await metric(ipp, 'ipp_node_idle_seconds', { class: web })).toBeUndefined();
      },
      20_000,
    );

    for (const name of webInstances) {
      // Instances are cluster-scoped: their Events are in default, where kubectl describe looks.
      const idled = await expectEvent(c, {
        namespace: 'default',
        kind: 'Instance',
        name,
        reason: 'BecameIdle',
        type: 'Normal',
      });
      expect(idled.regarding!.apiVersion).toBe(`${GROUP}/${VERSION}`);
      const idle = await expectEvent(c, {
        namespace: 'default',
        kind: 'Instance',
        name,
        reason: 'Idle',
        type: 'Normal',
      });
      expect(idle.note).toContain('15s');
      await expectEvent(c, { namespace: 'default', kind: 'Instance', name, reason: 'Terminated', type: 'Normal' });
    }
  });

  it('reports failures as Warning Events a user can act on: capacity, registration timeout, unknown class, namespace not allowed', async () => {
    const sfx = suffix();
    const noCapacity = `nocap-${sfx}`;
    const noRegistration = `noreg-${sfx}`;
    const deleted = `deleted-${sfx}`;
    const fenced = `fenced-${sfx}`;
    classes.push(noCapacity, noRegistration, deleted, fenced);
    // Pods of these classes wait forever for capacity: the class can then change under them.
    const stuck = { instanceTypes: ['sim.large'], simulated: { unavailableInstanceTypes: ['sim.large'] } };
    await createClass(c, noCapacity, stuck);
    await createClass(c, deleted, stuck);
    await createClass(c, fenced, { ...stuck, namespaces: [ns] });
    await createClass(c, noRegistration, {
      instanceTypes: ['sim.small'],
      registrationTimeout: '3s',
      simulated: { bootDelay: '1s', register: false },
    });
    for (const [pod, cls] of [
      ['cap', noCapacity],
      ['reg', noRegistration],
      ['deleted', deleted],
      ['fenced', fenced],
    ] as const) {
      await c.core.createNamespacedPod({ namespace: ns, body: ippPod(pod, cls) });
    }

    // Capacity: on the pod and on the Instance that could not launch.
    const capPod = await expectEvent(c, {
      namespace: ns,
      kind: 'Pod',
      name: 'cap',
      reason: 'InsufficientCapacity',
      type: 'Warning',
    });
    expect(capPod.note).toContain('sim.large');
    const capInstance = (await c.core.readNamespacedPod({ namespace: ns, name: 'cap' })).metadata!.annotations![
      POD_INSTANCE_ANNOTATION
    ]!;
    await expectEvent(c, {
      namespace: 'default',
      kind: 'Instance',
      name: capInstance,
      reason: 'InsufficientCapacity',
      type: 'Warning',
    });

    // Registration timeout: the node never joins; the Instance is replaced, the pod is told.
    const regPod = await expectEvent(c, {
      namespace: ns,
      kind: 'Pod',
      name: 'reg',
      reason: 'RegistrationTimeout',
      type: 'Warning',
    });
    expect(regPod.note).toContain('registrationTimeout 3s');
    const timedOut = await eventually('RegistrationTimeout on an Instance of the class', async () => {
      const hit = (await ippEvents(c, 'default')).find(
        (e) =>
          e.regarding?.kind === 'Instance' &&
          e.regarding.name?.startsWith(`${noRegistration}-`) &&
          e.reason === 'RegistrationTimeout',
      );
      expect(hit).toBeDefined();
      return hit!;
    });
    expect(timedOut.type).toBe('Warning');

    // Unknown class: admitted while it existed, deleted before it could be served.
    await expectEvent(c, { namespace: ns, kind: 'Pod', name: 'deleted', reason: 'InsufficientCapacity' });
    await deleteClasses(c, [deleted]);
    const unknown = await expectEvent(c, {
      namespace: ns,
      kind: 'Pod',
      name: 'deleted',
      reason: 'UnknownClass',
      type: 'Warning',
    });
    expect(unknown.note).toContain(`"${deleted}" does not exist`);

    // Namespace not allowed: the class stopped allowing the pod's namespace after admission.
    await expectEvent(c, { namespace: ns, kind: 'Pod', name: 'fenced', reason: 'InsufficientCapacity' });
    await c.custom.patchClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'instanceclasses',
      name: fenced,
      body: [{ op: 'replace', path: '/spec/namespaces', value: ['elsewhere'] }],
    });
    const fencedOut = await expectEvent(c, {
      namespace: ns,
      kind: 'Pod',
      name: 'fenced',
      reason: 'NamespaceNotAllowed',
      type: 'Warning',
    });
    expect(fencedOut.note).toContain(`does not allow namespace "${ns}"`);

    // Cleanup while the controller runs: without pods, every Instance of these classes goes.
    for (const pod of ['cap', 'reg', 'deleted', 'fenced'])
      await c.core.deleteNamespacedPod({ namespace: ns, name: pod, gracePeriodSeconds: 0 });
    await eventually(
      'the RegistrationTimeout class to have no Instance left',
      async () => expect(await listInstances(c, noRegistration)).toEqual([]),
      30_000,
    );
    await deleteClasses(c, [noCapacity, noRegistration, fenced]);
    await eventually(
      'no Instance of the failing classes left',
      async () => {
        expect(
          (await listInstances(c)).filter((i) => [noCapacity, noRegistration, deleted, fenced].includes(i.spec.class)),
        ).toEqual([]);
      },
      30_000,
    );
  });
  it("serves every metric the chart's dashboard and alert rules read; the alert inputs of a stuck pod carry its class's numbers", async () => {
    const stuck = `stuck-${suffix()}`;
    classes.push(stuck);
    await createClass(c, stuck, {
      instanceTypes: ['sim.large'],
      simulated: { unavailableInstanceTypes: ['sim.large'] },
    });
    await c.core.createNamespacedPod({ namespace: ns, body: ippPod('stuck', stuck) });
    try {
      // IppPodsPendingPastBoot compares this age with launch + registration timeout (defaults 10m + 15m).
      await eventually(
        'ipp_oldest_pending_pod_age_seconds to show the stuck pod waiting',
        async () => {
          expect(await metric(ipp, 'ipp_pending_pods', { class: stuck })).toBe(1);
          expect(await metric(ipp, 'ipp_oldest_pending_pod_age_seconds', { class: stuck })).toBeGreaterThanOrEqual(3);
        },
        30_000,
      );
      expect(await metric(ipp, 'ipp_class_timeout_seconds', { class: stuck, timeout: 'launch' })).toBe(600);
      expect(await metric(ipp, 'ipp_class_timeout_seconds', { class: stuck, timeout: 'registration' })).toBe(900);
      expect(await metric(ipp, 'ipp_class_timeout_seconds', { class: web, timeout: 'idle' })).toBe(15);
      // IppProviderInsufficientCapacity's numerator.
      expect(
        await metric(ipp, 'ipp_provider_calls_total', {
          provider: 'simulated',
          operation: 'create',
          error: 'insufficient_capacity',
        }),
      ).toBeGreaterThanOrEqual(1);

      const families = familiesOf(await (await fetch(`${ipp.metricsUrl}/metrics`)).text());
      const used = chartMetricNames();
      expect(used.size).toBeGreaterThan(20);
      const missing = [...used].filter(([name]) => !familyOf(name, families)).map(([n, where]) => `${n} (${where})`);
      expect(missing, 'metrics the chart queries that /metrics does not serve').toEqual([]);
    } finally {
      await c.core.deleteNamespacedPod({ namespace: ns, name: 'stuck', gracePeriodSeconds: 0 });
    }
    await eventually(
      'the stuck pod gone from ipp_pending_pods',
      async () => expect(await metric(ipp, 'ipp_oldest_pending_pod_age_seconds', { class: stuck })).toBe(0),
      30_000,
    );
    await deleteClasses(c, [stuck]);
  });
});
