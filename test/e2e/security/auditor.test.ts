// The auditor reports what admission cannot see or was bypassed for (T1, T5), with the real
// controller running: an untrusted DaemonSet's pod on an ipp node, a pod in a trusted namespace whose
// DaemonSet owner does not exist, and a pod of a class running on a shared node. A real DaemonSet in
// a trusted namespace is not reported. The pods are made where no webhook applies (the controller's
// own namespace, kube-system), as an outage or a misconfiguration would let them through.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventsV1Api, type V1DaemonSet, type V1Pod } from '@kubernetes/client-node';
import { CLASS_LABEL, NODE_INSTANCE_LABEL } from '../../../src/api/names.ts';
import { eventually, suffix } from '../support/cluster.ts';
import { createClass, listInstances, useIppEnvironment } from '../support/ipp.ts';
import { kwokNode } from './support.ts';
import { allowIsolationViolations } from '../support/invariant.ts';

const env = useIppEnvironment('audit');
const sfx = suffix();
const cls = `audit-${sfx}`;
const plainNode = `audit-plain-${sfx}`;
const container = [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }];
const FINALIZER = 'e2e.ipp.dev/keep';

describe('the auditor', () => {
  let node: string;
  let instance: string;
  const kubeSystem: string[] = [];

  beforeAll(async () => {
    env.classes.push(cls);
    await createClass(env.c, cls, { instanceTypes: ['sim.small'], idleTimeout: '3s', simulated: { bootDelay: '1s' } });
    await env.start();
    await kwokNode(env.c, plainNode);
    await env.c.core.createNamespacedPod({
      namespace: env.ns,
      body: { metadata: { name: 'tenant', labels: { [CLASS_LABEL]: cls } }, spec: { containers: container } },
    });
    const p = await eventually(
      'the tenant pod running on its own node',
      async () => {
        const p = await env.c.core.readNamespacedPod({ namespace: env.ns, name: 'tenant' });
        expect(p.status?.phase).toBe('Running');
        return p;
      },
      90_000,
    );
    node = p.spec!.nodeName!;
    instance = (await env.c.core.readNode({ name: node })).metadata!.labels![NODE_INSTANCE_LABEL]!;
    // Made on purpose below; the file's isolation check must not count them.
    allowIsolationViolations(env.system, 'kube-system');
  });

  afterAll(async () => {
    // Leave nothing for the next file's controllers to find: violations, the tenant, its Instance.
    await env.c.apps.deleteNamespacedDaemonSet({ namespace: env.system, name: 'rogue' }).catch(() => {});
    for (const [namespace, name] of [
      [env.system, 'escaped'],
      [env.ns, 'tenant'],
    ] as const)
      await env.c.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }).catch(() => {});
    await eventually(
      'the tenant’s Instance torn down',
      async () => expect(await listInstances(env.c, cls)).toEqual([]),
      90_000,
    ).catch(() => {});
    for (const name of kubeSystem) {
      await env.c.core
        .patchNamespacedPod({ namespace: 'kube-system', name, body: [{ op: 'remove', path: '/metadata/finalizers' }] })
        .catch(() => {});
      await env.c.core.deleteNamespacedPod({ namespace: 'kube-system', name, gracePeriodSeconds: 0 }).catch(() => {});
    }
    await env.c.apps.deleteNamespacedDaemonSet({ namespace: 'kube-system', name: `agent-${sfx}` }).catch(() => {});
    await env.c.core.deleteNode({ name: plainNode }).catch(() => {});
  });

  const daemonSet = (name: string): V1DaemonSet => ({
    metadata: { name },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: container,
          tolerations: [{ operator: 'Exists' }],
          nodeSelector: { [NODE_INSTANCE_LABEL]: instance },
        },
      },
    },
  });
  const violationsOf = async (namespace: string, name: string) =>
    (await env.c.kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace })).items.filter(
      (e) => e.regarding?.name === name && e.reason === 'IsolationViolation',
    );
  const podOn = async (namespace: string, app: string, nodeName: string): Promise<V1Pod> =>
    eventually(
      `the ${app} pod on ${nodeName}`,
      async () => {
        const [p] = (await env.c.core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items;
        expect(p?.spec?.nodeName).toBe(nodeName);
        return p!;
      },
      90_000,
    );

  it('reports the pod of a DaemonSet outside the trusted namespaces on an ipp node', async () => {
    await env.c.apps.createNamespacedDaemonSet({ namespace: env.system, body: daemonSet('rogue') });
    const p = await podOn(env.system, 'rogue', node);
    const [event] = await eventually('an IsolationViolation event for the rogue pod', async () => {
      const events = await violationsOf(env.system, p.metadata!.name!);
      expect(events).toHaveLength(1);
      return events;
    });
    expect(event!.note).toContain(`a pod without ipp-class runs on node ${node}, which is dedicated to class ${cls}`);
  });

  it('reports a pod in a trusted namespace whose DaemonSet owner does not exist; not a real DaemonSet’s pod', async () => {
    await env.c.apps.createNamespacedDaemonSet({ namespace: 'kube-system', body: daemonSet(`agent-${sfx}`) });
    const real = await podOn('kube-system', `agent-${sfx}`, node);
    const forged = `forged-${sfx}`;
    kubeSystem.push(forged);
    await env.c.core.createNamespacedPod({
      namespace: 'kube-system',
      body: {
        metadata: {
          name: forged,
          // The garbage collector deletes a pod whose owner does not exist, and the testbed's kubelets
          // end a deleted pod at once: an owner of an API version the collector cannot resolve keeps
          // it away, as it would any attacker's (the finalizer stays for the cleanup's sake).
          finalizers: [FINALIZER],
          ownerReferences: [
            { apiVersion: 'apps/v1beta2', kind: 'DaemonSet', name: 'kube-proxy', uid: randomUUID(), controller: true },
          ],
        },
        spec: { containers: container, nodeName: node, tolerations: [{ operator: 'Exists' }] },
      },
    });
    await eventually('an IsolationViolation event for the forged pod', async () => {
      expect(await violationsOf('kube-system', forged)).toHaveLength(1);
    });
    expect(await violationsOf('kube-system', real.metadata!.name!)).toEqual([]);
  });

  it('reports a pod of a class running on a shared node', async () => {
    await env.c.core.createNamespacedPod({
      namespace: env.system,
      body: {
        metadata: { name: 'escaped', labels: { [CLASS_LABEL]: cls } },
        spec: { containers: container, nodeName: plainNode },
      },
    });
    const [event] = await eventually('an IsolationViolation event for the escaped pod', async () => {
      const events = await violationsOf(env.system, 'escaped');
      expect(events).toHaveLength(1);
      return events;
    });
    expect(event!.note).toContain(`a pod of class ${cls} runs on node ${plainNode}, which is not an ipp node`);
  });
});
