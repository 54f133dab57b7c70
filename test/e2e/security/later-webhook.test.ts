// A mutating webhook that runs after ipp's (T5). The apiserver calls mutating webhooks in order of
// their configuration's name, and re-calls an earlier one only if it matched the first time. This
// file serves such a later webhook itself: it adds a toleration for every taint to an ordinary pod,
// or the ipp-class label to a pod ipp never saw labelled. ipp's final-pod ValidatingAdmissionPolicy
// (src/webhook/policy.ts; the chart's final-pod-policy.yaml) checks the pod after all mutation.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdmissionregistrationV1Api, type V1Pod } from '@kubernetes/client-node';
import { API_VERSION, CLASS_LABEL, GATE } from '../../../src/api/names.ts';
import { renewIfNeeded } from '../../../src/webhook/certificates.ts';
import { clients, eventually, namespace, suffix, type Clients } from '../support/cluster.ts';
import { deleteClasses, installCrds } from '../support/ipp.ts';
import { kwokNode, refusal, startTestAdmission, type TestAdmission } from './support.ts';

const sfx = suffix();
const cls = `later-${sfx}`;
const ippNode = `later-ipp-${sfx}`;
// Sorted after ipp's configuration (ipp-sec-…): the apiserver calls it later.
const laterConfig = `zz-later-${sfx}`;
const container = [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }];

/** What the later webhook does, chosen by the pod's e2e-later label. */
function laterPatch(pod: V1Pod): unknown[] {
  const what = pod.metadata?.labels?.['e2e-later'];
  if (what === 'tolerate') {
    return pod.spec?.tolerations
      ? [{ op: 'add', path: '/spec/tolerations/-', value: { operator: 'Exists' } }]
      : [{ op: 'add', path: '/spec/tolerations', value: [{ operator: 'Exists' }] }];
  }
  if (what === 'opt-in') return [{ op: 'add', path: `/metadata/labels/${CLASS_LABEL}`, value: cls }];
  return [];
}

async function startLaterWebhook(): Promise<{ server: Server; caBundle: string }> {
  const m = (await renewIfNeeded(undefined, { dnsNames: ['later.e2e.svc'], ipAddresses: ['127.0.0.1'] }, new Date()))!;
  const server = createServer({ key: m.key, cert: m.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString()) as { request: { uid: string; object: V1Pod } };
      const patch = laterPatch(review.request.object);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: {
            uid: review.request.uid,
            allowed: true,
            ...(patch.length
              ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }
              : {}),
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, caBundle: m.caBundle };
}

describe('a mutating webhook that runs after ipp’s', () => {
  let c: Clients;
  let ns: string;
  let system: string;
  let admission: TestAdmission;
  let later: Server;

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'later');
    system = await namespace(c, 'ipp-later');
    await c.custom.createClusterCustomObject({
      group: 'ipp.dev',
      version: 'v1alpha1',
      plural: 'instanceclasses',
      body: {
        apiVersion: API_VERSION,
        kind: 'InstanceClass',
        metadata: { name: cls },
        spec: { simulated: {}, instanceTypes: ['sim.small'], namespaces: [ns] },
      },
    });
    await kwokNode(c, ippNode, cls, { 'e2e-later': sfx });
    admission = await startTestAdmission(c, { controllerNamespace: system, finalPodPolicy: true });
    const l = await startLaterWebhook();
    later = l.server;
    await c.kc.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: {
        metadata: { name: laterConfig },
        webhooks: [
          {
            name: 'later.e2e.ipp.dev',
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            reinvocationPolicy: 'Never',
            clientConfig: {
              url: `https://127.0.0.1:${(later.address() as AddressInfo).port}/mutate`,
              caBundle: Buffer.from(l.caBundle).toString('base64'),
            },
            rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
            objectSelector: { matchExpressions: [{ key: 'e2e-later', operator: 'Exists' }] },
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
          },
        ],
      },
    });
    // The apiserver loads a new policy within a second or so; dry runs (nothing stored) tell when.
    await eventually('the final-pod policy to be in force', async () => {
      await expect(
        c.core.createNamespacedPod({
          namespace: ns,
          dryRun: 'All',
          body: {
            metadata: { generateName: 'probe-', labels: { 'e2e-later': 'opt-in' } },
            spec: { containers: container },
          },
        }),
      ).rejects.toMatchObject({ code: 403 });
    });
  });

  afterAll(async () => {
    await c.kc
      .makeApiClient(AdmissionregistrationV1Api)
      .deleteMutatingWebhookConfiguration({ name: laterConfig })
      .catch(() => {});
    await admission?.stop();
    later?.close();
    for (const name of [ns, system]) if (name) await c.core.deleteNamespace({ name }).catch(() => {});
    await c.core.deleteNode({ name: ippNode }).catch(() => {});
    await deleteClasses(c, [cls]);
  });

  const create = (name: string, what: string) =>
    c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name, labels: { 'e2e-later': what } },
        spec: { containers: container, nodeSelector: { 'e2e-later': sfx } },
      },
    });

  it('refuses an ordinary pod a later webhook made tolerate every taint (it would land on the ipp node)', async () => {
    expect(await refusal(create('tolerant', 'tolerate'))).toContain(
      'lacks the required node affinity "ipp.dev/class DoesNotExist" that ipp adds: a mutating webhook that ran after ipp\'s added the toleration',
    );
  });

  it('refuses a pod a later webhook labelled ipp-class (ipp never gated it)', async () => {
    expect(await refusal(create('opted-in-late', 'opt-in'))).toContain(
      "is labelled ipp-class but is not held by ipp's scheduling gate",
    );
  });

  it('admits what the later webhook leaves alone, and opted-in pods ipp gated', async () => {
    await create('untouched', 'nothing');
    const p = await c.core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'tenant', labels: { [CLASS_LABEL]: cls } }, spec: { containers: container } },
    });
    expect(p.spec?.schedulingGates).toEqual([{ name: GATE }]);
  });
});
