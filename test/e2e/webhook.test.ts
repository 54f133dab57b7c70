// The admission webhook through the real apiserver: it dials our in-process server over TLS with the
// certificate the controller's own code made, stored and injected as caBundle.
import { connect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  AdmissionregistrationV1Api,
  BatchV1Api,
  RbacAuthorizationV1Api,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import {
  API_VERSION,
  CLASS_LABEL,
  GATE,
  NODE_CLASS_LABEL,
  NODE_INSTANCE_LABEL,
  POD_INSTANCE_ANNOTATION,
  POD_PINNED_AT_ANNOTATION,
  TAINT_KEY,
} from '../../src/api/names.ts';
import type { InstanceClass } from '../../src/api/types.ts';
import { kubeError } from '../../src/kube/errors.ts';
import { mergePatch } from '../../src/kube/patch.ts';
import { startSelfSignedCertificates } from '../../src/webhook/certificates.ts';
import { ENFORCE_WEBHOOK, webhookConfiguration } from '../../src/webhook/configuration.ts';
import { ownUsername } from '../../src/webhook/identity.ts';
import { startWebhookServer, type WebhookServer } from '../../src/webhook/server.ts';
import { apiserverMetric, clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import { allowIsolationViolations } from './support/invariant.ts';
import { installCrds } from './support/ipp.ts';

const sfx = suffix();
const cls = `wh-${sfx}`;
const restricted = `wh-r-${sfx}`;
const configName = `ipp-webhook-e2e-${sfx}`;
const ippNode = `wh-ipp-${sfx}`;
const plainNode = `wh-plain-${sfx}`;
const instanceName = `wh-inst-${sfx}`;
const CERT_VALIDITY_MS = 24_000; // renewed every ~16 s: the suite runs through real rotations

const toleration = { key: TAINT_KEY, operator: 'Equal', value: cls, effect: 'NoSchedule' };
const container = [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }];

const normalSerial = (hex: string) => hex.toLowerCase().replace(/^0+/, '');

/** The message the client got, or a failure if the request was admitted. */
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

/** The user that plays the controller: the testbed's identity without any RBAC of its own. */
const CONTROLLER_USER = 'ipp-testbed-user';

describe('admission webhook on the real apiserver', () => {
  let c: Clients;
  let admission: AdmissionregistrationV1Api;
  let ns: string;
  let controllerNs: string;
  /** The platform team's node agents: the one namespace (besides kube-system) whose DaemonSets are trusted. */
  let agentsNs: string;
  let server: WebhookServer | undefined;
  let certs: Awaited<ReturnType<typeof startSelfSignedCertificates>>;
  let rotations = 0;
  const classes = new Map<string, InstanceClass>();
  const nodes = new Map<string, V1Node>();

  /** The pin as the controller writes it (DESIGN.md step 5): the gate removed, the node selected. */
  const lift = [
    { op: 'test', path: '/spec/schedulingGates/0/name', value: GATE },
    { op: 'remove', path: '/spec/schedulingGates/0' },
    { op: 'add', path: '/spec/nodeSelector', value: { [NODE_INSTANCE_LABEL]: instanceName } },
  ];

  /** Clients as the controller's identity, granted `edit` in the test namespace (once). */
  async function controllerClients(): Promise<Clients> {
    await c.kc
      .makeApiClient(RbacAuthorizationV1Api)
      .createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: 'controller-edit' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
          subjects: [{ kind: 'User', name: CONTROLLER_USER, apiGroup: 'rbac.authorization.k8s.io' }],
        },
      })
      .catch((e: unknown) => {
        if (kubeError(e)?.code !== 409) throw e;
      });
    return clients(inject('identities').unprivileged!);
  }

  const pod = (name: string, labels: Record<string, string>, spec: Partial<V1Pod['spec']> = {}): V1Pod => ({
    metadata: { name, labels },
    spec: { containers: container, ...spec },
  });

  beforeAll(async () => {
    c = clients();
    admission = c.kc.makeApiClient(AdmissionregistrationV1Api);
    ns = await namespace(c, 'webhook');
    controllerNs = await namespace(c, 'webhook-ctl');
    agentsNs = await namespace(c, 'webhook-agents');
    // Trusted node agents run there; the control pod of one test lands on the ipp node on purpose.
    allowIsolationViolations(agentsNs, controllerNs);
    await installCrds(c);

    for (const [name, extra] of [
      [cls, { namespaces: ['*'] }],
      [restricted, { namespaces: ['somewhere-else'] }],
    ] as const) {
      await c.custom.createClusterCustomObject({
        group: 'ipp.dev',
        version: 'v1alpha1',
        plural: 'instanceclasses',
        body: {
          apiVersion: API_VERSION,
          kind: 'InstanceClass',
          metadata: { name },
          spec: { simulated: {}, instanceTypes: ['sim.small'], ...extra },
        },
      });
      // The controller feeds the server from its informer; here the lookup is filled from the apiserver.
      classes.set(
        name,
        (await c.custom.getClusterCustomObject({
          group: 'ipp.dev',
          version: 'v1alpha1',
          plural: 'instanceclasses',
          name,
        })) as InstanceClass,
      );
    }

    for (const [name, labels, taints] of [
      [
        ippNode,
        { [NODE_CLASS_LABEL]: cls, [NODE_INSTANCE_LABEL]: instanceName, 'e2e-target': sfx },
        [{ key: TAINT_KEY, value: cls, effect: 'NoSchedule' }],
      ],
      [plainNode, { 'e2e-plain': sfx }, []],
    ] as const) {
      await c.core.createNode({
        body: {
          metadata: { name, labels: { ...labels }, annotations: { 'kwok.x-k8s.io/node': 'fake' } },
          spec: { taints: [...taints] },
        },
      });
      await eventually(`kwok to make ${name} Ready`, async () => {
        const n = await c.core.readNode({ name });
        expect(n.status?.conditions?.find((x) => x.type === 'Ready')?.status).toBe('True');
        nodes.set(name, n);
      });
    }

    // The configuration does not exist yet: the certificate code must cope and patch it later.
    certs = await startSelfSignedCertificates({
      core: c.core,
      admission,
      namespace: controllerNs,
      secretName: 'ipp-webhook-tls',
      dnsNames: ['ipp-webhook.e2e.svc'],
      ipAddresses: ['127.0.0.1'],
      webhookConfigurations: [configName],
      lifetimes: { certValidityMs: CERT_VALIDITY_MS },
      resyncMs: 1000,
    });
    // The controller's identity here: the testbed's unprivileged user, granted `edit` where it pins.
    server = await startWebhookServer({
      tls: certs.current(),
      port: 0,
      host: '127.0.0.1',
      placement: 'pin',
      classes,
      nodes,
      controllerUsernames: [CONTROLLER_USER],
      trust: { daemonSetNamespaces: ['kube-system', agentsNs] },
    });
    certs.onChange((tls) => {
      rotations++;
      server?.setSecureContext(tls);
    });
    await admission.createMutatingWebhookConfiguration({
      body: webhookConfiguration({
        name: configName,
        client: { url: `https://127.0.0.1:${server.port}` },
        controllerNamespace: controllerNs,
        controllerUsername: CONTROLLER_USER,
        trustedDaemonSetNamespaces: ['kube-system', agentsNs],
      }),
    });
    await certs.resync();
    const cfg = await admission.readMutatingWebhookConfiguration({ name: configName });
    for (const w of cfg.webhooks ?? [])
      expect(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString()).toBe(certs.caBundle());
  });

  afterAll(async () => {
    // The configuration first: nothing else in the cluster may depend on this file's server.
    await admission?.deleteMutatingWebhookConfiguration({ name: configName }).catch(() => {});
    await certs?.stop();
    await server?.close();
    for (const name of [ns, controllerNs, agentsNs]) if (name) await c.core.deleteNamespace({ name }).catch(() => {});
    for (const name of [ippNode, plainNode]) await c?.core.deleteNode({ name }).catch(() => {});
    for (const name of [cls, restricted]) {
      await c?.custom
        .deleteClusterCustomObject({ group: 'ipp.dev', version: 'v1alpha1', plural: 'instanceclasses', name })
        .catch(() => {});
    }
  });

  it('gates and tolerates the pods of a Deployment that only added the ipp-class label; nothing else changes', async () => {
    const template = { metadata: { labels: { app: 'relay', [CLASS_LABEL]: cls } }, spec: { containers: container } };
    await c.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'relay' },
        spec: { replicas: 2, selector: { matchLabels: { app: 'relay' } }, template },
      },
    });
    const pods = await eventually('2 pods of the Deployment, gated', async () => {
      const list = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=relay' });
      expect(list.items).toHaveLength(2);
      for (const p of list.items) {
        expect(p.status?.conditions?.find((x) => x.type === 'PodScheduled')?.reason).toBe('SchedulingGated');
      }
      return list.items;
    });
    for (const p of pods) {
      expect(p.metadata?.name).toMatch(/^relay-/); // generateName: the webhook saw no name
      expect(p.spec?.schedulingGates).toEqual([{ name: GATE }]);
      expect(p.spec?.tolerations).toContainEqual(toleration);
      expect(p.spec?.nodeName).toBeUndefined();
      expect(p.spec?.nodeSelector).toBeUndefined();
      expect(p.spec?.affinity).toBeUndefined();
      expect(p.spec?.schedulerName).toBe('default-scheduler');
    }
    // The Deployment's own template is untouched: the webhook only ever sees pods.
    const d = await c.apps.readNamespacedDeployment({ name: 'relay', namespace: ns });
    expect(d.spec?.template.spec?.schedulingGates).toBeUndefined();
    expect(d.spec?.template.spec?.tolerations).toBeUndefined();
  });

  it('mutates pods of a Job and a StatefulSet, dry-run requests, and keeps existing gates and tolerations', async () => {
    const batch = c.kc.makeApiClient(BatchV1Api);
    const labels = { [CLASS_LABEL]: cls };
    await batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: 'once' },
        spec: { template: { metadata: { labels }, spec: { containers: container, restartPolicy: 'Never' } } },
      },
    });
    await c.apps.createNamespacedStatefulSet({
      namespace: ns,
      body: {
        metadata: { name: 'db' },
        spec: {
          serviceName: 'db',
          replicas: 1,
          selector: { matchLabels: { app: 'db' } },
          template: { metadata: { labels: { ...labels, app: 'db' } }, spec: { containers: container } },
        },
      },
    });
    for (const selector of ['job-name=once', 'app=db']) {
      await eventually(`gated pod for ${selector}`, async () => {
        const [p] = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: selector })).items;
        expect(p?.spec?.schedulingGates).toEqual([{ name: GATE }]);
        expect(p?.spec?.tolerations).toContainEqual(toleration);
      });
    }

    const dry = await c.core.createNamespacedPod({
      namespace: ns,
      dryRun: 'All',
      body: {
        metadata: { generateName: 'dry-', labels },
        spec: {
          containers: container,
          schedulingGates: [{ name: 'example.com/other' }],
          tolerations: [{ key: 'example.com/gpu', operator: 'Exists' }],
        },
      },
    });
    expect(dry.spec?.schedulingGates).toEqual([{ name: 'example.com/other' }, { name: GATE }]);
    expect(dry.spec?.tolerations).toEqual(
      expect.arrayContaining([{ key: 'example.com/gpu', operator: 'Exists' }, toleration]),
    );
    expect(dry.spec?.tolerations?.filter((t) => t.key === TAINT_KEY)).toHaveLength(2); // NoSchedule and NoExecute
    // dry run: nothing was stored
    expect(
      (await c.core.listNamespacedPod({ namespace: ns, labelSelector: CLASS_LABEL })).items.some((p) =>
        p.metadata?.name?.startsWith('dry-'),
      ),
    ).toBe(false);
  });

  it('denies, with a message that says what to do: unknown class, namespace not allowed, nodeName, another scheduler', async () => {
    const create = (p: V1Pod) => c.core.createNamespacedPod({ namespace: ns, body: p });
    expect(await refusal(create(pod('unknown', { [CLASS_LABEL]: `nope-${sfx}` })))).toMatch(
      new RegExp(
        `denied the request: InstanceClass "nope-${sfx}" does not exist\\. Set the label ipp-class to an existing class`,
      ),
    );
    expect(await refusal(create(pod('elsewhere', { [CLASS_LABEL]: restricted })))).toContain(
      `InstanceClass "${restricted}" does not allow pods in namespace "${ns}". Use a class`,
    );
    expect(await refusal(create(pod('pinned', { [CLASS_LABEL]: cls }, { nodeName: plainNode })))).toContain(
      `spec.nodeName is set to "${plainNode}", but ipp gives a pod labelled ipp-class its own dedicated node. Remove spec.nodeName`,
    );
    expect(await refusal(create(pod('custom', { [CLASS_LABEL]: cls }, { schedulerName: 'volcano' })))).toContain(
      'spec.schedulerName is "volcano", but ipp places pods labelled ipp-class. Remove spec.schedulerName',
    );
    // A Deployment with a bad class is accepted (the webhook sees pods), and its ReplicaSet reports why no pod appears.
    await c.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'typo' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'typo' } },
          template: {
            metadata: { labels: { app: 'typo', [CLASS_LABEL]: `nope-${sfx}` } },
            spec: { containers: container },
          },
        },
      },
    });
    await eventually('a FailedCreate event carrying the denial', async () => {
      const events = await c.core.listNamespacedEvent({ namespace: ns });
      expect(
        events.items.find(
          (e) => e.reason === 'FailedCreate' && e.message?.includes(`InstanceClass "nope-${sfx}" does not exist`),
        ),
      ).toBeDefined();
    });
  });

  it('does not touch the pods of a trusted DaemonSet labelled ipp-class', async () => {
    await c.apps.createNamespacedDaemonSet({
      namespace: agentsNs,
      body: {
        metadata: { name: 'agent' },
        spec: {
          selector: { matchLabels: { app: 'agent' } },
          template: {
            metadata: { labels: { app: 'agent', [CLASS_LABEL]: cls } },
            spec: { containers: container, nodeSelector: { 'e2e-plain': sfx } },
          },
        },
      },
    });
    const p = await eventually(
      'the DaemonSet pod running on the plain node',
      async () => {
        const [p] = (await c.core.listNamespacedPod({ namespace: agentsNs, labelSelector: 'app=agent' })).items;
        expect(p?.spec?.nodeName).toBe(plainNode);
        expect(p?.status?.phase).toBe('Running');
        return p!;
      },
      90_000,
    );
    expect(p.spec?.schedulingGates).toBeUndefined();
    expect(p.spec?.tolerations?.some((t) => t.key === TAINT_KEY)).toBe(false);
  });

  it('keeps a pod that tolerates everything off ipp nodes, even when they are the only nodes it fits', async () => {
    const greedy = (name: string): V1Pod =>
      pod(
        name,
        { app: 'greedy' },
        {
          tolerations: [{ operator: 'Exists' }, { key: 'example.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
          nodeSelector: { 'e2e-target': sfx },
        },
      );
    const created = await c.core.createNamespacedPod({ namespace: ns, body: greedy('greedy') });
    expect(
      created.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms,
    ).toEqual([{ matchExpressions: [{ key: NODE_CLASS_LABEL, operator: 'DoesNotExist' }] }]);
    expect(created.spec?.tolerations).toEqual([
      { operator: 'Exists' },
      { key: 'example.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    await eventually('the scheduler to find no node for it', async () => {
      const p = await c.core.readNamespacedPod({ name: 'greedy', namespace: ns });
      const cond = p.status?.conditions?.find((x) => x.type === 'PodScheduled');
      expect(cond?.reason).toBe('Unschedulable');
      expect(cond?.message).toMatch(/didn't match Pod's node affinity\/selector/);
    });
    // Control: the same pod where the webhook does not apply (the controller's namespace) lands on the ipp node,
    // so it is the webhook, not the test setup, that keeps the first one off.
    await c.core.createNamespacedPod({ namespace: controllerNs, body: greedy('greedy-control') });
    await eventually('the control pod on the ipp node', async () => {
      const p = await c.core.readNamespacedPod({ name: 'greedy-control', namespace: controllerNs });
      expect(p.spec?.nodeName).toBe(ippNode);
    });
    await c.core.deleteNamespacedPod({ name: 'greedy-control', namespace: controllerNs, gracePeriodSeconds: 0 });
    expect((await c.core.readNamespacedPod({ name: 'greedy', namespace: ns })).spec?.nodeName).toBeUndefined();
  });

  it('refuses a pod that names an ipp node, and a direct binding to one; allows both for a shared node', async () => {
    expect(
      await refusal(
        c.core.createNamespacedPod({ namespace: ns, body: pod('sneaky', { app: 'sneaky' }, { nodeName: ippNode }) }),
      ),
    ).toContain(`node "${ippNode}" is an ipp node, reserved for the pods ipp places there. Remove spec.nodeName`);
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('direct', { app: 'direct' }, { nodeName: plainNode }),
    });

    // Nobody schedules these; the test binds them itself, as a rogue scheduler would.
    for (const name of ['unbound', 'unbound-ok']) {
      await c.core.createNamespacedPod({
        namespace: ns,
        body: pod(
          name,
          { app: name },
          { schedulerName: 'nobody', tolerations: [{ key: TAINT_KEY, operator: 'Exists' }] },
        ),
      });
    }
    expect(
      await refusal(
        c.core.createNamespacedBinding({
          namespace: ns,
          body: { metadata: { name: 'unbound' }, target: { kind: 'Node', name: ippNode } },
        }),
      ),
    ).toContain(`node "${ippNode}" is an ipp node, reserved for the pods ipp places there;`);
    await c.core.createNamespacedBinding({
      namespace: ns,
      body: { metadata: { name: 'unbound-ok' }, target: { kind: 'Node', name: plainNode } },
    });
    expect((await c.core.readNamespacedPod({ name: 'unbound-ok', namespace: ns })).spec?.nodeName).toBe(plainNode);
    expect((await c.core.readNamespacedPod({ name: 'unbound', namespace: ns })).spec?.nodeName).toBeUndefined();
  });

  it('pins a gated pod the way the controller does, then refuses to relabel it', async () => {
    await c.core.createNamespacedPod({ namespace: ns, body: pod('tenant', { [CLASS_LABEL]: cls }) });
    /** Calls kube-apiserver made to the enforcement webhook, as it counts them. */
    const enforceCalls = () =>
      apiserverMetric(c, 'apiserver_admission_webhook_request_total', { name: ENFORCE_WEBHOOK });
    const called = await enforceCalls();
    // Anyone else lifting the gate is refused (here: the cluster admin)...
    expect(await refusal(c.core.patchNamespacedPod({ name: 'tenant', namespace: ns, body: lift }))).toContain(
      'the scheduling gate ipp.dev/provision is lifted by ipp',
    );
    expect(await enforceCalls()).toBeGreaterThan(called);
    // ...as is a claim, whatever it says: '<none>' too, which the match condition once read as "no
    // annotation", so that write skipped the webhook.
    for (const claim of ['<none>', instanceName])
      expect(
        await refusal(
          c.core.patchNamespacedPod(
            {
              name: 'tenant',
              namespace: ns,
              body: { metadata: { annotations: { [POD_INSTANCE_ANNOTATION]: claim } } },
            },
            mergePatch,
          ),
        ),
        `a claim of ${claim}`,
      ).toContain('ipp.dev/instance records which Instance ipp gave the pod and only ipp sets it');
    // ...the controller's identity may: the pin (DESIGN.md step 5) adds the nodeSelector and removes the gate.
    const controller = await controllerClients();
    await eventually('the RoleBinding to take effect', () =>
      controller.core.readNamespacedPod({ name: 'tenant', namespace: ns }),
    );
    // ...and its claim and pin are decided by the configuration's match condition, without a call: a
    // call per write would sit in the path of every pin, and in the controller's CPU.
    const beforePin = await enforceCalls();
    await controller.core.patchNamespacedPod(
      {
        name: 'tenant',
        namespace: ns,
        body: { metadata: { annotations: { [POD_INSTANCE_ANNOTATION]: instanceName } } },
      },
      mergePatch,
    );
    await controller.core.patchNamespacedPod({ name: 'tenant', namespace: ns, body: lift });
    expect(await enforceCalls()).toBe(beforePin);
    await eventually('kube-scheduler to bind the pinned pod to the ipp node', async () => {
      const p = await c.core.readNamespacedPod({ name: 'tenant', namespace: ns });
      expect(p.spec?.nodeName).toBe(ippNode);
    });
    const relabel = (value: unknown) =>
      c.core.patchNamespacedPod({
        name: 'tenant',
        namespace: ns,
        body:
          value === undefined
            ? [{ op: 'remove', path: '/metadata/labels/ipp-class' }]
            : [{ op: 'replace', path: '/metadata/labels/ipp-class', value }],
      });
    expect(await refusal(relabel(restricted))).toContain(
      `changing the label ipp-class from "${cls}" to "${restricted}" is not allowed on an existing pod (it already runs on node "${ippNode}")`,
    );
    expect(await refusal(relabel(undefined))).toContain(
      'removing the label ipp-class is not allowed on an existing pod',
    );
    // The controller's identity is exempt from the call only for what it may do: its relabel is
    // sent, and refused as anyone's.
    expect(
      await refusal(
        controller.core.patchNamespacedPod({
          name: 'tenant',
          namespace: ns,
          body: [{ op: 'replace', path: '/metadata/labels/ipp-class', value: restricted }],
        }),
      ),
    ).toContain(`changing the label ipp-class from "${cls}" to "${restricted}" is not allowed on an existing pod`);
    // Nor may anyone but ipp write the pin's time (it times a refusal, and so the pod's hold on its instance).
    expect(
      await refusal(
        c.core.patchNamespacedPod(
          {
            name: 'tenant',
            namespace: ns,
            body: { metadata: { annotations: { [POD_PINNED_AT_ANNOTATION]: '2999-01-01T00:00:00Z' } } },
          },
          mergePatch,
        ),
      ),
    ).toContain('ipp.dev/pinned-at records when ipp pinned the pod to its node and only ipp sets it');
    // Other label changes never reach the enforcement webhook's rule.
    await c.core.patchNamespacedPod({
      name: 'tenant',
      namespace: ns,
      body: [{ op: 'add', path: '/metadata/labels/team', value: 'mail' }],
    });
  });

  it('rotates the serving certificate without a restart; the apiserver keeps trusting it', async () => {
    const servedSerial = () =>
      new Promise<string>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: server!.port, rejectUnauthorized: false }, () => {
          resolve(normalSerial(s.getPeerX509Certificate()!.serialNumber));
          s.end();
        });
        s.on('error', reject);
      });
    const caBefore = certs.caBundle();
    const before = rotations;
    const first = await servedSerial();
    await eventually(
      'a certificate rotation',
      async () => expect(rotations).toBeGreaterThan(before),
      CERT_VALIDITY_MS + 10_000,
      500,
    );
    const leaf = new X509Certificate(certs.current().cert);
    const served = await servedSerial();
    expect(served).not.toBe(first);
    expect(served).toBe(normalSerial(leaf.serialNumber));
    expect(certs.caBundle()).toBe(caBefore); // leaf renewed, same CA: no caBundle churn
    expect(leaf.verify(new X509Certificate(caBefore).publicKey)).toBe(true); // first PEM block: the current CA
    const p = await c.core.createNamespacedPod({ namespace: ns, body: pod('after-rotation', { [CLASS_LABEL]: cls }) });
    expect(p.spec?.schedulingGates).toEqual([{ name: GATE }]);
  });

  it('converges replicas that race on an empty Secret onto one CA', async () => {
    const start = () =>
      startSelfSignedCertificates({
        core: c.core,
        admission,
        namespace: controllerNs,
        secretName: `race-${sfx}`,
        dnsNames: ['ipp-webhook.e2e.svc'],
        webhookConfigurations: [],
        resyncMs: 60_000,
      });
    const replicas = await Promise.all([start(), start(), start()]);
    try {
      const bundles = new Set(replicas.map((r) => r.caBundle()));
      const leaves = new Set(replicas.map((r) => r.current().cert));
      expect(bundles.size).toBe(1);
      expect(leaves.size).toBe(1);
      const secret = await c.core.readNamespacedSecret({ name: `race-${sfx}`, namespace: controllerNs });
      expect(Buffer.from(secret.data!['ca.crt']!, 'base64').toString()).toBe([...bundles][0]);
    } finally {
      await Promise.all(replicas.map((r) => r.stop()));
    }
  });

  it('refuses an opted-in pod while the webhook server is down (failurePolicy Fail); other pods are unaffected', async () => {
    // Admitted (gated) while the server is up: the controller goes on placing it once it is down.
    await c.core.createNamespacedPod({ namespace: ns, body: pod('admitted', { [CLASS_LABEL]: cls }) });
    await server!.close();
    server = undefined;
    // Anyone else's lift would need the dead server, and is refused...
    expect(await refusal(c.core.patchNamespacedPod({ name: 'admitted', namespace: ns, body: lift }))).toMatch(
      /failed calling webhook "enforce\.pods\.ipp\.dev"/,
    );
    // ...the controller's claim and pin are decided by the match condition, and go through.
    const controller = await controllerClients();
    await eventually('the controller may patch pods here', () =>
      controller.core.patchNamespacedPod(
        {
          name: 'admitted',
          namespace: ns,
          body: { metadata: { annotations: { [POD_INSTANCE_ANNOTATION]: instanceName } } },
        },
        mergePatch,
      ),
    );
    await controller.core.patchNamespacedPod({ name: 'admitted', namespace: ns, body: lift });
    const message = await refusal(
      c.core.createNamespacedPod({ namespace: ns, body: pod('orphan', { [CLASS_LABEL]: cls }) }),
    );
    expect(message).toMatch(/failed calling webhook "mutate\.pods\.ipp\.dev"/);
    await expect(c.core.readNamespacedPod({ name: 'orphan', namespace: ns })).rejects.toMatchObject({ code: 404 });
    // Without the label or an ipp toleration, nothing in the cluster waits on ipp: the match
    // conditions keep these requests from ever reaching the (dead) server.
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('bystander', { app: 'bystander' }, { tolerations: [{ key: 'example.com/gpu', operator: 'Exists' }] }),
    });
    await c.core.patchNamespacedPod({
      name: 'tenant',
      namespace: ns,
      body: [{ op: 'add', path: '/metadata/labels/tier', value: 'gold' }],
    });
    // Trusted node agents tolerating everything keep rolling out, onto ipp nodes too (they belong on every node).
    await c.apps.createNamespacedDaemonSet({
      namespace: agentsNs,
      body: {
        metadata: { name: 'everywhere' },
        spec: {
          selector: { matchLabels: { app: 'everywhere' } },
          template: {
            metadata: { labels: { app: 'everywhere' } },
            spec: { containers: container, tolerations: [{ operator: 'Exists' }], nodeSelector: { 'e2e-target': sfx } },
          },
        },
      },
    });
    const agent = await eventually(
      'the DaemonSet pod on the ipp node',
      async () => {
        const [p] = (await c.core.listNamespacedPod({ namespace: agentsNs, labelSelector: 'app=everywhere' })).items;
        expect(p?.spec?.nodeName).toBe(ippNode);
        return p!;
      },
      90_000,
    );
    expect(JSON.stringify(agent.spec?.affinity)).not.toContain('DoesNotExist');
    // ...while an ordinary pod asking for the same is refused rather than admitted unchecked.
    expect(
      await refusal(
        c.core.createNamespacedPod({
          namespace: ns,
          body: pod('greedy-2', { app: 'greedy' }, { tolerations: [{ operator: 'Exists' }] }),
        }),
      ),
    ).toMatch(/failed calling webhook "enforce\.pods\.ipp\.dev"/);
  });

  it('reports the identity the apiserver puts in AdmissionReview.userInfo (for controllerUsernames)', async () => {
    expect(await ownUsername(c.kc)).toBe('ipp-testbed-admin');
  });
});
