// What the security e2e tests share: acting as the attackers the threat model names (a namespace
// editor, a kubelet, the controller's own token), and reading refusals.
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { clientCertKubeconfig } from '../../testbed/controlplane.ts';
import { kubeError } from '../../../src/kube/errors.ts';
import { clients, eventually, type Clients } from '../support/cluster.ts';

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
