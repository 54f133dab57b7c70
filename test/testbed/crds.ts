// Applies charts/ipp/crds to a cluster as Helm would, and waits until they are served.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ApiextensionsV1Api, KubeConfig, loadYaml, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { waitFor } from './process.ts';

const dir = join(import.meta.dirname, '..', '..', 'charts', 'ipp', 'crds');

/**
 * loadYaml matters: it maps the YAML onto client-node's models (x-kubernetes-validations →
 * xKubernetesValidations, enum → _enum); a plain YAML parse would have the serializer silently
 * drop CEL rules and enums.
 */
export async function installCrds(kc: KubeConfig): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    const crd = loadYaml<V1CustomResourceDefinition>(readFileSync(join(dir, file), 'utf8'));
    const name = crd.metadata!.name!;
    try {
      const existing = await api.readCustomResourceDefinition({ name });
      crd.metadata!.resourceVersion = existing.metadata!.resourceVersion;
      await api.replaceCustomResourceDefinition({ name, body: crd });
    } catch {
      await api.createCustomResourceDefinition({ body: crd }).catch(() => {});
    }
    await waitFor(
      `CRD ${name} established`,
      async () => {
        const got = await api.readCustomResourceDefinition({ name });
        return !!got.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True');
      },
      60_000,
    );
  }
}
