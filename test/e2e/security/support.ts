// What the security e2e tests share: acting as the attackers the threat model names (a namespace
// editor, a kubelet, the controller's own token), and reading refusals.
import { AdmissionregistrationV1Api, RbacAuthorizationV1Api, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { clientCertKubeconfig } from '../../testbed/controlplane.ts';
import { GROUP, NODE_CLASS_LABEL, NODE_INSTANCE_LABEL, TAINT_KEY, VERSION } from '../../../src/api/names.ts';
import type { InstanceClass } from '../../../src/api/types.ts';
import { isNotFound, kubeError } from '../../../src/kube/errors.ts';
import type { DaemonSetTrust, PlacementMode } from '../../../src/webhook/admission.ts';
import { startSelfSignedCertificates } from '../../../src/webhook/certificates.ts';
import { webhookConfiguration } from '../../../src/webhook/configuration.ts';
import { startWebhookServer, type WebhookServer } from '../../../src/webhook/server.ts';
import { clients, eventually, suffix, type Clients } from '../support/cluster.ts';

/** Clients authenticated as the kubelet of `node` (system:node:<node>, group system:nodes). */
export function asNode(node: string): Clients {
  return clients(clientCertKubeconfig(inject('testbedDir'), `system:node:${node}`, ['system:nodes']));
}

/**
 * Clients for a fresh user bound to the built-in `edit` ClusterRole in `namespace` only: what a
 * tenant team usually gets. Waits until the binding is in effect.
 */
export async function asNamespaceEditor(admin: Clients, namespace: string, user: string): Promise<Clients> {
  await admin.kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: `edit-${user}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'User', name: user, apiGroup: 'rbac.authorization.k8s.io' }],
    },
  });
  const editor = clients(clientCertKubeconfig(inject('testbedDir'), user, ['tenants']));
  await eventually(`the edit RoleBinding of ${user} to take effect`, () =>
    editor.apps.listNamespacedDaemonSet({ namespace }),
  );
  return editor;
}

/** The message of the refusal, or a failure if the request was admitted. */
export async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const k = kubeError(e);
    if (!k) throw e;
    return k.message;
  }
  throw new Error('the request was admitted');
}

export interface TestAdmission {
  server: WebhookServer;
  configName: string;
  /** ipp nodes the webhook knows from its "cache"; others are read from the apiserver. */
  nodes: Map<string, V1Node>;
  /** Pods the webhook knows from its "cache" (`namespace/name`), for the controller's own evictions and bindings. */
  pods: Map<string, V1Pod>;
  stop(): Promise<void>;
}

/**
 * ipp's admission as the controller runs it, in this process: certificates from the project's own
 * code, the webhook server, and the MutatingWebhookConfiguration (plus, optionally, the final-pod
 * ValidatingAdmissionPolicy) the chart installs, all against the real apiserver.
 */
export async function startTestAdmission(
  c: Clients,
  o: {
    controllerNamespace: string;
    trust?: DaemonSetTrust;
    controllerUsernames?: string[];
    placement?: PlacementMode;
    finalPodPolicy?: boolean;
  },
): Promise<TestAdmission> {
  const admission = c.kc.makeApiClient(AdmissionregistrationV1Api);
  const configName = `ipp-sec-${suffix()}`;
  const nodes = new Map<string, V1Node>();
  const pods = new Map<string, V1Pod>();
  const certs = await startSelfSignedCertificates({
    core: c.core,
    admission,
    namespace: o.controllerNamespace,
    secretName: 'ipp-webhook-tls',
    dnsNames: ['ipp-webhook.e2e.svc'],
    ipAddresses: ['127.0.0.1'],
    webhookConfigurations: [configName],
    resyncMs: 2_000,
  });
  const server = await startWebhookServer({
    tls: certs.current(),
    port: 0,
    host: '127.0.0.1',
    placement: o.placement ?? 'pin',
    classes: {
      get: () => undefined,
      fetch: async (name) => {
        try {
          return (await c.custom.getClusterCustomObject({
            group: GROUP,
            version: VERSION,
            plural: 'instanceclasses',
            name,
          })) as InstanceClass;
        } catch (e) {
          if (isNotFound(e)) return undefined;
          throw e;
        }
      },
    },
    nodes: {
      get: (name) => nodes.get(name),
      fetch: async (name) => {
        try {
          return await c.core.readNode({ name });
        } catch (e) {
          if (isNotFound(e)) return undefined;
          throw e;
        }
      },
    },
    controllerUsernames: o.controllerUsernames ?? [],
    pods: { get: (namespace, name) => pods.get(`${namespace}/${name}`) },
    ...(o.trust ? { trust: o.trust } : {}),
  });
  certs.onChange((tls) => server.setSecureContext(tls));
  await admission.createMutatingWebhookConfiguration({
    body: webhookConfiguration({
      name: configName,
      client: { url: `https://127.0.0.1:${server.port}` },
      controllerNamespace: o.controllerNamespace,
      ...(o.controllerUsernames?.[0] ? { controllerUsername: o.controllerUsernames[0] } : {}),
      ...(o.trust?.daemonSetNamespaces ? { trustedDaemonSetNamespaces: o.trust.daemonSetNamespaces } : {}),
    }),
  });
  await certs.resync();
  // Imported only where used, so the files that do not use it also run against older code (to check
  // that their tests fail there).
  const policy = o.finalPodPolicy
    ? (await import('../../../src/webhook/policy.ts')).finalPodPolicy({
        name: configName,
        controllerNamespace: o.controllerNamespace,
        placement: o.placement ?? 'pin',
        ...(o.trust?.daemonSetNamespaces ? { trustedDaemonSetNamespaces: o.trust.daemonSetNamespaces } : {}),
      })
    : undefined;
  if (policy) {
    await admission.createValidatingAdmissionPolicy({ body: policy[0] });
    await admission.createValidatingAdmissionPolicyBinding({ body: policy[1] });
  }
  return {
    server,
    configName,
    nodes,
    pods,
    async stop() {
      // The configuration first: nothing else in the cluster may depend on this server.
      await admission.deleteMutatingWebhookConfiguration({ name: configName }).catch(() => {});
      if (policy) {
        await admission.deleteValidatingAdmissionPolicyBinding({ name: configName }).catch(() => {});
        await admission.deleteValidatingAdmissionPolicy({ name: configName }).catch(() => {});
      }
      await certs.stop();
      await server.close();
    },
  };
}

/** A kwok node; an ipp node of `cls` (labels and both taints) when cls is given. Waits until Ready. */
export async function kwokNode(c: Clients, name: string, cls?: string, labels: Record<string, string> = {}) {
  await c.core.createNode({
    body: {
      metadata: {
        name,
        labels: { ...labels, ...(cls ? { [NODE_CLASS_LABEL]: cls, [NODE_INSTANCE_LABEL]: `${name}-inst` } : {}) },
        annotations: { 'kwok.x-k8s.io/node': 'fake' },
      },
      spec: {
        taints: cls
          ? [
              { key: TAINT_KEY, value: cls, effect: 'NoSchedule' },
              { key: TAINT_KEY, value: cls, effect: 'NoExecute' },
            ]
          : [],
      },
    },
  });
  return eventually(`kwok to make ${name} Ready`, async () => {
    const n = await c.core.readNode({ name });
    if (n.status?.conditions?.find((x) => x.type === 'Ready')?.status !== 'True') throw new Error('not Ready');
    return n;
  });
}
